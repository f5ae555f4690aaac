"""Combining and adjusting p-values, also in log10 space where they fall below 1e-308, and printing them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike
from statsmodels.stats.multitest import multipletests

__all__ = [
    "adjust_log10_pvalues",
    "adjust_pvalues",
    "combine_pvalues",
    "ks_uniform_test",
    "log10_p_to_str",
]

LogAdjustMethod = Literal["holm", "fdr_bh", "bonferroni"]


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


def adjust_log10_pvalues(
    log10_pvalues: Sequence[float] | np.ndarray, method: LogAdjustMethod = "holm"
) -> np.ndarray:
    """Adjusted log10 p-values (Holm step-down, Benjamini-Hochberg step-up or Bonferroni), capped at 0.

    The adjustment is done on log10 p, so the result equals statsmodels' `multipletests` wherever that
    is representable and stays finite where p underflows (query-test p-values reach 1e-300 and below).
    """
    lp = np.asarray(log10_pvalues, dtype=np.float64).ravel()
    if lp.size == 0:
        raise ValueError("need at least one p-value to adjust.")
    if np.isnan(lp).any() or (lp > 1e-12).any():
        raise ValueError("log10 p-values must be <= 0 and not NaN.")
    m = lp.size
    order = np.argsort(lp, kind="stable")
    sorted_lp = lp[order]
    rank = np.arange(1, m + 1)
    if method == "bonferroni":
        adj_sorted = sorted_lp + math.log10(m)
    elif method == "holm":
        adj_sorted = np.maximum.accumulate(sorted_lp + np.log10(m - rank + 1))
    elif method == "fdr_bh":
        adj_sorted = np.minimum.accumulate((sorted_lp + np.log10(m / rank))[::-1])[::-1]
    else:
        raise ValueError(f"unknown method {method!r}; use 'holm', 'fdr_bh' or 'bonferroni'.")
    out = np.empty(m)
    out[order] = np.minimum(adj_sorted, 0.0)
    return out


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
