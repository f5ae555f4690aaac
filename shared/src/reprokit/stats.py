"""Statistics that scipy / statsmodels don't give in one call.

Rank-correlation tests that report ``log10 p`` without underflow, exact Monte Carlo permutation p-values
``(b + 1) / (m + 1)`` (optionally permuting only within blocks), bootstrap and Clopper-Pearson confidence
intervals, and thin validated wrappers for p-value combination and multiple-testing correction.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.integrate
import scipy.special
import scipy.stats
from numpy.typing import ArrayLike
from statsmodels.stats.multitest import multipletests

__all__ = [
    "Alternative",
    "ConfidenceInterval",
    "CorrelationTest",
    "PermutationResult",
    "adjust_pvalues",
    "binomial_ci",
    "bootstrap_ci",
    "combine_pvalues",
    "correlation_test",
    "kendall_test",
    "ks_uniform_test",
    "log10_p_to_str",
    "permutation_pvalue",
    "permutation_test",
    "spearman_permutation_test",
    "spearman_test",
    "t_logsf",
]

logger = logging.getLogger(__name__)

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")
_LN10 = math.log(10.0)
# Below this, a p-value from scipy is (close to) subnormal and we recompute it in log space.
_TINY_P = 1e-290
# Below this natural-log sf, scipy's t.logsf is log(sf) of a subnormal or zero sf: use the tail integral.
_SCIPY_LOGSF_FLOOR = -650.0
# Elements per chunk of permuted indices (keeps memory at a few tens of MB).
_CHUNK_ELEMENTS = 1 << 20


# --------------------------------------------------------------------------------------------------------
# Rank correlation tests with log10 p
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationTest:
    """Result of a rank-correlation test; ``log10_pvalue`` stays finite when ``pvalue`` underflows to 0."""

    statistic: float
    pvalue: float
    log10_pvalue: float
    n: int
    method: str
    alternative: str


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")


def _paired_1d(x: ArrayLike, y: ArrayLike, *, min_n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
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


def t_logsf(t: float, df: float) -> float:
    """Natural log of the Student-t survival function, finite far beyond where ``sf`` underflows.

    scipy's ``t.logsf`` is ``log(sf)`` and returns ``-inf`` once ``sf < 1e-308``; there we integrate the
    density relative to its value at ``t`` (``log sf = log f(t) + log ∫ f(s)/f(t) ds``), which is exact up to
    quadrature error and has no underflow.
    """
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if math.isnan(t):
        return math.nan
    if t == math.inf:
        return -math.inf
    if t == -math.inf:
        return 0.0
    lp = float(scipy.stats.t.logsf(t, df))
    if t <= 0 or lp > _SCIPY_LOGSF_FLOOR:
        return lp
    nu = float(df)
    half = (nu + 1.0) / 2.0
    log_norm = scipy.special.gammaln(half) - scipy.special.gammaln(nu / 2.0) - 0.5 * math.log(nu * math.pi)
    g0 = -half * math.log1p(t * t / nu)
    # Integration variable v = u * |g'(t)|, so the integrand decays roughly like exp(-v).
    rate = (nu + 1.0) * t / (nu + t * t)
    denom = nu + t * t

    def scaled(v: float) -> float:
        u = v / rate
        return math.exp(-half * math.log1p((2.0 * t * u + u * u) / denom))

    integral, _ = scipy.integrate.quad(scaled, 0.0, math.inf, epsabs=0.0, epsrel=1e-12, limit=200)
    return float(log_norm + g0 + math.log(integral) - math.log(rate))


def _t_log_pvalue(t: float, df: float, alternative: str) -> float:
    """Natural-log p-value of a t statistic for the given alternative."""
    if alternative == "greater":
        return t_logsf(t, df)
    if alternative == "less":
        return t_logsf(-t, df)
    return min(0.0, math.log(2.0) + t_logsf(abs(t), df))


def _finish(statistic: float, log_p: float, n: int, method: str, alternative: str) -> CorrelationTest:
    log_p = min(0.0, log_p)
    return CorrelationTest(
        statistic=float(statistic),
        pvalue=float(math.exp(log_p)),
        log10_pvalue=float(log_p / _LN10),
        n=int(n),
        method=method,
        alternative=alternative,
    )


def spearman_test(x: ArrayLike, y: ArrayLike, alternative: Alternative = "two-sided") -> CorrelationTest:
    """Spearman's rho with the t-approximation p (n-2 df) computed in log space.

    ``log10_pvalue`` is finite even for p far below 1e-308 (e.g. rho=0.1 at n=10^6). For ``|rho| == 1`` the
    t approximation gives p = 0 exactly, reported as ``log10_pvalue = -inf`` (like scipy's p = 0).
    """
    _check_alternative(alternative)
    xa, ya = _paired_1d(x, y, min_n=3, what="spearman_test")
    n = xa.size
    rho = float(scipy.stats.spearmanr(xa, ya).statistic)
    rho = min(1.0, max(-1.0, rho))
    df = n - 2
    # |rho| == 1: t = ±inf, p = 0 exactly under the t approximation
    t = math.copysign(math.inf, rho) if abs(rho) == 1.0 else rho * math.sqrt(df / ((1 - rho) * (1 + rho)))
    return _finish(rho, _t_log_pvalue(t, df, alternative), n, "spearman", alternative)


def _tie_stats(values: np.ndarray) -> tuple[int, float, float]:
    """Kendall tie statistics (pairs tied, sum t(t-1)(t-2), sum t(t-1)(2t+5)) as scipy computes them."""
    _, counts = np.unique(values, return_counts=True)
    cnt = counts[counts > 1].astype(np.float64)
    return (
        int((counts[counts > 1] * (counts[counts > 1] - 1) // 2).sum()),
        float((cnt * (cnt - 1.0) * (cnt - 2.0)).sum()),
        float((cnt * (cnt - 1.0) * (2.0 * cnt + 5.0)).sum()),
    )


def _kendall_log_p_fallback(xa: np.ndarray, ya: np.ndarray, tau: float, alternative: str) -> float:
    """Log p of Kendall's tau-b when scipy's p underflows.

    Without ties and with at most one discordant (or concordant) pair scipy uses the exact null; we
    reproduce it in log space (1/n! or n/n!). Otherwise the normal approximation with the tie-corrected
    variance of ``concordant - discordant`` (as in scipy), evaluated with ``norm.logsf``.
    """
    n = xa.size
    tot = n * (n - 1) // 2
    xtie, x0, x1 = _tie_stats(xa)
    ytie, y0, y1 = _tie_stats(ya)
    con_minus_dis = tau * math.sqrt(tot - xtie) * math.sqrt(tot - ytie)
    if xtie == 0 and ytie == 0:
        dis = round((tot - con_minus_dis) / 2.0)
        extreme = min(dis, tot - dis)
        if extreme <= 1:
            favourable = (dis <= 1 and alternative in ("greater", "two-sided")) or (
                tot - dis <= 1 and alternative in ("less", "two-sided")
            )
            if favourable:
                count = 1.0 if extreme == 0 else float(n)
                log_p = math.log(count) - float(scipy.special.gammaln(n + 1))
                if alternative == "two-sided":
                    log_p += math.log(2.0)
                return log_p
    m = n * (n - 1.0)
    var = (m * (2.0 * n + 5.0) - x1 - y1) / 18.0 + (2.0 * xtie * ytie) / m + x0 * y0 / (9.0 * m * (n - 2))
    z = con_minus_dis / math.sqrt(var)
    if alternative == "greater":
        return float(scipy.stats.norm.logsf(z))
    if alternative == "less":
        return float(scipy.stats.norm.logcdf(z))
    return min(0.0, math.log(2.0) + float(scipy.stats.norm.logsf(abs(z))))


def kendall_test(x: ArrayLike, y: ArrayLike, alternative: Alternative = "two-sided") -> CorrelationTest:
    """Kendall's tau-b (scipy; exact p for small n without ties), log-space p where scipy's underflows."""
    _check_alternative(alternative)
    xa, ya = _paired_1d(x, y, min_n=3, what="kendall_test")
    res = scipy.stats.kendalltau(xa, ya, alternative=alternative, method="auto")
    tau = float(res.statistic)
    p = float(res.pvalue)
    log_p = math.log(p) if p > _TINY_P else _kendall_log_p_fallback(xa, ya, tau, alternative)
    return _finish(tau, log_p, xa.size, "kendall", alternative)


def correlation_test(
    x: ArrayLike,
    y: ArrayLike,
    *,
    method: Literal["spearman", "kendall"] = "spearman",
    alternative: Alternative = "two-sided",
) -> CorrelationTest:
    """Dispatch to :func:`spearman_test` or :func:`kendall_test`."""
    if method == "spearman":
        return spearman_test(x, y, alternative)
    if method == "kendall":
        return kendall_test(x, y, alternative)
    raise ValueError(f"method must be 'spearman' or 'kendall', got {method!r}")


# --------------------------------------------------------------------------------------------------------
# Permutation tests
# --------------------------------------------------------------------------------------------------------


def permutation_pvalue(observed: float, null: ArrayLike, alternative: Alternative = "greater") -> float:
    """Exact Monte Carlo p-value ``(1 + #{null >= observed}) / (m + 1)`` (Phipson & Smyth 2010); never 0.

    ``"less"`` counts ``null <= observed``; ``"two-sided"`` compares absolute values (a null centred at 0).
    Null values within a relative 1e-12 of ``observed`` count as ties (as extreme), so a statistic computed
    along a different code path for the identity permutation is not lost to rounding.
    """
    _check_alternative(alternative)
    null_arr = np.asarray(null, dtype=float).ravel()
    if null_arr.size == 0:
        raise ValueError("null distribution is empty; draw at least one resample")
    if np.isnan(null_arr).any() or math.isnan(observed):
        raise ValueError("observed statistic or null distribution contains NaN")
    obs = float(observed)
    if alternative == "two-sided":
        obs, null_arr = abs(obs), np.abs(null_arr)
    tol = 1e-12 * max(1.0, abs(obs))
    if alternative == "less":
        b = int(np.count_nonzero(null_arr <= obs + tol))
    else:
        b = int(np.count_nonzero(null_arr >= obs - tol))
    return (b + 1.0) / (null_arr.size + 1.0)


@dataclass(frozen=True)
class PermutationResult:
    """Observed statistic, its permutation p-value and the null draws it came from."""

    statistic: float
    pvalue: float
    null: np.ndarray
    n_resamples: int
    alternative: str


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _block_groups(blocks: ArrayLike | None, n: int) -> list[np.ndarray] | None:
    """Index arrays of each block (only blocks with 2+ members need shuffling), or None without blocks."""
    if blocks is None:
        return None
    labels = np.asarray(blocks)
    if labels.ndim != 1 or labels.size != n:
        raise ValueError(f"blocks must be a 1-D array of n={n} labels, got shape {labels.shape}")
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return [g for g in np.split(order, bounds) if g.size > 1]


def _permutation_chunks(
    n: int, n_resamples: int, rng: np.random.Generator, groups: list[np.ndarray] | None
) -> Iterator[np.ndarray]:
    """Yield (k, n) index arrays, each row a uniform permutation (within blocks when ``groups`` is set)."""
    chunk = max(1, min(n_resamples, _CHUNK_ELEMENTS // max(n, 1)))
    done = 0
    base = np.arange(n)
    while done < n_resamples:
        k = min(chunk, n_resamples - done)
        if groups is None:
            idx = rng.permuted(np.broadcast_to(base, (k, n)), axis=1)
        else:
            idx = np.broadcast_to(base, (k, n)).copy()
            for g in groups:
                idx[:, g] = rng.permuted(np.broadcast_to(g, (k, g.size)), axis=1)
        done += k
        yield idx


def _accepts_axis(fn: Callable[..., object]) -> bool:
    try:
        return "axis" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def permutation_test(
    statistic: Callable[..., float],
    x: ArrayLike,
    y: ArrayLike,
    *,
    n_resamples: int = 9999,
    alternative: Alternative = "greater",
    blocks: ArrayLike | None = None,
    rng: np.random.Generator | int | None = None,
    vectorized: bool | None = None,
) -> PermutationResult:
    """Monte Carlo permutation test of ``statistic(x, y)`` permuting ``x`` relative to ``y``.

    With ``blocks`` (one label per element) ``x`` is shuffled only within blocks, e.g. within training
    stages. If ``statistic`` takes an ``axis`` keyword (or ``vectorized=True``) it is called once per chunk
    as ``statistic(x_perm, y_b, axis=-1)`` with ``x_perm`` of shape (k, n) and ``y_b`` broadcast to it;
    otherwise once per resample.
    """
    _check_alternative(alternative)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    xa = np.asarray(x)
    ya = np.asarray(y)
    if xa.ndim != 1 or ya.ndim != 1 or xa.size != ya.size:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {xa.shape} and {ya.shape}")
    n = xa.size
    if n < 2:
        raise ValueError(f"need at least 2 pairs to permute, got {n}")
    gen = _as_generator(rng)
    groups = _block_groups(blocks, n)
    if vectorized is None:
        vectorized = _accepts_axis(statistic)
    observed = float(statistic(xa, ya, axis=-1) if vectorized else statistic(xa, ya))
    null = np.empty(n_resamples, dtype=float)
    pos = 0
    for idx in _permutation_chunks(n, n_resamples, gen, groups):
        k = idx.shape[0]
        xp = xa[idx]
        if vectorized:
            values = np.asarray(statistic(xp, np.broadcast_to(ya, xp.shape), axis=-1), dtype=float)
            if values.shape != (k,):
                raise ValueError(
                    f"vectorized statistic must return shape ({k},) for input ({k}, {n}), got {values.shape}"
                )
            null[pos : pos + k] = values
        else:
            null[pos : pos + k] = [float(statistic(row, ya)) for row in xp]
        pos += k
    pvalue = permutation_pvalue(observed, null, alternative)
    return PermutationResult(observed, pvalue, null, n_resamples, alternative)


def _standardized_ranks(a: np.ndarray) -> np.ndarray:
    r = scipy.stats.rankdata(a)
    r = r - r.mean()
    return r / np.sqrt(np.dot(r, r))


def spearman_permutation_test(
    x: ArrayLike,
    y: ArrayLike,
    *,
    n_resamples: int = 9999,
    alternative: Alternative = "greater",
    blocks: ArrayLike | None = None,
    rng: np.random.Generator | int | None = None,
) -> PermutationResult:
    """Permutation test of Spearman's rho: rank once, permute ranks, Pearson on ranks in chunks.

    This is the exact small-n counterpart of :func:`spearman_test` (Algorithm 1 with m = ``n_resamples``).
    """
    _check_alternative(alternative)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    xa, ya = _paired_1d(x, y, min_n=3, what="spearman_permutation_test")
    rx = _standardized_ranks(xa)
    ry = _standardized_ranks(ya)
    observed = float(np.dot(rx, ry))
    gen = _as_generator(rng)
    groups = _block_groups(blocks, xa.size)
    null = np.empty(n_resamples, dtype=float)
    pos = 0
    for idx in _permutation_chunks(xa.size, n_resamples, gen, groups):
        k = idx.shape[0]
        null[pos : pos + k] = rx[idx] @ ry
        pos += k
    pvalue = permutation_pvalue(observed, null, alternative)
    return PermutationResult(observed, pvalue, null, n_resamples, alternative)


# --------------------------------------------------------------------------------------------------------
# Confidence intervals
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def bootstrap_ci(
    data: ArrayLike,
    statistic: Callable[..., float] = np.mean,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: Literal["percentile", "BCa", "basic"] = "percentile",
    rng: np.random.Generator | int | None = None,
) -> ConfidenceInterval:
    """Bootstrap CI of ``statistic`` over a 1-D sample via ``scipy.stats.bootstrap``.

    Degenerate data (all values equal, including n = 1) gives ``low = high = estimate`` instead of scipy's
    NaN and warning.
    """
    _check_confidence(confidence)
    if method not in ("percentile", "BCa", "basic"):
        raise ValueError(f"method must be 'percentile', 'BCa' or 'basic', got {method!r}")
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"bootstrap_ci expects 1-D data, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("bootstrap_ci needs at least one observation, got empty data")
    if np.isnan(arr).any():
        raise ValueError("data contains NaN; drop them before bootstrapping")
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
        rng=_as_generator(rng),
    )
    ci = res.confidence_interval
    return ConfidenceInterval(estimate, float(ci.low), float(ci.high), confidence, method)


def binomial_ci(k: int, n: int, confidence: float = 0.95) -> ConfidenceInterval:
    """Clopper-Pearson (exact) interval for a proportion k/n, via ``scipy.stats.binomtest``."""
    _check_confidence(confidence)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need n >= 1 and 0 <= k <= n, got k={k}, n={n}")
    ci = scipy.stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return ConfidenceInterval(k / n, float(ci.low), float(ci.high), confidence, "clopper-pearson")


# --------------------------------------------------------------------------------------------------------
# Combining and adjusting p-values
# --------------------------------------------------------------------------------------------------------


def _valid_pvalues(pvalues: ArrayLike) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float).ravel()
    if p.size == 0:
        raise ValueError("need at least one p-value, got none")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must lie in [0, 1] and not be NaN")
    return p


def combine_pvalues(
    pvalues: ArrayLike,
    method: Literal["fisher", "stouffer", "pearson", "tippett", "mudholkar_george"] = "fisher",
    weights: ArrayLike | None = None,
) -> float:
    """Combine p-values that are independent under H0 (``scipy.stats.combine_pvalues``); weights: Stouffer."""
    p = _valid_pvalues(pvalues)
    if weights is not None:
        if method != "stouffer":
            raise ValueError(f"weights are only used by method='stouffer', not {method!r}")
        w = np.asarray(weights, dtype=float).ravel()
        if w.shape != p.shape:
            raise ValueError(f"weights must match pvalues in length ({p.size}), got {w.size}")
        return float(scipy.stats.combine_pvalues(p, method=method, weights=w).pvalue)
    with np.errstate(divide="ignore"):
        return float(scipy.stats.combine_pvalues(p, method=method).pvalue)


def adjust_pvalues(pvalues: ArrayLike, method: str = "holm", alpha: float = 0.05) -> np.ndarray:
    """Multiple-testing adjusted p-values (statsmodels ``multipletests``: holm, fdr_bh, bonferroni, ...)."""
    p = _valid_pvalues(pvalues)
    return np.asarray(multipletests(p, alpha=alpha, method=method)[1], dtype=float)


def ks_uniform_test(pvalues: ArrayLike) -> tuple[float, float]:
    """KS statistic and p-value of p-values against U(0, 1): a calibration check under H0."""
    p = _valid_pvalues(pvalues)
    res = scipy.stats.kstest(p, "uniform")
    return float(res.statistic), float(res.pvalue)


def log10_p_to_str(log10_p: float, digits: int = 2) -> str:
    """Format a p-value given as log10 p, e.g. ``-133.49 -> "3.2e-134"``, far below 1e-308 too.

    p >= 1e-3 is written plainly (``"0.012"``); ``-inf`` is ``"0"``.
    """
    if math.isnan(log10_p):
        return "nan"
    if log10_p == -math.inf:
        return "0"
    if log10_p > 0:
        log10_p = 0.0 if log10_p < 1e-9 else log10_p
        if log10_p > 0:
            raise ValueError(f"log10 p must be <= 0, got {log10_p}")
    if log10_p >= -3:
        return f"{10.0**log10_p:.{digits}g}"
    exponent = math.floor(log10_p)
    mantissa = round(10.0 ** (log10_p - exponent), digits - 1)
    if mantissa >= 10.0:
        mantissa /= 10.0
        exponent += 1
    return f"{mantissa:.{digits - 1}f}e{exponent:03d}"
