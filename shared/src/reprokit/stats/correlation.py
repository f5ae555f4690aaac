"""Rank-correlation tests whose p-value is reported as ``log10 p`` and never underflows.

Spearman (t approximation in log space), Kendall tau-b (scipy, with a log-space fallback), and the
stage-wise (blocked) Spearman test whose one-sided block p-values are combined by weighted Stouffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.integrate
import scipy.special
import scipy.stats
from numpy.typing import ArrayLike

from reprokit.stats._base import LN10, Alternative, StatResult, check_alternative, paired_1d

__all__ = [
    "CorrelationTest",
    "blocked_spearman_test",
    "correlation_test",
    "kendall_test",
    "spearman_test",
    "t_logsf",
]


# Below this, a p-value from scipy is (close to) subnormal and we recompute it in log space.
_TINY_P = 1e-290
# Below this natural-log sf, scipy's t.logsf is log(sf) of a subnormal or zero sf: use the tail integral.
_SCIPY_LOGSF_FLOOR = -650.0


@dataclass(frozen=True)
class CorrelationTest(StatResult):
    """Result of a rank-correlation test; ``log10_pvalue`` stays finite when ``pvalue`` underflows to 0."""

    statistic: float
    pvalue: float
    log10_pvalue: float
    n: int
    method: str
    alternative: str


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
        log10_pvalue=float(log_p / LN10),
        n=int(n),
        method=method,
        alternative=alternative,
    )


def spearman_test(x: ArrayLike, y: ArrayLike, alternative: Alternative = "two-sided") -> CorrelationTest:
    """Spearman's rho with the t-approximation p (n-2 df) computed in log space.

    ``log10_pvalue`` is finite even for p far below 1e-308 (e.g. rho=0.1 at n=10^6). For ``|rho| == 1`` the
    t approximation gives p = 0 exactly, reported as ``log10_pvalue = -inf`` (like scipy's p = 0).
    """
    check_alternative(alternative)
    xa, ya = paired_1d(x, y, min_n=3, what="spearman_test")
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
    check_alternative(alternative)
    xa, ya = paired_1d(x, y, min_n=3, what="kendall_test")
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


def blocked_spearman_test(
    x: ArrayLike,
    y: ArrayLike,
    blocks: ArrayLike,
    alternative: Literal["greater", "less"] = "less",
) -> CorrelationTest:
    """Stage-wise Spearman test: one-sided within each block, combined by weighted Stouffer in log space.

    Each block with 3+ members and a non-constant ``y`` gives a one-sided Spearman p (t approximation,
    log space) turned into z with P(Z >= z) = p; the z's are combined with weights sqrt(n_b). The
    statistic is the sqrt(n_b)-weighted mean of the within-block rho; ``n`` counts all input pairs.
    Use it when the blocks (e.g. training stages) may differ in level: the pooled test is then confounded.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(
            f"blocked_spearman_test is one-sided: alternative must be 'greater' or 'less', got "
            f"{alternative!r}"
        )
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    blk = np.asarray(blocks)
    if xa.ndim != 1 or xa.shape != ya.shape or blk.shape != xa.shape:
        raise ValueError(
            f"x, y and blocks must be 1-D of one length, got shapes {xa.shape}, {ya.shape} and {blk.shape}"
        )
    _, inverse = np.unique(blk, return_inverse=True)
    zs, ws, rhos = [], [], []
    for b in range(inverse.max() + 1 if inverse.size else 0):
        g = np.flatnonzero(inverse == b)
        if g.size < 3 or np.all(ya[g] == ya[g][0]):
            continue
        res = spearman_test(xa[g], ya[g], alternative=alternative)
        log_p = res.log10_pvalue * LN10
        zs.append(-float(scipy.special.ndtri_exp(log_p)))  # z with P(Z >= z) = p
        ws.append(math.sqrt(g.size))
        rhos.append(res.statistic)
    if not zs:
        raise ValueError("no block has 3 or more examples; blocks must hold several examples each.")
    w = np.asarray(ws)
    z = float(np.dot(w, zs) / math.sqrt(float(np.dot(w, w))))
    statistic = float(np.dot(w, rhos) / w.sum())
    log_p = float(scipy.stats.norm.logsf(z))
    return _finish(statistic, log_p, xa.size, "spearman-blocked-stouffer", alternative)
