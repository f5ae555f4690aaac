"""Alice's transcript: her ordered training examples with the position each was seen at.

A transcript holds token ids (or texts), one unique training position per example (e.g. the
sequence index in the shuffled stream), optional block ids for runs that were shuffled only within
stages, optional training steps (for the n-gram test) and optional precomputed per-example loss
columns (the paper's released `loss_<model>_<revision>` columns).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reprokit.errors import DataError

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

__all__ = ["Transcript", "TranscriptError", "same_tokenizer"]


class TranscriptError(DataError):
    """A transcript is malformed or does not fit the requested operation (a `ValueError` too)."""


_FILE_SUFFIXES = (".parquet", ".jsonl", ".json")


def _looks_like_file(source: str) -> bool:
    """Whether a transcript source that does not exist was meant as a local path, not a hub dataset id."""
    from reprokit.lm import looks_like_path

    return looks_like_path(source) or Path(source).suffix.lower() in (
        *_FILE_SUFFIXES,
        ".csv",
        ".txt",
        ".arrow",
    )


def _load_file(path: Path) -> datasets.Dataset:
    """A parquet / jsonl / json file as a dataset, with a one-line error that names the file's problem."""
    from reprokit.datafiles import load_data_files

    suffix = path.suffix.lower()
    if suffix not in _FILE_SUFFIXES:
        raise TranscriptError(f"{path}: unknown transcript format {suffix!r}; use .parquet, .jsonl or .json.")
    return load_data_files(path, what="transcript", error=TranscriptError)


def same_tokenizer(a: PreTrainedTokenizerBase, b: PreTrainedTokenizerBase) -> bool:
    """Whether two tokenizers map text to the same ids (same vocabulary and special tokens)."""
    if a is b:
        return True
    if len(a) != len(b) or a.bos_token_id != b.bos_token_id or a.eos_token_id != b.eos_token_id:
        return False
    return a.get_vocab() == b.get_vocab()


def _as_positions(values: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size != n:
        raise TranscriptError(
            f"{what} must be a 1-D array with one entry per example ({n}), got shape {arr.shape}."
        )
    if arr.size and not np.issubdtype(arr.dtype, np.number):
        raise TranscriptError(f"{what} must be numeric, got dtype {arr.dtype}.")
    return arr


@dataclass(frozen=True)
class Transcript:
    """Ordered training examples of one run; `positions[i]` is when example i was seen (unique).

    Give `token_ids` (with the `tokenizer` that produced them, when known) or `texts`. `blocks` labels
    stages that were shuffled separately (permutation tests then permute only within blocks); `steps`
    is the optimizer step of each example (defaults to the position); `losses` maps a column name to
    precomputed per-example losses.
    """

    positions: np.ndarray
    token_ids: tuple[tuple[int, ...], ...] | None = None
    texts: tuple[str, ...] | None = None
    blocks: np.ndarray | None = None
    steps: np.ndarray | None = None
    losses: Mapping[str, np.ndarray] = field(default_factory=dict)
    tokenizer: PreTrainedTokenizerBase | None = field(default=None, repr=False, compare=False)
    name: str = "transcript"

    def __post_init__(self) -> None:
        if self.token_ids is None and self.texts is None:
            raise TranscriptError("Transcript needs token_ids or texts; pass one of them.")
        n = len(self.token_ids) if self.token_ids is not None else len(self.texts)  # type: ignore[arg-type]
        if n == 0:
            raise TranscriptError("Transcript is empty; pass at least one example.")
        if self.texts is not None and len(self.texts) != n:
            raise TranscriptError(
                f"{len(self.texts)} texts for {n} token sequences; pass one text per example."
            )
        pos = _as_positions(self.positions, n, "positions")
        uniq, counts = np.unique(pos, return_counts=True)
        if uniq.size != pos.size:
            dup = uniq[counts > 1][:5].tolist()
            raise TranscriptError(
                f"transcript has duplicate positions (e.g. {dup}); each example must be seen at one "
                "position. Keep first occurrences with Transcript.first_occurrence(...) or pass sequence "
                "indices, not steps."
            )
        object.__setattr__(self, "positions", pos)
        if self.token_ids is not None:
            for i, ids in enumerate(self.token_ids):
                if len(ids) == 0:
                    raise TranscriptError(f"example {i} has no tokens; drop empty examples before testing.")
                if min(ids) < 0:
                    raise TranscriptError(
                        f"example {i} has a negative token id ({min(ids)}); token ids are >= 0."
                    )
        if self.texts is not None:
            for i, text in enumerate(self.texts):
                if not text:
                    raise TranscriptError(
                        f"example {i} has an empty text; drop empty examples before testing."
                    )
        if self.blocks is not None:
            object.__setattr__(self, "blocks", _as_positions(self.blocks, n, "blocks"))
        if self.steps is not None:
            object.__setattr__(self, "steps", _as_positions(self.steps, n, "steps"))
        losses = {}
        for key, col in self.losses.items():
            arr = np.asarray(col, dtype=np.float64)
            if arr.shape != (n,):
                raise TranscriptError(f"loss column {key!r} has shape {arr.shape}; expected ({n},).")
            losses[key] = arr
        object.__setattr__(self, "losses", losses)

    # ------------------------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.positions.size)

    @property
    def step_of_example(self) -> np.ndarray:
        """Training step of each example (`steps`, or the position when steps are unknown)."""
        return self.steps if self.steps is not None else self.positions

    def subset(self, index: Sequence[int] | np.ndarray) -> Transcript:
        """The transcript restricted to examples `index` (in that order)."""
        idx = np.asarray(index, dtype=np.int64)
        return Transcript(
            positions=self.positions[idx],
            token_ids=None if self.token_ids is None else tuple(self.token_ids[i] for i in idx),
            texts=None if self.texts is None else tuple(self.texts[i] for i in idx),
            blocks=None if self.blocks is None else self.blocks[idx],
            steps=None if self.steps is None else self.steps[idx],
            losses={k: v[idx] for k, v in self.losses.items()},
            tokenizer=self.tokenizer,
            name=self.name,
        )

    def sample(self, n: int | None, *, seed: int = 0) -> Transcript:
        """n examples drawn uniformly without replacement (never by loss), in position order."""
        if n is None or n == len(self):
            return self
        if n < 3:
            raise TranscriptError(f"sample size n={n} is too small; a rank test needs n >= 3.")
        if n > len(self):
            raise TranscriptError(
                f"n={n} is larger than the transcript ({len(self)} examples); "
                f"pass n <= {len(self)} or n=None."
            )
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self), size=n, replace=False)
        return self.subset(idx[np.argsort(self.positions[idx], kind="stable")])

    # ------------------------------------------------------------------------------ constructors
    @classmethod
    def first_occurrence(
        cls,
        examples: Sequence[Sequence[int]] | Sequence[str],
        order: Sequence[int] | np.ndarray,
        *,
        batch_size: int = 1,
        tokenizer: PreTrainedTokenizerBase | None = None,
        name: str = "transcript",
    ) -> Transcript:
        """A transcript from a training order (example indices in the order seen), first occurrences only.

        Position = index in the stream, step = position // batch_size. Repeats (later epochs) are dropped,
        as the paper restricts to first-epoch examples.
        """
        order_arr = np.asarray(order, dtype=np.int64)
        if order_arr.ndim != 1 or order_arr.size == 0:
            raise TranscriptError("order must be a non-empty 1-D sequence of example indices.")
        if batch_size < 1:
            raise TranscriptError(f"batch_size must be >= 1, got {batch_size}.")
        if order_arr.min() < 0 or order_arr.max() >= len(examples):
            raise TranscriptError(f"order holds indices outside [0, {len(examples)}).")
        _, first = np.unique(order_arr, return_index=True)
        first = np.sort(first)
        ex_idx = order_arr[first]
        items = [examples[i] for i in ex_idx]
        is_text = isinstance(items[0], str)
        return cls(
            positions=first.astype(np.int64),
            token_ids=None if is_text else tuple(tuple(int(t) for t in ids) for ids in items),  # type: ignore[union-attr]
            texts=tuple(items) if is_text else None,  # type: ignore[arg-type]
            steps=(first // batch_size).astype(np.int64),
            tokenizer=tokenizer,
            name=name,
        )

    @classmethod
    def from_dataset(
        cls,
        dataset: datasets.Dataset,
        *,
        position_column: str = "index",
        tokens_column: str | None = "tokens",
        text_column: str | None = None,
        block_column: str | None = None,
        step_column: str | None = None,
        loss_columns: Sequence[str] | str | None = "loss_*",
        tokenizer: PreTrainedTokenizerBase | None = None,
        name: str = "transcript",
        default_step_column: str | None = None,
    ) -> Transcript:
        """From a `datasets.Dataset` (the paper's `hij/sequence_samples` layout: `index`, `tokens`, `loss_*`).

        A loss column holding per-token losses (lists) is reduced to its per-example mean. A `step_column`
        that is absent is an error; without one, steps come from `default_step_column` when the dataset
        has it (the n-gram test passes "step"), else they stay unknown.
        """
        cols = set(dataset.column_names)
        if step_column is None and default_step_column in cols:
            step_column = default_step_column
        tokens_column = tokens_column if tokens_column in cols else None
        if text_column is not None and text_column not in cols:
            raise TranscriptError(
                f"text column {text_column!r} not in the dataset (columns: {sorted(cols)})."
            )
        if tokens_column is None and text_column is None:
            raise TranscriptError(
                f"the dataset has no token column 'tokens' and no text column was given "
                f"(columns: {sorted(cols)}); "
                "pass tokens_column= or text_column=."
            )
        for what, col in (("position", position_column), ("block", block_column), ("step", step_column)):
            if col is not None and col not in cols:
                raise TranscriptError(
                    f"{what} column {col!r} not in the transcript (columns: {sorted(cols)}); "
                    "name one of its columns."
                )
        if isinstance(loss_columns, str):
            prefix = loss_columns.rstrip("*")
            names = (
                [c for c in dataset.column_names if c.startswith(prefix)]
                if loss_columns.endswith("*")
                else [loss_columns]
            )
        else:
            names = list(loss_columns or [])
        missing = [c for c in names if c not in cols]
        if missing:
            raise TranscriptError(
                f"loss columns {missing} not in the transcript (columns: {sorted(cols)}); "
                "name one of its columns."
            )
        losses = {}
        for c in names:
            values = dataset[c]
            if len(values) and isinstance(values[0], (list, tuple, np.ndarray)):
                losses[c] = np.array([float(np.mean(v)) if len(v) else np.nan for v in values])
            else:
                losses[c] = np.asarray(values, dtype=np.float64)
        return cls(
            positions=np.asarray(dataset[position_column]),
            token_ids=None
            if tokens_column is None
            else tuple(tuple(int(t) for t in ids) for ids in dataset[tokens_column]),
            texts=None if text_column is None else tuple(dataset[text_column]),
            blocks=None if block_column is None else np.asarray(dataset[block_column]),
            steps=None if step_column is None else np.asarray(dataset[step_column]),
            losses=losses,
            tokenizer=tokenizer,
            name=name,
        )

    @classmethod
    def load(
        cls,
        source: str | Path,
        *,
        subset: str | None = None,
        split: str = "train",
        revision: str | None = None,
        **kwargs: Any,
    ) -> Transcript:
        """Load a transcript from a parquet / jsonl / json file, a saved dataset folder, or a hub dataset id.

        `subset` is the hub configuration, e.g.
        ``load("hij/sequence_samples", subset="pythia_deduped_100k")``.
        Remaining keyword arguments go to :meth:`from_dataset`.
        """
        import datasets

        path = Path(str(source)).expanduser()
        kwargs.setdefault("name", path.stem if path.exists() else f"{source}/{subset or ''}".rstrip("/"))
        if path.is_file():
            ds = _load_file(path)
        elif path.is_dir():
            try:
                ds = datasets.load_from_disk(str(path))
            except FileNotFoundError as err:
                raise TranscriptError(
                    f"transcript folder {path} is not a dataset saved with save_to_disk; pass such a "
                    "folder or a .parquet/.jsonl file."
                ) from err
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise TranscriptError(
                        f"transcript {path} has no split {split!r}; pass --split with one of {sorted(ds)}."
                    )
                ds = ds[split]
        elif _looks_like_file(str(source)):
            raise TranscriptError(
                f"transcript {source}: no such file or folder; pass an existing .parquet/.jsonl file, "
                "a saved dataset folder, or a hub dataset id."
            )
        else:
            try:
                ds = datasets.load_dataset(str(source), subset, split=split, revision=revision)
            except Exception as err:  # datasets raises many types for a missing dataset
                raise TranscriptError(
                    f"could not load transcript {source!r} (subset {subset!r}): {err}. "
                    "Pass a local parquet/jsonl "
                    "file, or make the dataset available in the local Hugging Face cache."
                ) from err
        return cls.from_dataset(ds, **kwargs)

    def save_jsonl(self, path: str | Path) -> Path:
        """Write the transcript atomically as jsonl (`index`, `tokens`/`text`, `block`, `step`, losses)."""
        from reprokit.results import atomic_write_text

        lines = []
        for i in range(len(self)):
            row: dict[str, Any] = {"index": int(self.positions[i])}
            if self.token_ids is not None:
                row["tokens"] = list(self.token_ids[i])
            if self.texts is not None:
                row["text"] = self.texts[i]
            if self.blocks is not None:
                row["block"] = self.blocks[i].item()
            if self.steps is not None:
                row["step"] = int(self.steps[i])
            for k, v in self.losses.items():
                row[k] = float(v[i])
            lines.append(json.dumps(row))
        return atomic_write_text(path, "\n".join(lines) + "\n")

    # ------------------------------------------------------------------------------ token access
    def sequences_for(
        self, tokenizer: PreTrainedTokenizerBase, *, retokenize: bool = False
    ) -> list[list[int]]:
        """The examples as token ids of `tokenizer`.

        Token ids are used as they are when the transcript's tokenizer is the same; with a different
        tokenizer they are decoded and re-encoded only if `retokenize=True` (as the paper does when the
        audited model has another tokenizer), else a `TranscriptError` says so.
        """
        if self.token_ids is not None:
            if self.tokenizer is not None and not same_tokenizer(self.tokenizer, tokenizer):
                if not retokenize:
                    raise TranscriptError(
                        "the transcript was tokenized with a different tokenizer than the model's; pass "
                        "retokenize=True to decode and re-encode the examples with the model's tokenizer."
                    )
                texts = self.tokenizer.batch_decode(
                    [list(t) for t in self.token_ids], skip_special_tokens=True
                )
                return [list(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
            vocab = len(tokenizer)
            top = max(max(t) for t in self.token_ids)
            if top >= vocab:
                raise TranscriptError(
                    f"the transcript holds token id {top} but the model's tokenizer has only {vocab} "
                    "tokens: they use different tokenizers. Attach the transcript's tokenizer "
                    "(Transcript(..., tokenizer=...)) "
                    "and pass retokenize=True, or use a text transcript."
                )
            return [list(t) for t in self.token_ids]
        assert self.texts is not None
        return [list(tokenizer(t, add_special_tokens=False).input_ids) for t in self.texts]
