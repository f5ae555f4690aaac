"""Resumable long runs: each finished piece is saved atomically under a hash of what it depends on."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reprokit.results._atomic import atomic_write_json, to_jsonable

__all__ = ["ResumeStore", "code_fingerprint"]

logger = logging.getLogger(__name__)


def code_fingerprint(*packages: Any) -> str:
    """A hash of the Python sources of the given imported packages: put it in a `ResumeStore` piece's
    description so that saved pieces go stale when the code that computed them changes."""
    sha = hashlib.sha256()
    for package in packages:
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            sha.update(path.relative_to(root).as_posix().encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


class ResumeStore:
    """Finished pieces of a long run, each saved atomically as it completes, so a rerun resumes.

    A piece is described by a JSON-able dict (the config, the model, the task, the code's
    `code_fingerprint`, library versions, ...); its value is saved under a hash of that description and
    loaded back only if the saved description is identical. With
    `enabled=False` (e.g. a `--fresh` flag) nothing is loaded, but pieces are still saved. A piece that
    cannot be saved (an unwritable folder) is logged and the run goes on.
    """

    def __init__(self, root: str | os.PathLike[str], *, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self.loaded = 0
        self.computed = 0

    def path(self, parts: Mapping[str, Any]) -> Path:
        """Where the piece described by `parts` is saved."""
        return self._path(to_jsonable(dict(parts)))

    def _path(self, described: Any) -> Path:
        text = json.dumps(described, sort_keys=True, allow_nan=False)
        return self.root / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"

    def fetch_or_run(
        self,
        parts: Mapping[str, Any],
        compute: Callable[[], Any],
        *,
        encode: Callable[[Any], Any] = to_jsonable,
        decode: Callable[[Any], Any] = lambda value: value,
    ) -> Any:
        """The saved value of this piece if there is one, else `compute()` (then saved)."""
        described = to_jsonable(dict(parts))
        path = self._path(described)
        if self.enabled and path.is_file():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                if saved.get("parts") == described:
                    self.loaded += 1
                    logger.info("resumed a finished piece from %s", path)
                    return decode(saved["value"])
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
                logger.warning("ignoring unreadable saved piece %s (%s); computing it again", path, err)
        value = compute()
        self.computed += 1
        try:
            atomic_write_json(path, {"parts": described, "value": encode(value)}, indent=None)
        except (OSError, ValueError, TypeError) as err:
            logger.warning("could not save a finished piece to %s (%s); the run goes on", path, err)
        return value
