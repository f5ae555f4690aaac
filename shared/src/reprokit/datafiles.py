"""Checks of a local input file before any work: it exists, is not empty, and parses (jsonl line by line).

Each problem is a `reprokit.errors.DataError` (or a subclass the caller passes) whose message starts
with the caller's name for the file (``--texts bob.jsonl``, ``transcript t.parquet``) and says the fix,
so a bad file fails in a second with one line instead of a traceback from deep inside `datasets`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprokit.errors import DataError

if TYPE_CHECKING:
    import datasets

__all__ = ["check_input_file", "jsonl_problem", "load_data_files", "read_jsonl", "read_text_lines"]

_HEAD = 1 << 16


def check_input_file(path: str | os.PathLike[str], *, what: str, error: type[DataError] = DataError) -> Path:
    """``path`` as a Path if it is an existing, non-empty file; a parquet file must carry its magic bytes.

    ``what`` names the file in the message, e.g. ``"--texts"`` or ``"transcript"``.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise error(f"{what} {path} is a folder; pass a file.")
    if not p.is_file():
        raise error(f"{what} {path}: no such file; pass an existing file.")
    with open(p, "rb") as fh:
        head = fh.read(_HEAD)
        if not head.strip():
            raise error(f"{what} {path} is empty; write at least one example to it.")
        if p.suffix.lower() == ".parquet":
            fh.seek(max(0, p.stat().st_size - 4))
            if not head.startswith(b"PAR1") or fh.read(4) != b"PAR1":
                raise error(
                    f"{what} {path} is not a parquet file (no PAR1 magic bytes); pass a file written by "
                    "to_parquet, or a .jsonl file."
                )
    return p


def jsonl_problem(path: str | os.PathLike[str]) -> str | None:
    """Where a file stops being one JSON object per line: ``"line N: reason"``; None if every line is one."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                return f"line {number}: {err.msg}"
            if not isinstance(row, dict):
                return f"line {number}: a JSON {type(row).__name__}, not an object"
    return None


def read_text_lines(
    path: str | os.PathLike[str], *, what: str, error: type[DataError] = DataError
) -> list[tuple[int, str]]:
    """The non-blank lines of a UTF-8 text file with their 1-based numbers (file checked first)."""
    p = check_input_file(path, what=what, error=error)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(
            f"{what} {path} is not UTF-8 text (byte {err.start}); pass a text or .jsonl file."
        ) from None
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not lines:
        raise error(f"{what} {path} is empty; write at least one example to it.")
    return lines


def read_jsonl(
    path: str | os.PathLike[str], *, what: str, error: type[DataError] = DataError
) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a jsonl file with their line numbers; the first bad line is named."""
    rows = []
    for number, line in read_text_lines(path, what=what, error=error):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise error(
                f"{what} {path} line {number} is not valid JSON ({err.msg}); write one JSON object per line."
            ) from None
        if not isinstance(row, dict):
            raise error(
                f"{what} {path} line {number} is a JSON {type(row).__name__}, not an object; write one "
                "JSON object per line."
            )
        rows.append((number, row))
    return rows


DATA_SUFFIXES = (".parquet", ".jsonl", ".json")


def load_data_files(
    files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    what: str,
    error: type[DataError] = DataError,
) -> datasets.Dataset:
    """Local .parquet / .jsonl / .json files of one format as one `datasets.Dataset`.

    Every file is checked first (`check_input_file`; jsonl line by line, since the `datasets` error does
    not name the line), and a file `datasets` cannot read is one `error` naming it and the reason.
    """
    import datasets

    from reprokit.cli import error_summary

    paths = [str(files)] if isinstance(files, (str, os.PathLike)) else [str(f) for f in files]
    shown = ", ".join(paths)
    suffixes = {Path(f).suffix.lower() for f in paths}
    if len(suffixes) != 1 or not suffixes <= set(DATA_SUFFIXES):
        raise error(
            f"{what} {shown}: unknown or mixed formats {sorted(suffixes)}; pass .jsonl, .json or .parquet "
            "files of one format."
        )
    for f in paths:
        check_input_file(f, what=what, error=error)
        bad = jsonl_problem(f) if f.lower().endswith(".jsonl") else None
        if bad is not None:
            raise error(f"{what} {f} {bad}; write one JSON object per line.")
    fmt = "parquet" if suffixes == {".parquet"} else "json"
    try:
        return datasets.load_dataset(fmt, data_files=paths, split="train")
    except Exception as err:  # pyarrow and datasets raise many types for an unreadable file
        bad = jsonl_problem(paths[0]) if suffixes == {".json"} else None
        raise error(
            f"{what} {shown} is not a readable {fmt} file ({bad or error_summary(err)}); pass a .parquet "
            "file or one JSON object per line."
        ) from err
