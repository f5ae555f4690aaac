"""Exactness and calibration of the query, reshuffle and multiple-suspect statistics (numpy only)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from palimpsest import (
    adjust_suspects,
    query_test_from_losses,
    reshuffle_pvalues,
)
from palimpsest.reshuffle import ReshuffleScores


def _null_pvalues(n_reps: int, n: int, rng: np.random.Generator, **kwargs) -> np.ndarray:
    losses = rng.gamma(2.0, 1.0, size=n)  # a fixed "real model": skewed, tied-free losses
    ref = losses + rng.normal(0, 0.5, size=n)
    return np.array(
        [query_test_from_losses(rng.permutation(n), losses, ref, **kwargs).pvalue for _ in range(n_reps)]
    )


def test_query_null_is_calibrated():
    """Random positions against fixed losses: p-values ~ U(0, 1), false-positive rate at most alpha."""
    rng = np.random.default_rng(0)
    p = _null_pvalues(600, 200, rng)
    assert scipy.stats.kstest(p, "uniform").pvalue > 0.001
    fpr = np.mean(p <= 0.05)
    assert fpr <= scipy.stats.binom.ppf(0.999, 600, 0.05) / 600


def test_query_power_and_direction():
    rng = np.random.default_rng(1)
    n = 2000
    pos = rng.permutation(n)
    difficulty = rng.normal(0, 1, n)
    suspect = difficulty - 0.002 * pos / n * 100 + rng.normal(0, 0.3, n)  # later -> lower loss
    with_ref = query_test_from_losses(pos, suspect, difficulty)
    without = query_test_from_losses(pos, suspect)
    assert with_ref.statistic < 0
    assert with_ref.log10_pvalue < -10
    assert with_ref.log10_pvalue < without.log10_pvalue - 5  # the reference removes per-example difficulty
    flipped = query_test_from_losses(pos, -suspect, -difficulty)  # wrong direction: one-sided p near 1
    assert flipped.pvalue > 0.99


def test_query_log10_p_does_not_underflow():
    n = 100_000
    pos = np.arange(n)
    rng = np.random.default_rng(2)
    losses = -pos / n + rng.normal(0, 0.5, n)
    res = query_test_from_losses(pos, losses)
    assert res.pvalue == 0.0
    assert math.isfinite(res.log10_pvalue) and res.log10_pvalue < -308


def test_permutation_pvalue_matches_analytic():
    rng = np.random.default_rng(3)
    n = 150
    pos = rng.permutation(n)
    losses = -0.15 * pos / n + rng.normal(0, 0.15, n)
    res = query_test_from_losses(pos, losses, n_permutations=4999, seed=1)
    assert res.permutation_pvalue is not None
    assert res.permutation_pvalue >= 1 / 5000
    assert abs(res.permutation_pvalue - res.pvalue) < 0.02 + 0.3 * res.pvalue


def test_block_permutation_is_valid_when_blocks_differ():
    """Two stages with different loss levels: the pooled test is confounded, the stage-wise one is not."""
    rng = np.random.default_rng(4)
    pooled, blocked, perm = [], [], []
    n_block = 40
    blocks = np.repeat([0, 1], n_block)
    for _ in range(200):
        # stage 2 comes later and holds easier data; within each stage the order is a fresh permutation
        losses = np.concatenate([rng.normal(3.0, 1, n_block), rng.normal(2.0, 1, n_block)])
        pos = np.concatenate([rng.permutation(n_block), n_block + rng.permutation(n_block)])
        pooled.append(query_test_from_losses(pos, losses).pvalue)
        res = query_test_from_losses(
            pos, losses, blocks=blocks, n_permutations=199, seed=int(rng.integers(1e9))
        )
        blocked.append(res.pvalue)
        perm.append(res.permutation_pvalue)
    assert np.mean(np.array(pooled) <= 0.05) > 0.5  # confounded: almost always "significant"
    assert scipy.stats.kstest(blocked, "uniform").pvalue > 0.001
    assert np.mean(np.array(perm) <= 0.05) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 200)
    assert np.mean(np.array(perm) <= 0.5) == pytest.approx(0.5, abs=0.12)


def test_block_test_has_power():
    rng = np.random.default_rng(5)
    blocks = np.repeat([0, 1, 2], 300)
    pos = np.concatenate([b * 300 + rng.permutation(300) for b in range(3)])
    losses = blocks * 0.5 - 0.3 * (pos % 300) / 300 + rng.normal(0, 0.3, 900)
    res = query_test_from_losses(pos, losses, blocks=blocks, n_permutations=999)
    assert res.log10_pvalue < -10
    assert res.permutation_pvalue == pytest.approx(1 / 1000)


def test_query_bad_inputs():
    with pytest.raises(ValueError, match="one value per example"):
        query_test_from_losses([1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        query_test_from_losses([1, 2, 3], [1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="identical"):
        query_test_from_losses([1, 2, 3], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 3"):
        query_test_from_losses([1, 2], [1.0, 2.0])


# ---------------------------------------------------------------------------------------------- reshuffle
def test_reshuffle_exact_rank_and_t_formulas():
    s0, s = 5.0, np.array([1.0, 2.0, 3.0, 6.0, 4.0])
    res = reshuffle_pvalues(s0, s)
    assert res.rank_pvalue == pytest.approx((1 + 1) / 6)
    k = s.size
    t = (s0 - s.mean()) / (s.std(ddof=1) * math.sqrt(1 + 1 / k))
    assert res.t_pvalue == pytest.approx(scipy.stats.t.sf(t, k - 1))
    assert res.normal_pvalue == pytest.approx(scipy.stats.norm.sf((s0 - s.mean()) / s.std(ddof=0)))
    assert reshuffle_pvalues(100.0, s).rank_pvalue == pytest.approx(1 / 6)  # the floor 1/(K+1)
    assert reshuffle_pvalues(0.0, s).rank_pvalue == 1.0


def test_reshuffle_log_p_far_tail():
    res = reshuffle_pvalues(1e6, np.linspace(0, 1, 50))
    assert math.isfinite(res.log10_t_pvalue) and res.log10_t_pvalue < -30


def test_reshuffle_calibration_gaussian_scores():
    """K = 9 Gaussian copies: rank and t p-values are calibrated, the paper's normal p is not."""
    rng = np.random.default_rng(6)
    reps, k = 4000, 9
    scores = rng.normal(size=(reps, k + 1))
    res = [reshuffle_pvalues(row[0], row[1:]) for row in scores]
    rank = np.array([r.rank_pvalue for r in res])
    tp = np.array([r.t_pvalue for r in res])
    normal = np.array([r.normal_pvalue for r in res])
    se = math.sqrt(0.05 * 0.95 / reps)
    assert np.mean(rank <= 0.1) == pytest.approx(0.1, abs=4 * math.sqrt(0.09 / reps))
    assert np.mean(tp <= 0.05) == pytest.approx(0.05, abs=4 * se)
    assert np.mean(normal <= 0.05) > 0.05 + 4 * se  # anti-conservative, as the brief's simulation shows


def test_reshuffle_bad_inputs():
    with pytest.raises(ValueError, match="K >= 1"):
        reshuffle_pvalues(1.0, [])
    one = reshuffle_pvalues(1.0, [0.0])
    assert one.rank_pvalue == 0.5 and math.isnan(one.t_pvalue)
    with pytest.raises(ValueError, match="finite"):
        reshuffle_pvalues(float("nan"), [1.0, 2.0])


def test_reshuffle_scores_subsample():
    rng = np.random.default_rng(7)
    scores = ReshuffleScores(rng.normal(size=(5, 40)), np.full(40, 10))
    idx = scores.subsample(95, seed=1)
    assert idx.size == 10 and len(set(idx.tolist())) == 10
    res = scores.test(idx)
    assert res.n_tokens == 100 and res.k == 4
    with pytest.raises(ValueError, match="no texts"):
        scores.test([])


# ---------------------------------------------------------------------------------------------- suspects
def test_adjust_suspects_table():
    import pandas as pd

    table = pd.DataFrame({"suspect": ["a", "b", "null"], "log10_p": [-10.0, -1.5, -0.2]})
    out = adjust_suspects(table, mask=[True, True, False])
    assert np.isnan(out["log10_p_holm"].iloc[2])
    assert out["log10_p_holm"].iloc[1] == pytest.approx(-1.5)
    with pytest.raises(ValueError, match="not in the table"):
        adjust_suspects(table, column="p")
    with pytest.raises(ValueError, match="<= 0"):
        adjust_suspects(pd.DataFrame({"log10_p": [0.5]}))
