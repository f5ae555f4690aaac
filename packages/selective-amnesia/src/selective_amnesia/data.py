"""The SemEval-2025 Task 4 data: forget and retain rows, MIA documents, checked on load.

Rows come from .parquet / .jsonl / .json files, a `datasets.Dataset`, a pandas DataFrame or a list of
mappings, with columns ``id, input, output, task`` and optionally ``split`` (extra columns such as
``task_type`` are ignored). Every problem is a `reprokit.errors.DataError` that names the offending rows
(ids, or 1-based row numbers where a row has no usable id): first few, then how many in all.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reprokit.errors import ConfigError, DataError, OutputPathError
from reprokit.results import atomic_write_bytes, atomic_write_text
from selective_amnesia.records import SPLITS, Row, probe_of

if TYPE_CHECKING:
    from typing import TypeAlias

    import datasets

    #: What `load_rows` reads: file path(s), a Dataset, a DataFrame, or mappings / `Row` objects.
    RowSource: TypeAlias = (
        str
        | os.PathLike[str]
        | Sequence[str | os.PathLike[str]]
        | Sequence[Mapping[str, Any] | Row]
        | datasets.Dataset
        | pd.DataFrame
    )

__all__ = [
    "COLUMNS",
    "UnlearningData",
    "load_documents",
    "load_rows",
    "load_unlearning_data",
    "name_rows",
    "write_rows",
]

#: Columns every row source must have; ``split`` may come from a column or from the caller.
COLUMNS: tuple[str, ...] = ("id", "input", "output", "task")
_SHOWN = 5  # rows named in a message before "... (N in all)"


def name_rows(labels: Sequence[object], limit: int = _SHOWN) -> str:
    """``"a, b, c"`` or ``"a, b, c, d, e ... (12 in all)"``: the first few offending rows and their count."""
    shown = ", ".join(str(x) for x in labels[:limit])
    return shown if len(labels) <= limit else f"{shown} ... ({len(labels)} in all)"


# ------------------------------------------------------------------------------------------ sources
def _records(source: object, *, what: str) -> list[dict[str, Any]]:
    """The rows of any supported source as plain dicts."""
    import datasets

    from reprokit.datafiles import load_data_files

    if isinstance(source, (str, os.PathLike)):
        return load_data_files(source, what=what).to_list()
    if isinstance(source, datasets.Dataset):
        return source.to_list()
    if isinstance(source, pd.DataFrame):
        return source.to_dict(orient="records")
    if isinstance(source, Sequence) and not isinstance(source, (bytes, Mapping)):
        items = list(source)
        if items and all(isinstance(x, (str, os.PathLike)) for x in items):
            return load_data_files(items, what=what).to_list()
        out = []
        for number, item in enumerate(items, start=1):
            if isinstance(item, Row):
                out.append(dataclasses.asdict(item))
            elif isinstance(item, Mapping):
                out.append(dict(item))
            else:
                raise DataError(
                    f"{what}: item {number} is a {type(item).__name__}; pass mappings with the columns "
                    f"{', '.join(COLUMNS)}, Row objects, or file paths."
                )
        return out
    raise DataError(
        f"{what}: cannot read rows from a {type(source).__name__}; pass a .parquet/.jsonl/.json path (or "
        "a list of them), a datasets.Dataset, a pandas DataFrame or a list of mappings."
    )


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: object) -> str:
    """A cell as text: strings as they are, numbers (e.g. an SSN read as int) by `str`, missing as ""."""
    if _missing(value):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def load_rows(source: RowSource, *, split: str | None = None, what: str = "data") -> list[Row]:
    """The rows of one source, checked: required columns, probe suffixes, non-empty texts, splits, unique ids.

    The ``split`` column is used where present (a missing cell takes `split`); without the column every
    row gets `split`. When both are given they must agree. `what` names the source in messages.
    """
    if split is not None and split not in SPLITS:
        raise ConfigError(f"{what}: split must be one of {', '.join(SPLITS)}, got {split!r}.")
    records = _records(source, what=what)
    if not records:
        raise DataError(f"{what} holds no rows; pass a file with at least one forget or retain row.")
    columns = list(dict.fromkeys(k for r in records for k in r))
    absent = [c for c in COLUMNS if c not in columns]
    if absent:
        raise DataError(
            f"{what} lacks the column(s) {', '.join(absent)}; it has "
            f"{', '.join(map(str, columns)) or 'none'}. "
            f"Each row needs {', '.join(COLUMNS)} (and split, or pass split=)."
        )
    has_split = "split" in columns
    if not has_split and split is None:
        raise DataError(
            f"{what} has no split column; pass split='forget' or split='retain', or add a split column."
        )

    def label(number: int, record: Mapping[str, Any]) -> str:
        rid = _text(record.get("id")).strip()
        return repr(rid) if rid else f"row {number}"

    labelled = [(label(n, r), r) for n, r in enumerate(records, start=1)]
    no_id = [lab for lab, r in labelled if not _text(r.get("id")).strip()]
    if no_id:
        raise DataError(f"{what}: {name_rows(no_id)} have no id; give every row a unique id.")
    no_probe = [lab for lab, r in labelled if probe_of(_text(r["id"])) is None]
    if no_probe:
        raise DataError(
            f"{what}: the ids {name_rows(no_probe)} have no probe suffix; an id must end in sc<digit> "
            "(sentence completion) or qa<digit> (question answering), as in the SemEval data."
        )
    for column in ("input", "output", "task"):
        empty = [lab for lab, r in labelled if not _text(r.get(column)).strip()]
        if empty:
            raise DataError(
                f"{what}: the rows {name_rows(empty)} have an empty {column}; fill it or drop them."
            )

    splits = []
    for lab, r in labelled:
        value = _text(r.get("split")).strip() if has_split else ""
        splits.append((lab, value or split))
    bad = [f"{lab} ({value!r})" for lab, value in splits if value not in SPLITS]
    if bad:
        raise DataError(
            f"{what}: the rows {name_rows(bad)} have a split other than {' or '.join(SPLITS)}; fix the "
            "split column."
        )
    if split is not None:
        other = [f"{lab} ({value!r})" for lab, value in splits if value != split]
        if other:
            raise DataError(
                f"{what} was loaded as the {split} set, but the rows {name_rows(other)} say otherwise in "
                "their split column; pass the right file, or load one file holding both splits."
            )
    ids = [_text(r["id"]) for r in records]
    counts: dict[str, int] = {}
    for rid in ids:
        counts[rid] = counts.get(rid, 0) + 1
    dups = [repr(rid) for rid, c in counts.items() if c > 1]
    if dups:
        raise DataError(f"{what}: the ids {name_rows(dups)} occur more than once; ids must be unique.")
    return [
        Row(rid, _text(r["input"]), _text(r["output"]), _text(r["task"]), value)
        for rid, r, (_, value) in zip(ids, records, splits, strict=True)
    ]


# -------------------------------------------------------------------------------------- forget/retain
@dataclass(frozen=True)
class UnlearningData:
    """A forget set and a retain set, checked: both non-empty, each row on its side, no shared rows.

    Shared means the same id, or the same (input, output) pair, in both sets.
    """

    forget: tuple[Row, ...]
    retain: tuple[Row, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "forget", tuple(self.forget))
        object.__setattr__(self, "retain", tuple(self.retain))
        for name, rows in (("forget", self.forget), ("retain", self.retain)):
            if not rows:
                raise DataError(f"the {name} set is empty; pass at least one {name} row.")
            wrong = [repr(r.id) for r in rows if r.split != name]
            if wrong:
                raise DataError(
                    f"the {name} set holds rows {name_rows(wrong)} whose split is not {name!r}; "
                    "fix their split."
                )
        retain_ids = {r.id for r in self.retain}
        same_id = [repr(r.id) for r in self.forget if r.id in retain_ids]
        if same_id:
            raise DataError(
                f"the ids {name_rows(same_id)} are in both the forget and the retain set; a row can be "
                "forgotten or retained, not both."
            )
        retain_pairs = {(r.input, r.output): r.id for r in self.retain}
        same_pair = [
            f"{r.id!r} = retain {retain_pairs[(r.input, r.output)]!r}"
            for r in self.forget
            if (r.input, r.output) in retain_pairs
        ]
        if same_pair:
            raise DataError(
                f"the forget rows {name_rows(same_pair)} repeat a retain row's input and output; a row "
                "can be forgotten or retained, not both. Drop them from one set."
            )

    @property
    def rows(self) -> tuple[Row, ...]:
        """Forget rows, then retain rows."""
        return self.forget + self.retain

    @property
    def tasks(self) -> list[str]:
        """The task labels present, sorted (``Task1``, ``Task2``, ``Task3`` in the SemEval data)."""
        return sorted({r.task for r in self.rows})

    def to_frame(self) -> pd.DataFrame:
        """All rows as a DataFrame with columns id, input, output, task, split, probe."""
        frame = pd.DataFrame([dataclasses.asdict(r) for r in self.rows], columns=[*COLUMNS, "split"])
        frame["probe"] = [r.probe for r in self.rows]
        return frame

    def subset(self, n_per_split: int, seed: int = 0) -> UnlearningData:
        """At most `n_per_split` rows of each split, drawn evenly across (task, probe) groups.

        Groups are shuffled by `seed` and taken in turn, so every group keeps a row when `n_per_split`
        is at least the number of groups (which keeps every term of the harmonic mean); rows keep
        their original order.
        """
        if isinstance(n_per_split, bool) or not isinstance(n_per_split, int) or n_per_split < 1:
            raise ConfigError(f"subset: n_per_split must be a positive int, got {n_per_split!r}.")
        rng = np.random.default_rng(seed)

        def pick(rows: tuple[Row, ...]) -> tuple[Row, ...]:
            groups: dict[tuple[str, str], list[int]] = {}
            for i, r in enumerate(rows):
                groups.setdefault((r.task, r.probe), []).append(i)
            queues = [list(rng.permutation(groups[k])) for k in sorted(groups)]
            chosen: list[int] = []
            while len(chosen) < min(n_per_split, len(rows)):
                for q in queues:
                    if q and len(chosen) < n_per_split:
                        chosen.append(int(q.pop(0)))
            return tuple(rows[i] for i in sorted(chosen))

        return UnlearningData(pick(self.forget), pick(self.retain))


def load_unlearning_data(forget: RowSource, retain: RowSource | None = None) -> UnlearningData:
    """The forget and retain sets from two sources, or from one source whose split column holds both."""
    if retain is None:
        rows = load_rows(forget, what="data")
        return UnlearningData(
            tuple(r for r in rows if r.split == "forget"), tuple(r for r in rows if r.split == "retain")
        )
    return UnlearningData(
        tuple(load_rows(forget, split="forget", what="forget set")),
        tuple(load_rows(retain, split="retain", what="retain set")),
    )


# ------------------------------------------------------------------------------------------ documents
def load_documents(
    source: RowSource | Sequence[str], *, field: str = "document", what: str = "documents"
) -> list[str]:
    """The texts of an MIA member or non-member file (jsonl/parquet with a `field` column) or list."""
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        items = list(source)
        if items and all(isinstance(x, str) for x in items) and not all(_is_data_path(x) for x in items):
            docs = items
            labels = [f"document {i}" for i in range(1, len(docs) + 1)]
            return _check_documents(docs, labels, what=what)
    records = _records(source, what=what)
    if not records:
        raise DataError(f"{what} holds no documents; pass at least one.")
    columns = list(dict.fromkeys(k for r in records for k in r))
    if field not in columns:
        raise DataError(
            f"{what} has no {field!r} column; it has {', '.join(map(str, columns))}. Pass field= naming "
            "the text column."
        )
    labels = [
        repr(_text(r.get("id"))) if _text(r.get("id")).strip() else f"row {n}"
        for n, r in enumerate(records, start=1)
    ]
    return _check_documents([r.get(field) for r in records], labels, what=what)


def _is_data_path(text: str) -> bool:
    return Path(text).suffix.lower() in (".parquet", ".jsonl", ".json") and "\n" not in text


def _check_documents(docs: Sequence[object], labels: Sequence[str], *, what: str) -> list[str]:
    if not docs:
        raise DataError(f"{what} holds no documents; pass at least one.")
    empty = [lab for lab, d in zip(labels, docs, strict=True) if not _text(d).strip()]
    if empty:
        raise DataError(f"{what}: {name_rows(empty)} are empty; drop them or fill in the text.")
    return [_text(d) for d in docs]


# ------------------------------------------------------------------------------------------- writing
def write_rows(rows: Iterable[Row], path: str | os.PathLike[str]) -> Path:
    """Write rows to a .jsonl or .parquet file atomically (columns id, input, output, task, split)."""
    target = Path(path)
    records = [dataclasses.asdict(r) for r in rows]
    suffix = target.suffix.lower()
    if suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        return atomic_write_text(target, text)
    if suffix == ".parquet":
        buffer = io.BytesIO()
        pd.DataFrame(records, columns=[*COLUMNS, "split"]).astype(str).to_parquet(buffer, index=False)
        return atomic_write_bytes(target, buffer.getvalue())
    raise OutputPathError(f"write_rows: {path} must end in .jsonl or .parquet.")
