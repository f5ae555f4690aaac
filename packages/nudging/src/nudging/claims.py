"""The paper's claims, checked on the tables of a run: ``claims(results, section) -> [Claim]``.

Each claim cites where the paper (arXiv 2410.09300) states it and its number, and carries a 95%
interval from the items of every seed stacked: a paired bootstrap over items when two systems (or one
model in two conditions, or one system at several gammas) are compared on the same items, a bootstrap
over items for the nudged-token share, and an exact binomial interval for the uncertainty rates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reprokit.results import Claim
from reprokit.stats import binomial_ci, bootstrap_ci, paired_bootstrap_ci

if TYPE_CHECKING:
    from nudging.reproduce import Evaluation
    from reprokit.reproduce import SeedResults
    from reprokit.stats import ConfidenceInterval

__all__ = ["PAPER", "SOURCES", "claims"]

#: The paper's numbers each claim is compared with.
PAPER = {
    "beats_small": "+15.4 / +14.6 / +9.5 (Llama-2 / Gemma-2 / OLMo)",
    "close_to_large": "+1.2 / -4.1 / +1.6",
    "beats_base": "+24.1 / +57.9 / +11.9",
    "nudged_share": "about 10% (<9% OLMo on GSM8K)",
    "uncertain_where_alignment_changes": "> 80%",
    "uncertain_positions_are_few": "about 11%",
    "cross": "Gemma-2-27b + Llama-2-7b-chat: 65.0 vs 22.0 / 7.0 on GSM8K",
    "robust_gamma": "robust for gamma in 0.2-0.5",
}
#: Where the paper states each claim.
SOURCES = {
    "table1": "Table 1 (zero-shot accuracy, average over 11 tasks)",
    "nudged_share": "Abstract; Fig. 6 (share of nudged tokens)",
    "uncertainty": "Analysis 'where to nudge': token-level agreement of base and aligned models",
    "cross": "Cross-family nudging table (GSM8K / MMLU)",
    "robust_gamma": "Fig. 7 (gamma sweep)",
}


def claims(results: SeedResults, section: Evaluation) -> list[Claim]:
    """The paper's 15 claims (with two families) on every seed's tables, after the premise checks
    (sanity checks: shown apart, outside the claim count)."""
    rng = results.seeds[0]
    items = results.stacked("table1_items")
    families = list(dict.fromkeys(items["family"]))
    out: list[Claim] = []
    if "table_knowledge_items" in results.frames:
        out += _premise_checks(results.stacked("table_knowledge_items"), section.n_bootstrap, rng)
    for family in families:
        out += _table1_claims(items, family, section.n_bootstrap, rng)
    for family in families:
        out += _uncertainty_claims(results.stacked("table_uncertainty"), family)
    cross = results.stacked("table_cross_family_items")
    for (base, nudger), pair in cross.groupby(["base", "nudger"], sort=False):
        out.append(_cross_claim(pair, base, nudger, section.n_bootstrap, rng))
    robust = (
        _robust_gamma_claim(results.stacked("table_gamma_sweep_items"), section.n_bootstrap, rng)
        if "table_gamma_sweep_items" in results.frames
        else None
    )
    if robust is not None:
        out.append(robust)
    return out


# ------------------------------------------------------------------------------------------- Table 1
def _paired_claim(
    id: str,
    statement: str,
    a: pd.Series,
    b: pd.Series,
    op: str,
    bound: float,
    *,
    n_resamples: int,
    rng: int,
    source: str,
    paper_value: str | None,
    details: str = "",
    sanity: bool = False,
) -> Claim:
    """``mean(a - b)`` in points, with a paired bootstrap interval over the items (`a`, `b` share an
    index whose first level is the seed)."""
    ci = paired_bootstrap_ci(a.to_numpy(float), b.to_numpy(float), n_resamples=n_resamples, rng=rng)
    per_seed = (100 * (a - b)).groupby(level="seed").mean()
    return Claim.check(
        id,
        statement,
        100 * ci.estimate,
        op,  # type: ignore[arg-type]
        bound,
        interval=(100 * ci.low, 100 * ci.high),
        method=ci.method + " over items, seeds stacked",
        per_seed=per_seed.tolist(),
        source=source,
        paper_value=paper_value,
        details=details,
        sanity=sanity,
    )


def _table1_claims(items: pd.DataFrame, family: str, n_resamples: int, rng: int) -> list[Claim]:
    """Nudging against the small aligned, large aligned and base model (points of average accuracy),
    and the share of answer words the small model writes."""
    wide = items[items["family"] == family].pivot(
        index=["seed", "task", "item"], columns="model", values="correct"
    )
    nud = wide["nudging"]
    common = {"n_resamples": n_resamples, "rng": rng, "source": SOURCES["table1"]}
    out = [
        _paired_claim(
            f"{family}_nudging_beats_small",
            f"{family}: nudging average accuracy minus the small aligned model's (points)",
            nud,
            wide["small_aligned"],
            ">",
            0.0,
            paper_value=PAPER["beats_small"],
            **common,
        ),
        _paired_claim(
            f"{family}_nudging_close_to_large",
            f"{family}: nudging average minus the large aligned model's (points; close = within 5)",
            nud,
            wide["large_aligned"],
            ">=",
            -5.0,
            paper_value=PAPER["close_to_large"],
            **common,
        ),
        _paired_claim(
            f"{family}_nudging_beats_base",
            f"{family}: nudging average minus the base model's (points)",
            nud,
            wide["base"],
            ">",
            0.0,
            paper_value=PAPER["beats_base"],
            **common,
        ),
    ]
    shares = items[(items["family"] == family) & (items["model"] == "nudging")]
    shares = shares.set_index(["seed", "task", "item"])["nudged_token_share"]
    out.append(
        _mean_claim(
            f"{family}_small_nudged_share",
            f"{family}: share of answer tokens written by the nudging model (%, every nudging segment "
            "counted, the final EOS-ending one included, as the paper's Fig. 6 counts tokens; mean over "
            "answers)",
            100 * shares,
            "<",
            15.0,
            n_resamples=n_resamples,
            rng=rng,
            paper_value=PAPER["nudged_share"],
            source=SOURCES["nudged_share"],
        )
    )
    return out


def _mean_claim(
    id: str,
    statement: str,
    values: pd.Series,
    op: str,
    bound: float,
    *,
    n_resamples: int,
    rng: int,
    **kwargs: Any,
) -> Claim:
    """The mean of per-item `values` (index: seed first) with a bootstrap interval over the items of
    every seed; a missing value (NaN: no run) makes the claim fail rather than being dropped."""
    missing = values.empty or values.isna().any()
    ci = None if missing else bootstrap_ci(values.to_numpy(float), n_resamples=n_resamples, rng=rng)
    per_seed = values.groupby(level="seed").mean().tolist()
    method = "bootstrap over items, seeds stacked"
    return _interval_claim(id, statement, ci, op, bound, method=method, per_seed=per_seed, **kwargs)


def _interval_claim(
    id: str,
    statement: str,
    ci: ConfidenceInterval | None,
    op: str,
    bound: float,
    *,
    method: str,
    per_seed: Sequence[float],
    **kwargs: Any,
) -> Claim:
    """`Claim.check` of an interval's estimate; None (no data) is a claim that does not hold."""
    if ci is None:
        return Claim.check(id, statement, math.nan, op, bound, per_seed=per_seed, **kwargs)  # type: ignore[arg-type]
    return Claim.check(
        id,
        statement,
        ci.estimate,
        op,  # type: ignore[arg-type]
        bound,
        interval=ci,
        method=method,
        per_seed=per_seed,
        **kwargs,
    )


# ------------------------------------------------------------------------------------------- premise
#: How far (accuracy points) the premise checks let a model fall below the large base's probe accuracy.
PREMISE_TOLERANCE = 10.0


def _premise_checks(items: pd.DataFrame, n_resamples: int, rng: int) -> list[Claim]:
    """The paper's premise, checked before its claims (sanity checks, outside the claim counts): the base
    already knows the content, so (a) it keeps its arithmetic after an aligned opening, and (b) the
    large aligned model knows what its base knows on the plain-text probes (alignment changed style).
    Both with paired bootstrap intervals over the probes of every seed."""
    out = []
    common: dict[str, Any] = {"n_resamples": n_resamples, "rng": rng, "paper_value": None, "sanity": True}
    for family in dict.fromkeys(items["family"]):
        rows = items[items["family"] == family]
        base = rows[rows["model"] == "large base"].pivot(
            index=["seed", "item"], columns="probe", values="correct"
        )
        if {"arithmetic", "arithmetic_after_opening"} <= set(base.columns):
            arith = base[["arithmetic", "arithmetic_after_opening"]].dropna()
            out.append(
                _paired_claim(
                    f"premise_opening_{family}",
                    f"premise ({family}): the large base keeps its arithmetic after an aligned opening "
                    "(accuracy after the opening - on the plain probe, same problems, points; within "
                    f"{PREMISE_TOLERANCE:g})",
                    arith["arithmetic_after_opening"],
                    arith["arithmetic"],
                    ">=",
                    -PREMISE_TOLERANCE,
                    source="Premise of the method: the base model already has the knowledge",
                    **common,
                )
            )
        probes = rows[rows["probe"].isin(["fact", "arithmetic"])]
        models = probes.pivot(index=["seed", "probe", "item"], columns="model", values="correct")
        if {"large base", "large aligned"} <= set(models.columns):
            out.append(
                _paired_claim(
                    f"premise_alignment_is_style_{family}",
                    f"premise ({family}): the large aligned model knows what its base knows on the "
                    "plain-text probes (accuracy over the fact and arithmetic probes, aligned - base, "
                    f"points; within {PREMISE_TOLERANCE:g})",
                    models["large aligned"],
                    models["large base"],
                    ">=",
                    -PREMISE_TOLERANCE,
                    source="Premise of the method: alignment mostly changes style",
                    **common,
                )
            )
    return out


# ---------------------------------------------------------------------------------------- uncertainty
def _count(share: float, n: float) -> int:
    """The count behind a share of `n` positions (the table stores shares; n * share is an integer)."""
    return round(share * n) if math.isfinite(share) and math.isfinite(n) else 0


def _rate_claim(
    id: str, statement: str, hits: Sequence[int], totals: Sequence[int], op: str, bound: float, **kwargs: str
) -> Claim:
    """A rate pooled over seeds with its exact binomial interval; per-seed rates in `per_seed`."""
    k, n = int(sum(hits)), int(sum(totals))
    per_seed = [h / t if t else math.nan for h, t in zip(hits, totals, strict=True)]
    ci = binomial_ci(k, n) if n else None
    method = f"exact binomial, pooled over seeds ({k} of {n})"
    return _interval_claim(id, statement, ci, op, bound, method=method, per_seed=per_seed, **kwargs)


def _uncertainty_claims(table: pd.DataFrame, family: str) -> list[Claim]:
    """Where the base model is uncertain (p1 < 0.5): most disagreement positions, few positions overall."""
    rows = table[table["family"] == family]
    n = rows["n"].to_numpy(float)
    disagree = [_count(s, m) for s, m in zip(rows["disagree_share"], n, strict=True)]
    captured = [_count(s, d) for s, d in zip(rows["captured_at_0.5"], disagree, strict=True)]
    below = [_count(s, m) for s, m in zip(rows["below_0.5_share"], n, strict=True)]
    totals = [int(m) if math.isfinite(m) else 0 for m in n]
    low_share = 100 * sum(below) / max(1, sum(totals))
    return [
        _rate_claim(
            f"{family}_uncertain_where_alignment_changes",
            f"{family}: share of base/aligned disagreement positions with base p1 < 0.5",
            captured,
            disagree,
            ">=",
            0.8,
            paper_value=PAPER["uncertain_where_alignment_changes"],
            details=f"positions with p1 < 0.5: {low_share:.1f}% of all (paper ~11%)",
            source=SOURCES["uncertainty"],
        ),
        _rate_claim(
            f"{family}_uncertain_positions_are_few",
            f"{family}: share of all positions with base p1 < 0.5",
            below,
            totals,
            "<=",
            0.25,
            paper_value=PAPER["uncertain_positions_are_few"],
            source=SOURCES["uncertainty"],
        ),
    ]


# --------------------------------------------------------------------------------------- cross-family
def _cross_claim(pair: pd.DataFrame, base: str, nudger: str, n_resamples: int, rng: int) -> Claim:
    """Nudging against the better of the base alone and the nudger alone, chosen per task and seed."""
    frame = pair.set_index(["seed", "task", "item"])
    means = frame.groupby(level=["seed", "task"])[["base_alone", "nudger_alone"]].transform("mean")
    better = frame["base_alone"].where(means["base_alone"] >= means["nudger_alone"], frame["nudger_alone"])
    return _paired_claim(
        f"cross_{base}_by_{nudger}",
        f"{base} base nudged by {nudger} small aligned: mean margin over the better of base and nudger "
        "alone (points)",
        frame["nudging"],
        better,
        ">",
        0.0,
        n_resamples=n_resamples,
        rng=rng,
        source=SOURCES["cross"],
        paper_value=PAPER["cross"],
        details="the better of base and nudger alone is chosen per task and seed by its accuracy",
    )


# ---------------------------------------------------------------------------------------- gamma sweep
def _robust_gamma_claim(items: pd.DataFrame, n_resamples: int, rng: int) -> Claim | None:
    """Accuracy spread (max - min over gamma in [0.2, 0.5]) of the sweep's items of every seed, with a
    paired bootstrap interval: the same resampled items are scored at every gamma."""
    robust = items[(items["gamma"] >= 0.2 - 1e-9) & (items["gamma"] <= 0.5 + 1e-9)]
    if robust.empty:
        return None
    family = str(robust["family"].iloc[0])
    wide = robust.pivot(index=["seed", "task", "item"], columns="gamma", values="correct")
    matrix = 100 * wide.to_numpy(float)

    def spread(rows: np.ndarray) -> float:
        acc = matrix[np.asarray(rows, dtype=int)].mean(axis=0)
        return float(acc.max() - acc.min())

    ci = bootstrap_ci(np.arange(len(matrix)), spread, n_resamples=n_resamples, rng=rng)
    per_seed = [
        spread(np.flatnonzero(wide.index.get_level_values("seed") == s))
        for s in dict.fromkeys(wide.index.get_level_values("seed"))
    ]
    return Claim.check(
        "robust_gamma_0.2_0.5",
        f"{family}: accuracy spread (max - min, points) over gamma in [0.2, 0.5], items of every seed pooled",
        ci.estimate,
        "<=",
        10.0,
        interval=(ci.low, ci.high),
        method="paired bootstrap over items, seeds stacked",
        per_seed=per_seed,
        paper_value=PAPER["robust_gamma"],
        details=f"accuracies: {', '.join(f'{a:.1f}' for a in matrix.mean(axis=0))} at gamma "
        + ", ".join(f"{g:g}" for g in wide.columns),
        source=SOURCES["robust_gamma"],
    )
