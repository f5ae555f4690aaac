"""The output folder of a run: checked before any work, filled in a hidden staging folder, moved in last.

A failed or interrupted run leaves nothing behind and never damages what the folder already holds; the
folder itself (and its parents) only appear when the run has finished writing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reprokit.cli import check_output_path

__all__ = ["check_output_dir", "staged_output"]


def _first_existing(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.exists()), Path(path.anchor or "."))


def check_output_dir(out: str | os.PathLike[str]) -> Path:
    """Raise `OutputPathError` unless `out` can be created and written as a folder; return it absolute.

    Checked at start so that a bad ``--out`` fails in a second, not after an hour of training.
    """
    return check_output_path(out, folder=True)


@contextlib.contextmanager
def staged_output(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden staging folder; on success its files move into `out`, on error it is removed.

    Files already in `out` that the run does not write are kept; files it writes are replaced one by one
    with ``os.replace`` (atomic per file).
    """
    final = check_output_dir(out)
    anchor = _first_existing(final)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=anchor))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    try:
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            stage.rename(final)
            return
        for item in sorted(stage.rglob("*")):
            target = final / item.relative_to(stage)
            if item.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                item.replace(target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
