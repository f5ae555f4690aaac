"""Confidence intervals: bootstrap (one sample, or two systems on the same items), exact binomial, seeds.

Every function returns a `ConfidenceInterval`; the reproduce claims use the one that fits the measurement:
`binomial_ci` for a rate, `paired_bootstrap_ci` when two systems are compared on the same items, and
`seed_interval` for a value measured once per independent seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

from reprokit.stats._base import StatResult, accepts_axis, as_generator, check_confidence

__all__ = [
    "ConfidenceInterval",
    "binomial_ci",
    "bootstrap_ci",
    "mean_difference",
    "paired_bootstrap_ci",
    "seed_interval",
]

logger = logging.getLogger(__name__)

BootstrapMethod = Literal["percentile", "BCa", "basic"]
_BOOTSTRAP_METHODS = ("percentile", "BCa", "basic")


@dataclass(frozen=True)
class ConfidenceInterval(StatResult):
    """A point estimate with a two-sided confidence interval and how it was computed."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)


def _check_method(method: str) -> None:
    if method not in _BOOTSTRAP_METHODS:
        raise ValueError(f"method must be 'percentile', 'BCa' or 'basic', got {method!r}")


def _sample(data: ArrayLike, what: str, name: str = "data") -> np.ndarray:
    """A non-empty 1-D float sample without NaN."""
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{what} expects 1-D {name}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what} needs at least one observation, got empty {name}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; drop them before bootstrapping")
    return arr


def bootstrap_ci(
    data: ArrayLike,
    statistic: Callable[..., float] = np.mean,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: BootstrapMethod = "percentile",
    rng: np.random.Generator | int | None = None,
) -> ConfidenceInterval:
    """Bootstrap CI of ``statistic`` over a 1-D sample via ``scipy.stats.bootstrap``.

    Degenerate data (all values equal, including n = 1) gives ``low = high = estimate`` instead of scipy's
    NaN and warning.
    """
    check_confidence(confidence)
    _check_method(method)
    arr = _sample(data, "bootstrap_ci")
    estimate = float(statistic(arr))
    if np.all(arr == arr[0]):
        logger.debug("bootstrap_ci: degenerate data (all %d values equal); zero-width interval", arr.size)
        return ConfidenceInterval(estimate, estimate, estimate, confidence, method)
    res = scipy.stats.bootstrap(
        (arr,),
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method=method,
        rng=as_generator(rng),
    )
    ci = res.confidence_interval
    return ConfidenceInterval(estimate, float(ci.low), float(ci.high), confidence, method)


def mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """``mean(a) - mean(b)`` along ``axis``: the default statistic of `paired_bootstrap_ci`."""
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_bootstrap_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    statistic: Callable[..., float] = mean_difference,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    method: BootstrapMethod = "percentile",
    rng: np.random.Generator | int | None = None,
) -> ConfidenceInterval:
    """Bootstrap CI of ``statistic(a, b)`` for two systems scored on the same items.

    Items are resampled with replacement and the same items are kept for both systems (``a[i]`` and
    ``b[i]`` are one item's scores), so the shared item difficulty cancels out of the interval. The
    default statistic is the mean difference ``mean(a) - mean(b)``; a custom one takes ``(a, b)`` and,
    if it accepts ``axis``, is called on whole batches of resamples. When every resample gives the same
    value (all pairs equal, or a constant difference under the default statistic) the interval has zero
    width instead of scipy's NaN and warning.
    """
    check_confidence(confidence)
    _check_method(method)
    aa = _sample(a, "paired_bootstrap_ci", "a")
    bb = _sample(b, "paired_bootstrap_ci", "b")
    if aa.shape != bb.shape:
        raise ValueError(
            f"paired_bootstrap_ci: a and b must score the same items, got {aa.size} and {bb.size} values"
        )
    vectorized = accepts_axis(statistic)
    estimate = float(statistic(aa, bb, axis=-1) if vectorized else statistic(aa, bb))
    label = "paired bootstrap" if method == "percentile" else f"paired bootstrap, {method}"
    constant_pairs = bool(np.all(aa == aa[0]) and np.all(bb == bb[0]))
    diff = aa - bb
    constant_difference = statistic is mean_difference and bool(np.all(diff == diff[0]))
    if constant_pairs or constant_difference:
        logger.debug("paired_bootstrap_ci: every resample gives %g; zero-width interval", estimate)
        return ConfidenceInterval(estimate, estimate, estimate, confidence, label)
    res = scipy.stats.bootstrap(
        (aa, bb),
        statistic,
        paired=True,
        vectorized=vectorized,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method=method,
        rng=as_generator(rng),
    )
    ci = res.confidence_interval
    return ConfidenceInterval(estimate, float(ci.low), float(ci.high), confidence, label)


def binomial_ci(k: int, n: int, confidence: float = 0.95) -> ConfidenceInterval:
    """Clopper-Pearson (exact) interval for a proportion k/n, via ``scipy.stats.binomtest``."""
    check_confidence(confidence)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need n >= 1 and 0 <= k <= n, got k={k}, n={n}")
    ci = scipy.stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return ConfidenceInterval(k / n, float(ci.low), float(ci.high), confidence, "exact binomial")


def seed_interval(values: ArrayLike, confidence: float = 0.95) -> ConfidenceInterval:
    """Mean over independent seeds with a Student-t interval: mean ± t_{n-1} · sd / sqrt(n).

    With one seed there is no spread to estimate: the interval is ``(nan, nan)``, never a zero-width
    interval that would look certain (a claim judged on it does not hold on the interval). Equal values
    give a zero-width interval.
    """
    check_confidence(confidence)
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"seed_interval needs a 1-D list of one value per seed, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"seed_interval: every seed's value must be finite, got {arr.tolist()}")
    mean = float(arr.mean())
    if arr.size == 1:
        return ConfidenceInterval(mean, math.nan, math.nan, confidence, "t over seeds")
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2.0, arr.size - 1)) * float(
        arr.std(ddof=1) / math.sqrt(arr.size)
    )
    return ConfidenceInterval(mean, mean - half, mean + half, confidence, "t over seeds")
