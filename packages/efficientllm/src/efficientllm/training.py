"""Pruning-aware training: a plain `accelerate` loop with AdamW, an LR schedule and the `Pruner` hooks.

    result = prune_train(model, tokenizer, texts, PruneTrainConfig(steps=1000, batch_size=8, seq_len=512),
                         prune=PruneConfig(every=10, target_ratio=0.3), output_dir="runs/a")
    result.model        # the final (compacted) model, in memory

Data: the texts are tokenized (each followed by eos), packed into one stream and cut into `seq_len` blocks;
the block order is shuffled per epoch with a seed derived from (seed, epoch), so the data position is just
(epoch, index). The LR is a function of the step (no scheduler state).

Checkpoints (`output_dir/checkpoint/`, replaced atomically every `checkpoint_every` steps) hold the weights
as safetensors (`model/model.safetensors`, the possibly compacted shapes; no config, because a compacted
config need not be valid for its class, e.g. Llama's check that hidden_size divides by the head count:
use `efficientllm.export` for a loadable model), `pruning_state.json` (which source units the
tensors hold), `pruner.json` (the pruner's `state_dict`), `training_state.pt` (optimizer state and the
torch RNG state, tensors and plain values only, read with ``weights_only=True``) and `state.json` (step,
data position, history). Python's and numpy's RNGs are reseeded from (seed, step) every step, so they are
not saved.

Resume (the simplest correct path): the caller passes the same *source-shaped* model as in the first call;
it is compacted to the checkpoint's physical units (`pruning_state.json`), which gives exactly the saved
tensor shapes whatever the compaction history, and the saved weights are then loaded over it (every
name but a tied duplicate must be present).
The optimizer is rebuilt over the same parameters in the same order and its state loaded. Training
N steps straight and k steps + resume to N give the same weights and losses.

Distributed (DDP through accelerate; not tested here, the tests run one process): gradients are already
averaged by DDP, so every rank computes the same saliency; before each pruning event the accumulated group
scores are nevertheless averaged with `accelerator.reduce` so that all ranks rank (and prune) the very same
groups even if float noise made them drift. The `Pruner` works on the unwrapped model and the unwrapped
optimizer; compaction replaces Parameters, so after a compacting event the model is wrapped again with
`accelerator.prepare_model` (the old DDP wrapper and its buckets are dropped by us but stay referenced in
the accelerator's model list). Sharded setups (FSDP, DeepSpeed ZeRO-3) are not supported: compaction
needs whole tensors. Each rank takes its own slice of every global batch; only the main process writes.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_model
from torch import nn

from efficientllm.compaction import compact
from efficientllm.groups import find_groups
from efficientllm.schedule import PruneConfig, Pruner
from efficientllm.state import PruningState
from reprokit.errors import ConfigError, DataError
from reprokit.progress import progress
from reprokit.results import atomic_directory, atomic_write_json
from reprokit.zoo import count_parameters

__all__ = ["CHECKPOINT_DIR", "PruneTrainConfig", "TrainResult", "lr_at", "pack_blocks", "prune_train"]

#: The checkpoint folder inside `output_dir`.
CHECKPOINT_DIR = "checkpoint"
_RESUME_IGNORES = ("checkpoint_every", "log_every")


@dataclass(frozen=True)
class PruneTrainConfig:
    """Hyper-parameters of `prune_train`: AdamW (decay on matrices only), linear warmup, cosine or constant.

    steps: optimizer steps. batch_size: sequences per step (per process). schedule "cosine" decays from
    `lr` to lr * min_lr_ratio after warmup; "constant" stays at `lr`. checkpoint_every: steps between
    checkpoints (0: never). log_every: steps between history records (the last step is always logged).
    """

    steps: int
    batch_size: int = 8
    seq_len: int = 128
    lr: float = 3e-4
    warmup_steps: int = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        problems = []
        for name in ("steps", "batch_size", "seq_len", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                problems.append(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("warmup_steps", "checkpoint_every", "seed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                problems.append(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.schedule not in ("cosine", "constant"):
            problems.append(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            problems.append(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            problems.append(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.max_grad_norm < 0:
            problems.append(f"max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}")
        if problems:
            raise ConfigError("PruneTrainConfig: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for JSON."""
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out


@dataclass
class TrainResult:
    """What `prune_train` returns: the final model (compacted), the loss history and the pruning events.

    `history` holds one record per log step (step, tokens, loss: mean over the steps since the last
    record, lr, params: live count from the pruner, or the model's count). `final_params` is the number
    of parameters the final model really holds (tied weights once). `complete` is False when the call
    stopped at `stop_at` before `config.steps`.
    """

    model: nn.Module
    history: list[dict[str, Any]]
    events: list[dict[str, Any]]
    tokens_seen: int
    wall_time_s: float
    final_params: int
    step: int
    complete: bool
    config: PruneTrainConfig
    prune: PruneConfig | None = None
    widths: dict[str, Any] | None = None
    stop_reason: str | None = None
    resumed_from: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, for JSON."""
        return {
            "config": self.config.to_dict(),
            "prune": self.prune.to_dict() if self.prune is not None else None,
            "step": self.step,
            "complete": self.complete,
            "tokens_seen": self.tokens_seen,
            "wall_time_s": self.wall_time_s,
            "final_params": self.final_params,
            "widths": self.widths,
            "stop_reason": self.stop_reason,
            "resumed_from": self.resumed_from,
            "history": self.history,
            "events": self.events,
            **self.extra,
        }


# ---------------------------------------------------------------------------------------------- data
def pack_blocks(
    tokenizer: Any, data: Sequence[str] | Sequence[int] | np.ndarray | torch.Tensor, seq_len: int
) -> np.ndarray:
    """Tokenize texts (each followed by eos) into one stream, or take a token stream, cut into seq_len blocks.

    Returns an int64 array (n_blocks, seq_len); the tail shorter than a block is dropped.
    """
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if isinstance(data, np.ndarray):
        if data.ndim != 1 or not np.issubdtype(data.dtype, np.integer):
            raise DataError(
                f"a token stream must be a 1-D integer array, got shape {data.shape} {data.dtype}."
            )
        stream = data.astype(np.int64)
    else:
        items = list(data)
        if not items:
            raise DataError("prune_train got no training data: pass a non-empty list of texts or token ids.")
        if all(isinstance(x, (int, np.integer)) for x in items):
            stream = np.asarray(items, dtype=np.int64)
        elif all(isinstance(x, str) for x in items):
            if tokenizer is None:
                raise ConfigError(
                    "texts need a tokenizer; pass the model's tokenizer (or token ids instead)."
                )
            eos = getattr(tokenizer, "eos_token_id", None)
            ids: list[int] = []
            for text in items:
                if not text.strip():
                    continue
                ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
                if eos is not None:
                    ids.append(int(eos))
            if not ids:
                raise DataError("every training text is empty; pass texts with content.")
            stream = np.asarray(ids, dtype=np.int64)
        else:
            raise DataError(
                "training data must be a list of strings or a 1-D sequence of token ids, not a mix."
            )
    n_blocks = len(stream) // seq_len
    if n_blocks < 1:
        raise DataError(
            f"the training data has {len(stream)} tokens, fewer than one block of seq_len={seq_len}; "
            "pass more text or lower seq_len."
        )
    return stream[: n_blocks * seq_len].reshape(n_blocks, seq_len)


def _epoch_order(n_blocks: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n_blocks)


def _next_blocks(blocks: np.ndarray, seed: int, pos: list[int], count: int) -> np.ndarray:
    """`count` blocks from data position pos = [epoch, index] (advanced in place), crossing epochs."""
    out = []
    order = _epoch_order(len(blocks), seed, pos[0])
    for _ in range(count):
        if pos[1] >= len(blocks):
            pos[0], pos[1] = pos[0] + 1, 0
            order = _epoch_order(len(blocks), seed, pos[0])
        out.append(blocks[order[pos[1]]])
        pos[1] += 1
    return np.stack(out)


# ------------------------------------------------------------------------------------------ schedule
def lr_at(config: PruneTrainConfig, step: int) -> float:
    """The learning rate of optimizer step `step` (from 1): linear warmup, then cosine or constant."""
    if step <= config.warmup_steps:
        return config.lr * step / max(1, config.warmup_steps)
    if config.schedule == "constant":
        return config.lr
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    ratio = config.min_lr_ratio + (1.0 - config.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr * ratio


def _make_optimizer(model: nn.Module, config: PruneTrainConfig) -> torch.optim.AdamW:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [
            {"params": [p for _, p in named if p.ndim >= 2], "weight_decay": config.weight_decay},
            {"params": [p for _, p in named if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=tuple(config.betas),
    )


def _seed_step(seed: int, step: int) -> None:
    """Python's and numpy's global RNGs from (seed, step): exact resume without saving their state."""
    derived = (seed * 1_000_003 + step) % (2**32)
    random.seed(derived)
    np.random.seed(derived)  # noqa: NPY002  (the global RNG that user code and libraries may draw from)


# ------------------------------------------------------------------------------------ checkpointing
def _save_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    pruner: Pruner | None,
    meta: dict[str, Any],
) -> None:
    with atomic_directory(folder, replace=True) as tmp:
        # weights only: a compacted config can be invalid for its class (Llama refuses hidden_size not a
        # multiple of the head count), and resume rebuilds the shapes from the source model + pruning state
        (tmp / "model").mkdir()
        save_model(model, str(tmp / "model" / "model.safetensors"))  # tied tensors are stored once
        if pruner is not None:
            (tmp / "pruning_state.json").write_text(pruner.state.to_json())
            (tmp / "pruner.json").write_text(json.dumps(pruner.state_dict()))
        rng: dict[str, Any] = {"torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda_rng"] = torch.cuda.get_rng_state_all()
        torch.save({"optimizer": optimizer.state_dict(), **rng}, tmp / "training_state.pt")
        atomic_write_json(tmp / "state.json", meta)


def _load_weights(model: nn.Module, folder: Path) -> None:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise DataError(
            f"checkpoint folder {folder} has no safetensors weights; delete it or pass resume=False."
        )
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    result = model.load_state_dict(state, strict=False)
    # tied weights are saved once; the other name shares the storage and was filled with it
    ptr = {k: v.data_ptr() for k, v in model.state_dict().items()}
    loaded = {ptr[k] for k in state if k in ptr}
    missing = [k for k in result.missing_keys if ptr.get(k) not in loaded]
    if missing or result.unexpected_keys:
        raise DataError(
            f"checkpoint weights in {folder} do not fit the model (missing {missing[:5]}, unexpected "
            f"{result.unexpected_keys[:5]}); pass the same source model as the first run, or resume=False."
        )


def _restore_shapes(model: nn.Module, saved: PruningState, heads: str) -> None:
    """Compact a source-shaped `model` to the units the checkpoint's tensors hold (its `physical` units)."""
    space = find_groups(model, heads=heads)  # type: ignore[arg-type]
    current = PruningState.full(space)
    if current.source != saved.source or current.num_layers != saved.num_layers:
        raise DataError(
            f"the checkpoint was pruned from a model of widths {saved.source}, but the model passed has "
            f"{current.source}; pass the same source model as the first run, or resume=False."
        )
    current.kept = saved.physical.copy()
    compact(model, current, None, space=space)


# ------------------------------------------------------------------------------------------ training
def prune_train(
    model: nn.Module,
    tokenizer: Any,
    token_stream_or_texts: Sequence[str] | Sequence[int] | np.ndarray | torch.Tensor,
    config: PruneTrainConfig,
    *,
    prune: PruneConfig | None,
    output_dir: str | os.PathLike[str],
    resume: bool = True,
    accelerator: Any = None,
    stop_at: int | None = None,
    allow_lr_change: bool = False,
) -> TrainResult:
    """Train `model` (pruning it with `prune`, or plainly when None) for `config.steps` steps; resumable.

    With `resume`, a checkpoint in ``output_dir/checkpoint`` is continued (pass the same source-shaped
    model and data as the first call). `stop_at` ends this call after that step (with a checkpoint), as a
    preemption would; the final compaction then waits for the run's end. `allow_lr_change` lets a resumed
    run take a new `config.lr` (e.g. after a divergence; recorded as ``lr_changes``). Writes
    ``output_dir/train.json``.
    """
    from accelerate import Accelerator

    out = Path(output_dir)
    if stop_at is not None and not 1 <= stop_at <= config.steps:
        raise ConfigError(f"stop_at must be in [1, steps={config.steps}], got {stop_at}.")
    max_pos = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(max_pos, int) and config.seq_len > max_pos:
        raise ConfigError(
            f"seq_len={config.seq_len} exceeds the model's max_position_embeddings={max_pos}; "
            f"lower seq_len to at most {max_pos}."
        )
    blocks = pack_blocks(tokenizer, token_stream_or_texts, config.seq_len)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(vocab, int) and int(blocks.max()) >= vocab:
        raise DataError(f"token id {int(blocks.max())} is outside the model's vocabulary of {vocab}.")

    acc = accelerator if accelerator is not None else Accelerator()
    ckpt = out / CHECKPOINT_DIR
    step, pos, history, window, tokens, elapsed = 0, [0, 0], [], [], 0, 0.0
    resumed_from = None
    saved_train = None
    lr_changes: list[dict[str, Any]] = []
    if resume and (ckpt / "state.json").is_file():
        meta = json.loads((ckpt / "state.json").read_text())
        ignores = (*_RESUME_IGNORES, "lr") if allow_lr_change else _RESUME_IGNORES
        mine = {k: v for k, v in config.to_dict().items() if k not in ignores}
        theirs = {k: v for k, v in meta["config"].items() if k not in ignores}
        lr_changes = list(meta.get("lr_changes", []))
        if meta["config"]["lr"] != config.lr:
            lr_changes.append({"step": int(meta["step"]), "from": meta["config"]["lr"], "to": config.lr})
        if (
            mine != theirs
            or (meta["prune"] is None) != (prune is None)
            or (prune is not None and meta["prune"] != prune.to_dict())
        ):
            raise ConfigError(
                f"{ckpt} holds a checkpoint of another configuration ({theirs}, prune={meta['prune']}); "
                "use the same configs, another output_dir, or resume=False."
            )
        if prune is not None:
            _restore_shapes(model, PruningState.load(ckpt / "pruning_state.json"), prune.heads)
        _load_weights(model, ckpt / "model")
        saved_train = torch.load(ckpt / "training_state.pt", weights_only=True)
        step, pos = int(meta["step"]), [int(x) for x in meta["position"]]
        history, window = list(meta["history"]), [float(x) for x in meta["window"]]
        tokens, elapsed, resumed_from = int(meta["tokens_seen"]), float(meta["wall_time_s"]), step

    raw_model = model
    pruner: Pruner | None = None
    if prune is not None:
        if saved_train is not None:
            pruner = Pruner.from_state_dict(raw_model, json.loads((ckpt / "pruner.json").read_text()))
        else:
            pruner = Pruner(raw_model, prune)  # refuses a target outside [smallest model, source]
    raw_model.train()
    optimizer = _make_optimizer(raw_model, config)
    if saved_train is not None:
        optimizer.load_state_dict(saved_train["optimizer"])
        torch.set_rng_state(saved_train["torch_rng"])
        if "cuda_rng" in saved_train and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved_train["cuda_rng"])
    else:
        torch.manual_seed(config.seed)
    wrapped, acc_opt = acc.prepare(raw_model, optimizer)
    raw_opt = optimizer  # the Pruner works on the unwrapped optimizer; the wrapper delegates to it

    rank, world = acc.process_index, acc.num_processes
    end = stop_at if stop_at is not None else config.steps
    t0 = time.perf_counter()
    bar = progress(
        total=end,
        initial=step,
        desc="pruning-aware training" if pruner is not None else "training",
        disable=True if not acc.is_main_process else None,
        unit="step",
    )
    while step < end:
        step += 1
        _seed_step(config.seed, step)
        batch_np = _next_blocks(blocks, config.seed, pos, config.batch_size * world)
        ids = torch.from_numpy(batch_np[rank * config.batch_size : (rank + 1) * config.batch_size])
        ids = ids.to(acc.device)
        loss = wrapped(input_ids=ids, labels=ids).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {float(loss.detach())} at step {step}; "
                f"lower lr (now {config.lr}) or max_grad_norm."
            )
        acc.backward(loss)
        if pruner is not None:
            pruner.after_backward(raw_model, raw_opt)
        if config.max_grad_norm:
            acc.clip_grad_norm_(wrapped.parameters(), config.max_grad_norm)
        lr = lr_at(config, step)
        for group in raw_opt.param_groups:
            group["lr"] = lr
        acc_opt.step()
        acc_opt.zero_grad(set_to_none=True)
        tokens += ids.numel() * world
        window.append(float(acc.reduce(loss.detach(), reduction="mean")))
        bar.update(1)
        if pruner is not None:
            due = pruner.due(step)
            if due:  # every rank must rank the same scores: average them across processes
                for t in pruner.saliency.scores.tensors():
                    t.copy_(acc.reduce(t, reduction="mean"))
            events = pruner.after_step(raw_model, raw_opt, step, {"input_ids": ids} if due else None)
            if any(e.compacted for e in events) and wrapped is not raw_model:
                wrapped = acc.prepare_model(raw_model)  # new Parameters: wrap again (DDP)
        if step % config.log_every == 0 or step == config.steps:
            history.append(
                {
                    "step": step,
                    "tokens": tokens,
                    "loss": sum(window) / len(window),
                    "lr": lr,
                    "params": pruner.params if pruner is not None else count_parameters(raw_model),
                }
            )
            window = []
        if (config.checkpoint_every and step % config.checkpoint_every == 0) or step == stop_at:
            meta = {
                "config": config.to_dict(),
                "prune": prune.to_dict() if prune is not None else None,
                "step": step,
                "position": list(pos),
                "history": history,
                "window": window,
                "tokens_seen": tokens,
                "wall_time_s": elapsed + time.perf_counter() - t0,
                "lr_changes": lr_changes,
            }
            if acc.is_main_process:
                _save_checkpoint(ckpt, raw_model, raw_opt, pruner, meta)
            acc.wait_for_everyone()

    bar.close()
    complete = step >= config.steps
    if complete and pruner is not None:
        pruner.compact(raw_opt)
    raw_model.eval()
    result = TrainResult(
        model=raw_model,
        history=history,
        events=[e.to_dict() for e in pruner.history] if pruner is not None else [],
        tokens_seen=tokens,
        wall_time_s=elapsed + time.perf_counter() - t0,
        final_params=count_parameters(raw_model),
        step=step,
        complete=complete,
        config=config,
        prune=prune,
        widths=pruner.state.widths() if pruner is not None else None,
        stop_reason=pruner.stop_reason if pruner is not None else None,
        resumed_from=resumed_from,
        extra={"lr_changes": lr_changes} if lr_changes else {},
    )
    if acc.is_main_process:
        atomic_write_json(out / "train.json", result.to_dict())
    return result
