"""The item-level claims: premise checks and gamma robustness on hand-built item tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nudging.claims import _premise_checks, _robust_gamma_claim


def _knowledge(after: list[float], probe: list[float], aligned: list[float]) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for i, (a, p, al) in enumerate(zip(after, probe, aligned, strict=True)):
            rows += [
                (seed, "llama", "large base", "arithmetic", f"q{i}", p, True),
                (seed, "llama", "large base", "arithmetic_after_opening", f"q{i}", a, True),
                (seed, "llama", "large aligned", "arithmetic", f"q{i}", al, True),
                (seed, "llama", "large base", "fact", f"f{i}", 1.0, True),
                (seed, "llama", "large aligned", "fact", f"f{i}", 1.0, True),
            ]
    cols = ["seed", "family", "model", "probe", "item", "correct", "known_to_small"]
    return pd.DataFrame(rows, columns=cols)


def test_premise_checks_pair_the_same_problems() -> None:
    n = 20
    probe = [1.0] * n
    after = [1.0] * (n // 2) + [0.0] * (n // 2)  # half the problems lost after the opening
    checks = {c.id: c for c in _premise_checks(_knowledge(after, probe, probe), 200, 0)}
    opening = checks["premise_opening_llama"]
    assert opening.sanity and opening.measured == pytest.approx(-50.0)
    assert opening.holds is False and "paired bootstrap" in opening.method
    assert opening.per_seed == pytest.approx([-50.0, -50.0])
    style = checks["premise_alignment_is_style_llama"]
    assert style.measured == pytest.approx(0.0) and style.holds is True  # aligned = base on every probe


def test_robust_gamma_spread_pools_the_seeds_and_resamples_items() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for seed in (0, 1):
        for i in range(30):
            base = float(rng.random() < 0.5)
            for gamma in (0.1, 0.2, 0.5):
                ok = base if gamma != 0.5 or i % 3 else 1.0 - base  # gamma 0.5 flips every third item
                rows.append((seed, "llama", gamma, "arithmetic", f"a{i}", ok, 0.1))
    cols = ["seed", "family", "gamma", "task", "item", "correct", "nudged_token_share"]
    claim = _robust_gamma_claim(pd.DataFrame(rows, columns=cols), 300, 0)
    assert claim is not None
    frame = pd.DataFrame(rows, columns=cols)
    acc = frame[frame["gamma"] >= 0.2].groupby("gamma")["correct"].mean() * 100
    assert claim.measured == pytest.approx(acc.max() - acc.min())  # gamma 0.1 is outside [0.2, 0.5]
    low, high = claim.interval
    assert low <= claim.measured <= high and len(claim.per_seed) == 2
