"""What the statistics modules share: the result base class, argument checks and the random generator."""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Alternative", "StatResult"]

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES = ("two-sided", "greater", "less")
LN10 = math.log(10.0)
#: Field metadata of a large array (null draws, per-example data) that `StatResult.to_dict` leaves out.
ARRAY = {"array": True}


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, tuples and small arrays as lists; everything else as it is."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    return value


class StatResult:
    """Base of every statistics result (frozen dataclasses): one way to turn a result into a dict.

    `to_dict()` gives the scalar fields as plain Python values (NaN stays a float; the JSON writers of
    `reprokit.results` turn it into null); fields declared with ``metadata=ARRAY`` (null draws,
    per-example arrays) are left out so a result stays small in ``claims.json`` or a table row.
    """

    def to_dict(self) -> dict[str, Any]:
        """The result's scalar fields, JSON-ready."""
        if not dataclasses.is_dataclass(self):  # pragma: no cover - a subclass forgot @dataclass
            raise TypeError(f"{type(self).__name__} must be a dataclass to use StatResult.to_dict")
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if not f.metadata.get("array")
        }


def check_alternative(alternative: str) -> None:
    """Raise if ``alternative`` is not one of "two-sided", "greater", "less"."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def check_confidence(confidence: float) -> None:
    """Raise unless 0 < confidence < 1."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A numpy Generator from a Generator (kept), a seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def accepts_axis(fn: Callable[..., object]) -> bool:
    """Whether ``fn`` takes an ``axis`` keyword (then it is called once on a batch of resamples)."""
    try:
        return "axis" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def paired_1d(x: ArrayLike, y: ArrayLike, *, min_n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate two paired 1-D float samples: same length, no NaN, at least ``min_n``, not constant."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.ndim != 1 or ya.ndim != 1:
        raise ValueError(f"{what}: x and y must be 1-D, got shapes {xa.shape} and {ya.shape}")
    if xa.shape != ya.shape:
        raise ValueError(f"{what}: x and y must have the same length, got {xa.size} and {ya.size}")
    if xa.size < min_n:
        raise ValueError(f"{what}: need at least {min_n} pairs, got {xa.size}")
    for name, arr in (("x", xa), ("y", ya)):
        if np.isnan(arr).any():
            raise ValueError(f"{what}: {name} contains NaN; drop or impute those pairs first")
        if arr[0] == arr[-1] and np.all(arr == arr[0]):
            raise ValueError(f"{what}: {name} is constant, so the rank correlation is undefined")
    return xa, ya
