"""Progress bars that stay visible in a terminal and go quiet in CI, logs and when asked."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["configure_logging", "is_quiet", "progress"]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _env_flag(name: str) -> bool | None:
    """True/False for a set boolean-ish env var, None if unset; unknown non-empty values count as true."""
    value = os.environ.get(name)
    if value is None:
        return None
    return value.strip().lower() not in _FALSE


def is_quiet() -> bool:
    """Whether progress output is suppressed: ``REPROKIT_QUIET`` if set, else whether ``CI`` is truthy."""
    quiet = _env_flag("REPROKIT_QUIET")
    if quiet is not None:
        return quiet
    return bool(_env_flag("CI"))


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: float | None = None,
    desc: str | None = None,
    leave: bool = False,
    **kwargs: Any,
) -> tqdm:
    """``tqdm.auto.tqdm`` that is off under CI or ``REPROKIT_QUIET=1``, and (tqdm's rule) when stderr is
    not a terminal; an explicit ``disable=`` wins."""
    if "disable" not in kwargs:
        kwargs["disable"] = True if is_quiet() else None
    return tqdm(iterable, total=total, desc=desc, leave=leave, **kwargs)


class _TqdmHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log through ``tqdm.write`` so messages don't tear an active progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def configure_logging(level: int | str = "INFO") -> None:
    """Configure root logging for a command-line entry point (never call this from library code)."""
    handler = _TqdmHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level, handlers=[handler], force=True
    )
