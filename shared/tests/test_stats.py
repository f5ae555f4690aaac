"""Tests of reprokit.stats: log-space p-values, permutation tests, intervals, combination and correction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.multitest import multipletests

from reprokit import stats
from reprokit.stats import (
    ConfidenceInterval,
    CorrelationTest,
    PermutationResult,
    adjust_log10_pvalues,
    adjust_pvalues,
    binomial_ci,
    blocked_spearman_permutation_test,
    blocked_spearman_test,
    bootstrap_ci,
    combine_pvalues,
    correlation_test,
    kendall_test,
    ks_uniform_test,
    log10_p_to_str,
    paired_bootstrap_ci,
    permutation_pvalue,
    permutation_test,
    seed_interval,
    spearman_permutation_test,
    spearman_test,
    t_logsf,
    within_block_ranks,
)
from reprokit.stats.correlation import _t_log_pvalue

ALTERNATIVES = ("two-sided", "greater", "less")


def _mpmath_t_logsf(t: float, df: float) -> float:
    """log sf of Student t by high-precision quadrature (mpmath), independent of the library code."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(30):
        t_, nu = mpmath.mpf(t), mpmath.mpf(df)
        log_c = mpmath.loggamma((nu + 1) / 2) - mpmath.loggamma(nu / 2) - mpmath.log(nu * mpmath.pi) / 2
        g0 = -(nu + 1) / 2 * mpmath.log1p(t_ * t_ / nu)
        scale = (nu + t_ * t_) / ((nu + 1) * t_)  # 1/|g'(t)|: the width of the tail

        def f(s):
            return mpmath.exp(-(nu + 1) / 2 * mpmath.log1p(s * s / nu) - g0)

        pts = [t_ + k * scale for k in (0, 0.3, 1, 3, 10, 30, 100)] + [mpmath.inf]
        return float(log_c + g0 + mpmath.log(mpmath.quad(f, pts)))


def _correlated(n: int, rho: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal(n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    return x, y


# ----------------------------------------------------------------------------------------- spearman / t


def test_t_logsf_far_tail_matches_mpmath_where_scipy_underflows() -> None:
    # the acceptance case: rho = 0.1 at n = 10^6 -> t ≈ 100.5 with 999998 df, p ≈ 10^-2185
    n, rho = 10**6, 0.1
    t = rho * math.sqrt((n - 2) / (1 - rho**2))
    assert scipy.stats.t.sf(t, n - 2) == 0.0  # the reason this function exists
    ours = t_logsf(t, n - 2)
    assert math.isfinite(ours)
    assert ours == pytest.approx(_mpmath_t_logsf(t, n - 2), rel=1e-9)
    for t_, df in [(40.0, 3), (1e3, 50), (60.0, 200), (1e6, 10)]:
        assert t_logsf(t_, df) == pytest.approx(_mpmath_t_logsf(t_, df), rel=1e-8)


def test_t_logsf_matches_scipy_in_range() -> None:
    for t_, df in [(-3.0, 5), (0.0, 10), (2.5, 7), (30.0, 1000)]:
        assert t_logsf(t_, df) == pytest.approx(float(scipy.stats.t.logsf(t_, df)), rel=1e-12)


def test_spearman_underflow_acceptance_rho_01_n_1e6() -> None:
    rng = np.random.default_rng(1)
    x, y = _correlated(10**6, 0.1, rng)
    res = spearman_test(x, y, "greater")
    assert res.n == 10**6
    assert 0.08 < res.statistic < 0.12
    assert res.pvalue == 0.0  # underflows, but the log does not
    assert res.method == "spearman"
    df = res.n - 2
    t = res.statistic * math.sqrt(df / (1 - res.statistic**2))
    expected = _mpmath_t_logsf(t, df) / math.log(10)
    assert math.isfinite(res.log10_pvalue)
    assert res.log10_pvalue < -1000
    assert res.log10_pvalue == pytest.approx(expected, rel=1e-9)
    # two-sided doubles it, the other direction is ~1 (same rho: test the t -> p step directly)
    assert _t_log_pvalue(t, df, "two-sided") == pytest.approx(math.log(2) + _mpmath_t_logsf(t, df))
    assert _t_log_pvalue(t, df, "less") == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("rho", [-0.3, 0.05, 0.4])
def test_spearman_matches_scipy_where_representable(alternative: str, rho: float) -> None:
    rng = np.random.default_rng(7)
    x, y = _correlated(300, rho, rng)
    x = np.round(x, 1)  # ties too
    ours = spearman_test(x, y, alternative)
    ref = scipy.stats.spearmanr(x, y, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.log10_pvalue == pytest.approx(math.log10(ref.pvalue), rel=1e-9, abs=1e-12)
    assert (ours.method, ours.alternative) == ("spearman", alternative)


def test_spearman_direction() -> None:
    rng = np.random.default_rng(3)
    x, y = _correlated(200, 0.5, rng)
    assert spearman_test(x, y, "greater").pvalue < 1e-6
    assert spearman_test(x, y, "less").pvalue > 0.999
    assert spearman_test(x, -y, "less").pvalue < 1e-6
    assert spearman_test(x, -y, "greater").pvalue > 0.999


def test_spearman_perfect_correlation() -> None:
    x = np.arange(20.0)
    up = spearman_test(x, x**3, "greater")
    assert up.statistic == 1.0
    assert (up.pvalue, up.log10_pvalue) == (0.0, -math.inf)
    assert spearman_test(x, x**3, "less").pvalue == pytest.approx(1.0)
    down = spearman_test(x, -x, "two-sided")
    assert down.statistic == -1.0
    assert down.pvalue == 0.0


@pytest.mark.parametrize("test", [spearman_test, kendall_test])
def test_correlation_rejects_bad_input(test) -> None:
    with pytest.raises(ValueError, match="constant"):
        test([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="NaN"):
        test([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="at least 3"):
        test([1.0, 2.0], [2.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        test([1.0, 2.0, 3.0], [2.0, 1.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="alternative"):
        test([1.0, 2.0, 3.0], [2.0, 1.0, 3.0], "bigger")


# ----------------------------------------------------------------------------------------- kendall


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_kendall_matches_scipy(alternative: str) -> None:
    rng = np.random.default_rng(11)
    x, y = _correlated(25, 0.4, rng)  # small n, no ties: scipy's exact p
    for xs in (x, np.round(x * 2) / 2):  # and with ties: asymptotic
        ours = kendall_test(xs, y, alternative)
        ref = scipy.stats.kendalltau(xs, y, alternative=alternative)
        assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
        assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
        assert ours.log10_pvalue == pytest.approx(math.log10(ref.pvalue), rel=1e-9, abs=1e-12)


def test_kendall_log_p_when_scipy_underflows() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    x, y = _correlated(n, 0.7, rng)
    x = np.round(x, 1)  # ties: tie-corrected variance in play
    assert scipy.stats.kendalltau(x, y, alternative="greater").pvalue < 1e-290
    res = kendall_test(x, y, "greater")
    # independent z: concordant minus discordant pairs by brute force, variance from Kendall (1945)
    sx, sy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])
    s = np.triu(sx * sy, 1).sum()
    _, tx = np.unique(x, return_counts=True)
    v0 = n * (n - 1) * (2 * n + 5)
    vt = (tx * (tx - 1) * (2 * tx + 5)).sum()
    var = (v0 - vt) / 18  # y has no ties
    z = s / math.sqrt(var)
    assert math.isfinite(res.log10_pvalue)
    assert res.log10_pvalue == pytest.approx(scipy.stats.norm.logsf(z) / math.log(10), rel=1e-9)
    assert res.statistic == pytest.approx(scipy.stats.kendalltau(x, y).statistic)


def test_kendall_exact_perfect_order_large_n() -> None:
    n = 200  # scipy's exact p = 1/n! underflows to 0
    x = np.arange(n, dtype=float)
    res = kendall_test(x, x, "greater")
    assert res.log10_pvalue == pytest.approx(-math.lgamma(n + 1) / math.log(10), rel=1e-12)
    one_swap = x.copy()
    one_swap[[3, 4]] = one_swap[[4, 3]]  # one discordant pair: n/n!
    res1 = kendall_test(x, one_swap, "two-sided")
    assert res1.log10_pvalue == pytest.approx(
        (math.log(2 * n) - math.lgamma(n + 1)) / math.log(10), rel=1e-12
    )
    assert kendall_test(x, -x, "less").log10_pvalue == pytest.approx(res.log10_pvalue, rel=1e-12)


def test_correlation_test_dispatch() -> None:
    rng = np.random.default_rng(2)
    x, y = _correlated(50, 0.3, rng)
    assert correlation_test(x, y) == spearman_test(x, y)
    assert correlation_test(x, y, method="kendall", alternative="less") == kendall_test(x, y, "less")
    with pytest.raises(ValueError, match="method"):
        correlation_test(x, y, method="pearson")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- permutation


def test_permutation_pvalue_hand_example() -> None:
    null = [0.1, 0.5, 0.9, 1.2, -0.3]
    assert permutation_pvalue(0.9, null) == pytest.approx((2 + 1) / (5 + 1))  # 0.9, 1.2
    assert permutation_pvalue(0.9, null, "less") == pytest.approx((4 + 1) / 6)  # all but 1.2
    assert permutation_pvalue(-1.0, null, "two-sided") == pytest.approx((1 + 1) / 6)  # |1.2|
    assert permutation_pvalue(100.0, null) == pytest.approx(1 / 6)  # never 0
    assert permutation_pvalue(-100.0, null) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="empty"):
        permutation_pvalue(1.0, [])
    with pytest.raises(ValueError, match="NaN"):
        permutation_pvalue(1.0, [np.nan, 1.0])


def _mean_product(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x * y, axis=axis)


def test_permutation_test_vectorized_and_loop_agree() -> None:
    rng = np.random.default_rng(0)
    x, y = _correlated(60, 0.3, rng)
    vec = permutation_test(_mean_product, x, y, n_resamples=500, rng=42)

    def looped(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(a * b))

    loop = permutation_test(looped, x, y, n_resamples=500, rng=42)
    np.testing.assert_allclose(vec.null, loop.null, rtol=1e-12)
    assert vec.pvalue == loop.pvalue
    assert vec.statistic == pytest.approx(float(np.mean(x * y)))
    assert vec.null.shape == (500,)
    assert vec.pvalue == permutation_pvalue(vec.statistic, vec.null, "greater")
    # same seed, same draws
    again = permutation_test(_mean_product, x, y, n_resamples=500, rng=42)
    np.testing.assert_array_equal(again.null, vec.null)


def test_block_permutation_stays_within_blocks() -> None:
    rng = np.random.default_rng(4)
    n = 90
    blocks = np.repeat([0, 1, 2], n // 3)
    x = rng.standard_normal(n) + 3 * blocks  # block means differ
    y = blocks.astype(float)

    def block_sums(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        # sum of x in block 1 minus block 2: invariant under within-block shuffles only
        return np.sum(a * (b == 1), axis=axis) - np.sum(a * (b == 2), axis=axis)

    within = permutation_test(block_sums, x, y, n_resamples=300, blocks=blocks, rng=1)
    np.testing.assert_allclose(within.null, within.statistic, rtol=1e-10)
    assert within.pvalue == 1.0
    free = permutation_test(block_sums, x, y, n_resamples=300, rng=1)
    assert np.std(free.null) > 1.0
    # and a within-block statistic that does change: order within block 0
    order_in_block = permutation_test(
        lambda a, b: float(np.dot(a[:30], np.arange(30))), x, y, n_resamples=50, blocks=blocks, rng=1
    )
    assert np.std(order_in_block.null) > 0


def test_spearman_permutation_matches_analytic_p() -> None:
    rng = np.random.default_rng(2)
    x, y = _correlated(200, 0.2, rng)
    analytic = spearman_test(x, y, "greater")
    assert 0.001 < analytic.pvalue < 0.1
    perm = spearman_permutation_test(x, y, n_resamples=9999, alternative="greater", rng=0)
    assert perm.statistic == pytest.approx(analytic.statistic, abs=1e-12)
    assert perm.pvalue == pytest.approx(analytic.pvalue, rel=0.3, abs=0.002)
    # the generic path agrees with the fast path on the same permutations
    generic = permutation_test(
        lambda a, b: float(scipy.stats.spearmanr(a, b).statistic), x, y, n_resamples=200, rng=3
    )
    fast = spearman_permutation_test(x, y, n_resamples=200, alternative="greater", rng=3)
    np.testing.assert_allclose(generic.null, fast.null, atol=1e-12)


def test_spearman_permutation_blocks_and_direction() -> None:
    rng = np.random.default_rng(9)
    x, y = _correlated(120, -0.5, rng)
    blocks = np.repeat(np.arange(4), 30)
    res = spearman_permutation_test(x, y, n_resamples=999, alternative="less", blocks=blocks, rng=2)
    assert res.pvalue == pytest.approx(1 / 1000)
    assert spearman_permutation_test(x, y, n_resamples=999, alternative="greater", rng=2).pvalue > 0.99


def test_permutation_null_calibration() -> None:
    rng = np.random.default_rng(12345)
    pvals = [
        spearman_permutation_test(
            rng.standard_normal(30), rng.standard_normal(30), n_resamples=199, alternative="greater", rng=rng
        ).pvalue
        for _ in range(200)
    ]
    _, p_ks = ks_uniform_test(pvals)
    assert p_ks > 0.001
    assert min(pvals) >= 1 / 200


# ----------------------------------------------------------------------------------------- intervals


def test_bootstrap_ci_covers_mean() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(5.0, 1.0, size=200)
    for method in ("percentile", "BCa", "basic"):
        ci = bootstrap_ci(data, confidence=0.95, n_resamples=1000, method=method, rng=1)
        assert ci.low < 5.0 < ci.high
        assert ci.low < ci.estimate < ci.high
        assert ci.estimate == pytest.approx(np.mean(data))
        assert 0.15 < ci.high - ci.low < 0.4  # ≈ 2 * 1.96 / sqrt(200) = 0.28
        assert (ci.confidence, ci.method) == (0.95, method)


def test_bootstrap_ci_degenerate_and_empty() -> None:
    ci = bootstrap_ci([2.0] * 10, method="BCa", rng=0)
    assert (ci.estimate, ci.low, ci.high) == (2.0, 2.0, 2.0)
    assert bootstrap_ci([3.0]).low == 3.0
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci([1.0, np.nan])


def test_binomial_ci_clopper_pearson() -> None:
    ci = binomial_ci(7, 20, confidence=0.9)
    # Clopper-Pearson from beta quantiles, computed independently
    assert ci.low == pytest.approx(scipy.stats.beta.ppf(0.05, 7, 14))
    assert ci.high == pytest.approx(scipy.stats.beta.ppf(0.95, 8, 13))
    assert ci.estimate == pytest.approx(0.35)
    assert binomial_ci(0, 10).low == 0.0
    assert binomial_ci(10, 10).high == 1.0
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial_ci(11, 10)


# ----------------------------------------------------------------------------------------- combine / adjust


@pytest.mark.parametrize("method", ["fisher", "stouffer", "pearson", "tippett"])
def test_combine_pvalues_matches_scipy(method: str) -> None:
    p = [0.01, 0.2, 0.5, 0.03]
    assert combine_pvalues(p, method) == pytest.approx(scipy.stats.combine_pvalues(p, method=method).pvalue)


def test_combine_pvalues_weights_and_validation() -> None:
    p, w = [0.01, 0.2, 0.5], [3.0, 1.0, 1.0]
    ref = scipy.stats.combine_pvalues(p, method="stouffer", weights=w).pvalue
    assert combine_pvalues(p, "stouffer", weights=w) == pytest.approx(ref)
    # Fisher by hand: chi2 with 2k df
    assert combine_pvalues(p) == pytest.approx(scipy.stats.chi2.sf(-2 * np.log(p).sum(), 2 * len(p)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        combine_pvalues([0.5, 1.2])
    with pytest.raises(ValueError, match="stouffer"):
        combine_pvalues(p, "fisher", weights=w)


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "bonferroni"])
def test_adjust_pvalues_matches_statsmodels(method: str) -> None:
    p = np.array([0.001, 0.01, 0.02, 0.04, 0.3])
    np.testing.assert_allclose(adjust_pvalues(p, method), multipletests(p, method=method)[1])
    assert np.all(adjust_pvalues(p, method) >= p)


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "bonferroni"])
def test_log_space_adjustment_matches_statsmodels(method: str) -> None:
    rng = np.random.default_rng(8)
    p = rng.uniform(0, 0.2, 30) ** 2
    ours = 10 ** adjust_log10_pvalues(np.log10(p), method)
    theirs = multipletests(p, method=method)[1]
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_log_space_adjustment_keeps_tiny_pvalues() -> None:
    adj = adjust_log10_pvalues([-400.0, -2.0, -0.1], "holm")
    assert adj[0] == pytest.approx(-400.0 + math.log10(3))
    assert adj[2] == pytest.approx(-0.1)
    with pytest.raises(ValueError, match="<= 0"):
        adjust_log10_pvalues([0.5])


def test_ks_uniform_test() -> None:
    rng = np.random.default_rng(0)
    stat, p = ks_uniform_test(rng.uniform(size=500))
    assert p > 0.001 and 0 < stat < 0.1
    ref = scipy.stats.kstest(np.linspace(0.01, 0.2, 50), "uniform")
    assert ks_uniform_test(np.linspace(0.01, 0.2, 50)) == pytest.approx((ref.statistic, ref.pvalue))
    assert ks_uniform_test(np.linspace(0.01, 0.2, 50))[1] < 1e-10


def test_log10_p_to_str() -> None:
    assert log10_p_to_str(math.log10(3.2e-134)) == "3.2e-134"
    assert log10_p_to_str(-2184.7966) == "1.6e-2185"
    assert log10_p_to_str(math.log10(9.96e-5)) == "1.0e-04"  # mantissa rounding carries
    assert log10_p_to_str(math.log10(0.0123)) == "0.012"
    assert log10_p_to_str(-math.inf) == "0"
    assert log10_p_to_str(0.0) == "1"
    with pytest.raises(ValueError, match="<= 0"):
        log10_p_to_str(0.5)


def test_public_names() -> None:
    for name in stats.__all__:
        assert hasattr(stats, name)


# ----------------------------------------------------------------------------------------- blocked tests


def _blocked_data(rng: np.random.Generator, sizes: tuple[int, ...], slope: float):
    """Positions grow across blocks; y has a block level plus ``slope`` times the within-block order."""
    blocks = np.repeat(np.arange(len(sizes)), sizes)
    x = np.concatenate([100 * b + rng.permutation(n) for b, n in enumerate(sizes)]).astype(float)
    y = 2.0 * blocks + slope * (x % 100) / 50 + rng.normal(0, 1, x.size)
    return x, y, blocks


def test_blocked_spearman_test_is_weighted_stouffer() -> None:
    rng = np.random.default_rng(11)
    x, y, blocks = _blocked_data(rng, (30, 50, 2, 40), slope=-2.0)  # the 2-member block is skipped
    res = blocked_spearman_test(x, y, blocks, alternative="less")
    zs, ws, rhos = [], [], []
    for b in (0, 1, 3):
        g = blocks == b
        ref = scipy.stats.spearmanr(x[g], y[g], alternative="less")
        zs.append(scipy.stats.norm.isf(ref.pvalue))
        ws.append(math.sqrt(g.sum()))
        rhos.append(ref.statistic)
    z = np.dot(ws, zs) / math.sqrt(np.dot(ws, ws))
    assert res.pvalue == pytest.approx(scipy.stats.norm.sf(z), rel=1e-6)
    assert res.statistic == pytest.approx(np.dot(ws, rhos) / np.sum(ws))
    assert (res.n, res.method, res.alternative) == (x.size, "spearman-blocked-stouffer", "less")
    other = blocked_spearman_test(x, y, blocks, alternative="greater")
    assert res.pvalue < 1e-3
    assert other.pvalue == pytest.approx(1 - res.pvalue, rel=1e-9)  # z flips sign in every block


def test_blocked_spearman_test_far_tail_and_bad_input() -> None:
    n = 20_000
    blocks = np.repeat([0, 1], n // 2)
    x = np.arange(n, dtype=float)
    y = -x + np.random.default_rng(0).normal(0, n / 4, n)
    res = blocked_spearman_test(x, y, blocks)
    assert res.pvalue == 0.0 and math.isfinite(res.log10_pvalue) and res.log10_pvalue < -308
    with pytest.raises(ValueError, match="one-sided"):
        blocked_spearman_test(x, y, blocks, alternative="two-sided")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="3 or more"):
        blocked_spearman_test([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="one length"):
        blocked_spearman_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0, 0])


def test_within_block_ranks() -> None:
    values = np.array([3.0, 1.0, 2.0, 9.0, 5.0, 7.0])
    ranks, groups = within_block_ranks(values, ["a", "a", "a", "b", "c", "c"])
    assert [g.tolist() for g in groups] == [[0, 1, 2], [3], [4, 5]]
    np.testing.assert_allclose(ranks[:3], np.array([1.0, -1.0, 0.0]) / math.sqrt(2))
    assert ranks[3] == 0.0  # a block of one carries no order
    np.testing.assert_allclose(ranks[4:], [-1 / math.sqrt(2), 1 / math.sqrt(2)])


def test_blocked_permutation_statistic_and_blocks() -> None:
    rng = np.random.default_rng(12)
    x, y, blocks = _blocked_data(rng, (40, 40, 40), slope=-1.5)
    res = blocked_spearman_permutation_test(x, y, blocks, n_resamples=999, rng=3)
    rhos = [scipy.stats.spearmanr(x[blocks == b], y[blocks == b]).statistic for b in range(3)]
    assert res.statistic == pytest.approx(math.sqrt(40) * sum(rhos))
    assert res.pvalue == pytest.approx(1 / 1000)  # strong within-block order: no permutation as extreme
    # a level shift between blocks and no order within them: permuting within blocks finds nothing
    x0, y0, b0 = _blocked_data(rng, (40, 40, 40), slope=0.0)
    assert blocked_spearman_permutation_test(x0, -y0, b0, n_resamples=999, rng=4).pvalue > 0.01


# ----------------------------------------------------------------------------------------- paired / seeds


def test_paired_bootstrap_ci_uses_the_pairing() -> None:
    rng = np.random.default_rng(13)
    difficulty = rng.normal(0, 3, 300)  # shared by both systems: cancels out only when pairs are kept
    a = difficulty + 0.5 + rng.normal(0, 0.5, 300)
    b = difficulty + rng.normal(0, 0.5, 300)
    ci = paired_bootstrap_ci(a, b, n_resamples=2000, rng=1)
    assert ci.estimate == pytest.approx(a.mean() - b.mean())
    assert ci.low < 0.5 < ci.high and ci.low > 0.3
    assert ci.high - ci.low < 0.25  # ≈ 2 * 1.96 * 0.71 / sqrt(300) = 0.16
    unpaired = bootstrap_ci(a, rng=1).high - bootstrap_ci(a, rng=1).low
    assert ci.high - ci.low < unpaired / 3
    assert (ci.confidence, ci.method) == (0.95, "paired bootstrap")
    assert paired_bootstrap_ci(a, b, rng=1) == ci  # seeded: the same interval


def test_paired_bootstrap_ci_custom_statistic_degenerate_and_errors() -> None:
    a = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    b = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0])

    def wins(x: np.ndarray, y: np.ndarray) -> float:  # no axis: called once per resample
        return float(np.mean(x > y))

    ci = paired_bootstrap_ci(a, b, statistic=wins, n_resamples=300, rng=0)
    assert ci.estimate == pytest.approx(2 / 6) and 0.0 <= ci.low <= ci.estimate <= ci.high <= 1.0
    same = paired_bootstrap_ci(a, a - 1.0, method="BCa")  # constant difference: no NaN, no warning
    assert (same.estimate, same.low, same.high, same.method) == (1.0, 1.0, 1.0, "paired bootstrap, BCa")
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap_ci(a, b[:-1])
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap_ci([1.0, np.nan], [1.0, 2.0])


def test_seed_interval() -> None:
    values = [38.0, 36.0, 41.0]
    ci = seed_interval(values)
    low, high = scipy.stats.t.interval(0.95, 2, loc=np.mean(values), scale=scipy.stats.sem(values))
    assert (ci.low, ci.high) == (pytest.approx(low), pytest.approx(high))
    assert ci.estimate == pytest.approx(np.mean(values)) and ci.method == "t over seeds"
    one = seed_interval([0.4])
    assert one.estimate == 0.4 and math.isnan(one.low) and math.isnan(one.high)
    flat = seed_interval([2.0, 2.0])
    assert (flat.low, flat.high) == (2.0, 2.0)
    with pytest.raises(ValueError, match="finite"):
        seed_interval([1.0, np.nan])
    with pytest.raises(ValueError, match="one value per seed"):
        seed_interval([])


# ----------------------------------------------------------------------------------------- result family


def test_results_serialize_the_same_way() -> None:
    import json

    corr = spearman_test([1, 2, 3, 4], [1, 3, 2, 4])
    perm = spearman_permutation_test([1, 2, 3, 4], [1, 3, 2, 4], n_resamples=9, rng=0)
    ci = binomial_ci(3, 10)
    for res in (corr, perm, ci):
        d = res.to_dict()
        assert json.loads(json.dumps(d)) == d  # plain Python types only
    assert isinstance(corr, CorrelationTest) and set(corr.to_dict()) == {
        "statistic",
        "pvalue",
        "log10_pvalue",
        "n",
        "method",
        "alternative",
    }
    assert isinstance(perm, PermutationResult) and "null" not in perm.to_dict()
    assert perm.to_dict()["n_resamples"] == 9 and perm.null.shape == (9,)
    assert isinstance(ci, ConfidenceInterval) and ci.to_dict()["method"] == "exact binomial"
    assert ci.bounds == (ci.low, ci.high)
