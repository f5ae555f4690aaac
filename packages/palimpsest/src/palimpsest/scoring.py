"""Per-example scoring split over processes (`accelerate launch`), saved in chunks, merged in order.

The examples are cut into global chunks of `chunk_size`; process r of w scores a contiguous run of
chunks and saves each one atomically (safetensors) as it completes, in a folder named by a fingerprint of
the model and the token sequences. A rerun skips finished chunks, even with another number of processes;
after a barrier every process reads all chunks back in the original order. One process runs the same
code, with or without a work folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reprokit.errors import ConfigError, DataError
from reprokit.lm import LanguageModel, require_lm
from reprokit.progress import progress
from reprokit.scoring import score_token_ids

logger = logging.getLogger(__name__)

__all__ = [
    "ExampleScores",
    "Sharding",
    "chunk_ranges",
    "merge_shards",
    "process_state",
    "score_examples",
    "score_shard",
    "scores_folder",
    "shard_chunks",
]


@dataclass(frozen=True)
class Sharding:
    """How to split per-example scoring over processes and where to keep finished chunks.

    work_dir: folder for the chunk files, on storage every process sees (None: nothing is saved, no
    resume, one process only). chunk_size: examples per saved chunk (a multiple of the batch size keeps
    the batches, and so the numbers, the same as unchunked scoring). rank, world: this process and the
    number of processes (None: from `accelerate.PartialState`).
    """

    work_dir: Path | None = None
    chunk_size: int = 1024
    rank: int | None = None
    world: int | None = None

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ConfigError(f"Sharding.chunk_size must be >= 1, got {self.chunk_size}.")
        if (self.rank is None) != (self.world is None):
            raise ConfigError("Sharding: give both rank and world, or neither (then accelerate's are used).")
        if self.world is not None and not 0 <= self.rank < self.world:  # type: ignore[operator]
            raise ConfigError(f"Sharding: rank must be in [0, world), got {self.rank} of {self.world}.")
        if self.work_dir is not None:
            object.__setattr__(self, "work_dir", Path(self.work_dir))


@dataclass(frozen=True)
class ExampleScores:
    """Summed negative log-likelihood and number of scored tokens of each example."""

    sum_nll: np.ndarray
    n_tokens: np.ndarray

    @property
    def mean_nll(self) -> np.ndarray:
        """Mean negative log-likelihood per scored token."""
        return self.sum_nll / np.maximum(self.n_tokens, 1)

    def __len__(self) -> int:
        return int(self.sum_nll.size)


def process_state(*, cpu: bool) -> Any:
    """accelerate's `PartialState` of this process (one process when not launched by `accelerate launch`
    or torchrun). `cpu=True` for processes that run on CPU: accelerate only sets up a multi-process CPU
    run when told so, and would otherwise let every process score everything."""
    import os

    from accelerate import PartialState

    state = PartialState(cpu=cpu)
    launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if launched > 1 and state.num_processes != launched:
        raise ConfigError(
            f"{launched} processes were launched (WORLD_SIZE) but accelerate sees {state.num_processes}; "
            "launch with `accelerate launch` (with --cpu for a CPU run) so that each one scores its shard."
        )
    return state


def chunk_ranges(n: int, chunk_size: int) -> list[range]:
    """The global chunks [0, c), [c, 2c), ... of n examples; the same for every number of processes."""
    return [range(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


def shard_chunks(n_chunks: int, rank: int, world: int) -> range:
    """The contiguous run of chunk indices that process `rank` of `world` scores (sizes differ by <= 1)."""
    if not 0 <= rank < world:
        raise ConfigError(f"rank must be in [0, world), got rank={rank} world={world}.")
    return range(n_chunks * rank // world, n_chunks * (rank + 1) // world)


# --------------------------------------------------------------------------------------- fingerprints
def _weights_digest(model: object) -> str:
    """A hash of every parameter's name, shape, dtype and first 1024 values: different weights at the
    same path (a retrained model) get another folder, at the cost of a few small device copies."""
    sha = hashlib.sha256()
    for name, param in model.named_parameters():  # type: ignore[attr-defined]
        sha.update(f"{name}:{tuple(param.shape)}:{param.dtype}".encode())
        if param.device.type == "meta":
            continue
        head = param.detach().reshape(-1)[:1024].float().cpu().numpy()
        sha.update(head.tobytes())
    return sha.hexdigest()


def _sequences_digest(sequences: Sequence[Sequence[int]], prompt_lengths: Sequence[int]) -> str:
    sha = hashlib.sha256()
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    sha.update(lengths.tobytes())
    sha.update(np.asarray(prompt_lengths, dtype=np.int64).tobytes())
    sha.update(np.fromiter((t for s in sequences for t in s), dtype=np.int64, count=int(lengths.sum())))
    return sha.hexdigest()


def scores_folder(
    lm: LanguageModel, sequences: Sequence[Sequence[int]], prompt_lengths: Sequence[int], work_dir: Path
) -> Path:
    """The folder under `work_dir` for these scores: the model's name, then a hash of its weights (a
    sample), dtype, tokenizer size and of the sequences and prompt lengths."""
    parts = {
        "model": lm.name,
        "class": type(lm.model).__name__,
        "dtype": str(lm.dtype),
        "vocab": len(lm.tokenizer),
        "weights": _weights_digest(lm.model),
        "sequences": _sequences_digest(sequences, prompt_lengths),
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(lm.name.rstrip("/")).name or "model")[:48]
    return Path(work_dir) / f"{slug}-{key}"


def _chunk_path(folder: Path, chunk: range) -> Path:
    return folder / f"chunk-{chunk.start:09d}-{chunk.stop:09d}.safetensors"


def _read_chunk(path: Path, chunk: range) -> ExampleScores | None:
    """The saved scores of `chunk`, or None if the file is missing or does not hold exactly this chunk."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    if not path.is_file():
        return None
    try:
        data = load(path.read_bytes())
        ok = data["range"].tolist() == [chunk.start, chunk.stop] and data["sum_nll"].shape == (len(chunk),)
    except (OSError, KeyError, SafetensorError) as err:
        logger.warning("ignoring unreadable chunk %s (%s); scoring it again", path, err)
        return None
    if not ok or data["n_tokens"].shape != (len(chunk),):
        logger.warning("ignoring chunk %s: it does not hold examples %d-%d", path, chunk.start, chunk.stop)
        return None
    return ExampleScores(data["sum_nll"].astype(np.float64), data["n_tokens"].astype(np.int64))


def _write_chunk(path: Path, chunk: range, scores: ExampleScores) -> None:
    from safetensors.numpy import save

    from reprokit.results import atomic_write_bytes

    tensors = {
        "sum_nll": np.ascontiguousarray(scores.sum_nll, dtype=np.float64),
        "n_tokens": np.ascontiguousarray(scores.n_tokens, dtype=np.int64),
        "range": np.array([chunk.start, chunk.stop], dtype=np.int64),
    }
    atomic_write_bytes(path, save(tensors))


# -------------------------------------------------------------------------------------------- scoring
def _score_chunk(
    lm: LanguageModel,
    sequences: Sequence[Sequence[int]],
    prompt_lengths: Sequence[int],
    chunk: range,
    batch_size: int,
    bar: object,
) -> ExampleScores:
    sums, counts = [], []
    for start in range(chunk.start, chunk.stop, batch_size):
        stop = min(start + batch_size, chunk.stop)
        scores = score_token_ids(
            lm, sequences[start:stop], prompt_lengths=prompt_lengths[start:stop], batch_size=batch_size
        )
        sums.append(-scores.sum_logprob)
        counts.append(scores.n_tokens)
        bar.update(stop - start)  # type: ignore[attr-defined]
    return ExampleScores(np.concatenate(sums), np.concatenate(counts))


def score_shard(
    lm: LanguageModel,
    sequences: Sequence[Sequence[int]],
    prompt_lengths: Sequence[int],
    *,
    rank: int,
    world: int,
    work_dir: Path | None,
    chunk_size: int = 1024,
    batch_size: int = 32,
    show_progress: bool = False,
    desc: str = "scoring",
) -> dict[int, ExampleScores]:
    """Score process `rank`'s chunks (of `world`), skipping those already saved under `work_dir`.

    Each finished chunk is written atomically before the next one starts, so an interrupted run loses at
    most one chunk. Returns this shard's scores by chunk index (read back or computed).
    """
    lm = require_lm(lm, "score_shard: lm")
    if len(prompt_lengths) != len(sequences):
        raise DataError(f"{len(prompt_lengths)} prompt lengths for {len(sequences)} sequences.")
    chunks = chunk_ranges(len(sequences), chunk_size)
    mine = shard_chunks(len(chunks), rank, world)
    folder = None if work_dir is None else scores_folder(lm, sequences, prompt_lengths, Path(work_dir))
    done: dict[int, ExampleScores] = {}
    if folder is not None:
        for i in mine:
            saved = _read_chunk(_chunk_path(folder, chunks[i]), chunks[i])
            if saved is not None:
                done[i] = saved
    total = sum(len(chunks[i]) for i in mine)
    resumed = sum(len(chunks[i]) for i in done)
    if done:
        logger.info("%s: %d of %d examples already scored in %s; resuming", desc, resumed, total, folder)
    label = desc if world == 1 else f"{desc} [{world} processes]"
    with progress(
        total=total, initial=resumed, desc=label, unit="ex", disable=None if show_progress else True
    ) as bar:
        for i in mine:
            if i in done:
                continue
            scores = _score_chunk(lm, sequences, prompt_lengths, chunks[i], batch_size, bar)
            if folder is not None:
                _write_chunk(_chunk_path(folder, chunks[i]), chunks[i], scores)
            done[i] = scores
    return {i: done[i] for i in mine}


def merge_shards(
    lm: LanguageModel,
    sequences: Sequence[Sequence[int]],
    prompt_lengths: Sequence[int],
    work_dir: Path,
    *,
    chunk_size: int = 1024,
) -> ExampleScores:
    """Every chunk saved under `work_dir` for these sequences, concatenated in the original order.

    A missing chunk is a `DataError`: some process did not finish, or its work folder is not shared.
    """
    folder = scores_folder(lm, sequences, prompt_lengths, Path(work_dir))
    chunks = chunk_ranges(len(sequences), chunk_size)
    parts = [_read_chunk(_chunk_path(folder, c), c) for c in chunks]
    missing = [c for c, p in zip(chunks, parts, strict=True) if p is None]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(chunks)} score chunks are missing from {folder} (e.g. examples "
            f"{missing[0].start}-{missing[0].stop - 1}); every process must finish and write to a work "
            "folder that all processes can read (shared storage). Rerun to score the missing chunks."
        )
    return _concat([p for p in parts if p is not None])


def _concat(parts: Sequence[ExampleScores]) -> ExampleScores:
    if not parts:
        return ExampleScores(np.zeros(0), np.zeros(0, dtype=np.int64))
    return ExampleScores(
        np.concatenate([p.sum_nll for p in parts]), np.concatenate([p.n_tokens for p in parts])
    )


def score_examples(
    lm: LanguageModel,
    sequences: Sequence[Sequence[int]],
    prompt_lengths: Sequence[int],
    *,
    sharding: Sharding = Sharding(),
    batch_size: int = 32,
    show_progress: bool = False,
    desc: str = "scoring",
) -> ExampleScores:
    """Per-example NLL of every sequence: this process's shard, then (after a barrier) all shards merged.

    The rank and number of processes come from `accelerate.PartialState` unless `sharding` names them;
    with one process and no work folder nothing is written. The progress bar shows on rank 0 only.
    """
    lm = require_lm(lm, "score_examples: lm")
    state = None
    if sharding.world is None:
        state = process_state(cpu=lm.device.type == "cpu")
        rank, world = state.process_index, state.num_processes
    else:
        rank, world = sharding.rank, sharding.world  # type: ignore[assignment]
    if world > 1 and sharding.work_dir is None:
        raise ConfigError(
            f"scoring on {world} processes needs a work folder that every process can read, to merge the "
            "shards; pass Sharding(work_dir=...) (the CLI's --work-dir)."
        )
    mine = score_shard(
        lm,
        sequences,
        prompt_lengths,
        rank=rank,  # type: ignore[arg-type]
        world=world,
        work_dir=sharding.work_dir,
        chunk_size=sharding.chunk_size,
        batch_size=batch_size,
        show_progress=show_progress and rank == 0,
        desc=desc,
    )
    if world == 1:
        return _concat([mine[i] for i in sorted(mine)])
    if state is not None:
        state.wait_for_everyone()
    assert sharding.work_dir is not None
    return merge_shards(lm, sequences, prompt_lengths, sharding.work_dir, chunk_size=sharding.chunk_size)
