"""The paper's claims, checked on the tables of a run: ``claims(results, section) -> [Claim]``.

Each claim cites where the paper (arXiv 2510.19796, or its official code where the text was not
available) states the number, and carries a 95% interval: exact binomial for a rate pooled over seeds,
a Student-t interval across seeds for every other per-seed number (one seed: no interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from reprokit.reproduce import mean_interval
from reprokit.results import Claim
from reprokit.stats import binomial_ci

if TYPE_CHECKING:
    from reprokit.reproduce import SeedResults

__all__ = [
    "KS_CRITICAL_1PCT",
    "PAPER",
    "SOURCES",
    "claims",
    "light_suspects",
    "main_family",
    "tokens_to_reach",
]

# The paper's published numbers, shown beside ours. [P]: the paper's text (abstract); [C]: its official
# code and notebooks (github.com/RohithKuditipudi/blackbox-model-tracing), where the text was not available.
PAPER: dict[str, Any] = {
    "headline": "p <= 1e-8 for all but 6 of 40+ fine-tunes of Pythia/OLMo (1B-12B) [P]",
    "repo_example": "rho = -0.078, p = 2.3e-134 (pythia-6.9b-deduped vs pythia-6.9b, n = 100k) [C]",
    "figure1": "derivative p = 3.13e-25, independent p = 0.915 [C]",
    "reference_ablation": {
        "none": "0.39 / 0.30 / 0.21",
        "same-recipe": "5e-5 / 2e-8 / 8e-20 (pythia-6.9b)",
        "smaller": "0.03 / 2e-5 / 8e-12 (pythia-1.4b)",
        "other-arch": "0.10 / 0.035 / 3e-4 (gpt-j-6b)",
        "other-data": "0.69 / 0.011 / 5e-3 (llama2-7b)",
        "EleutherAI/pythia-6.9b": "5e-5 / 2e-8 / 8e-20",
        "EleutherAI/pythia-2.8b": "0.06 / 4e-5 / 1e-15",
        "EleutherAI/pythia-1.4b": "0.03 / 2e-5 / 8e-12",
        "EleutherAI/pythia-1b": "0.18 / 2e-4 / 7e-10",
        "EleutherAI/pythia-410m": "0.10 / 2e-3 / 2.5e-6",
        "EleutherAI/pythia-160m": "0.08 / 4e-3 / 1.2e-3",
        "EleutherAI/gpt-j-6b": "0.10 / 0.035 / 3e-4",
        "meta-llama/Llama-2-7b-hf": "0.69 / 0.011 / 5e-3",
        "meta-llama/Meta-Llama-3-8B": "0.57 / 6e-3 / 8e-3",
    },
    "reshuffle_tokens": "320 tokens: ~1e-4..1e-6; 3,200: ~1e-13; 32,000: ~1e-28 "
    "(2% retrain, normal approx) [C]",
    "finetune": "Bob fine-tuned on 0.02% / 0.2% / 1% / 2% of pretraining: p ~ 1e-43 / 1e-11 / 1e-2 / 0.5 [C]",
    "distillation": "log10 p from -1.4 to -2.8 [C]",
    "ngram": "needs several hundred thousand tokens [P]",
    "null": "empirical CDF of null p-values on or below the diagonal [C]",
}

# Where the paper (or its official code) states each number.
SOURCES = {
    "headline": "arXiv 2510.19796, abstract (query setting)",
    "reference": "arXiv 2510.19796, Eq. 2 (query statistic with a reference model); reference ablation "
    "in the official code's reference-model notebook",
    "null": "arXiv 2510.19796, Algorithm 1 and Theorem 1 (exact p-values under a random order)",
    "reshuffle": "arXiv 2510.19796, abstract and observational setting (reshuffle test)",
    "ngram": "arXiv 2510.19796, abstract and Section 4.3.1 / Algorithm 2 (partition test)",
    "finetune": "arXiv 2510.19796, observational setting; fine-tuning sweep in the official code",
    "distillation": "arXiv 2510.19796, query setting; distillation notebook in the official code",
}

#: The 1% critical value of the Kolmogorov distribution: sqrt(m) * D above it <=> KS p < 0.01 (large m).
KS_CRITICAL_1PCT = float(_st.kstwobign.isf(0.01))

_T_METHOD = "Student-t across seeds"


def main_family(frame: pd.DataFrame, section: Any) -> pd.DataFrame:
    """The rows of the main query family (paper scale: `section.family`; tiny: every row)."""
    if "family" not in frame.columns:
        return frame
    return frame[frame["family"] == section.family]


def tokens_to_reach(tokens: Sequence[float], log10_p: Sequence[float], threshold: float = -2.0) -> float:
    """The first token count whose log10 p is at or below `threshold` (inf: never)."""
    for t, lp in zip(tokens, log10_p, strict=True):
        if lp <= threshold:
            return float(t)
    return math.inf


def _across_seeds(
    id: str, statement: str, values: Sequence[float], op: Any, bound: float, **kw: Any
) -> Claim:
    """A claim on per-seed numbers: the mean, judged with its Student-t 95% interval across seeds."""
    mean, lo, hi = mean_interval(values)
    return Claim.check(
        id, statement, mean, op, bound, interval=(lo, hi), per_seed=list(values), method=_T_METHOD, **kw
    )


def _by(frame: pd.DataFrame, key: str, value: str) -> dict[Any, float]:
    return dict(zip(frame[key], frame[value], strict=True))


def claims(results: SeedResults, section: Any) -> list[Claim]:
    """The paper's claims on this run's tables (tiny: 10 claims; paper scale: those its tables allow)."""
    if getattr(section, "SCALE", "tiny") == "paper":
        return _paper_claims(results, section)
    return _tiny_claims(results, section)


# --------------------------------------------------------------------------------------- shared
def _null_claims(results: SeedResults, subject: str) -> list[Claim]:
    """Calibration under random orders (first row of table_null_calibration) and the null models."""
    frames = results.per_seed("table_null_calibration")
    rows = [f.iloc[0] for f in frames]
    m = int(rows[0]["m"])
    kolmogorov = [math.sqrt(float(r["m"])) * float(r["ks_statistic"]) for r in rows]
    out = [
        _across_seeds(
            "null_uniform",
            f"query p-values under random orders are uniform: Kolmogorov statistic sqrt(m)*D of {subject} "
            f"against {m} random orders (below {KS_CRITICAL_1PCT:.3f} <=> KS p > 0.01)",
            kolmogorov,
            "<",
            round(KS_CRITICAL_1PCT, 4),
            paper_value=PAPER["null"],
            source=SOURCES["null"],
            sanity=True,
        )
    ]
    k = sum(round(float(r["fpr_0.05"]) * int(r["m"])) for r in rows)
    n = sum(int(r["m"]) for r in rows)
    out.append(
        Claim.check(
            "null_fpr",
            "false-positive rate at alpha=0.05 under random orders (within binomial noise of 0.05; "
            f"pooled over {len(rows)} seed(s), {n} orders)",
            k / n,
            "<=",
            round(0.05 + 2.5 * math.sqrt(0.05 * 0.95 / max(1, m)), 4),
            interval=binomial_ci(k, n),
            per_seed=[float(r["fpr_0.05"]) for r in rows],
            paper_value="P(p <= alpha) <= alpha under H0 (Theorem 1)",
            source=SOURCES["null"],
            sanity=True,
        )
    )
    query = results.per_seed("table_query")
    if (query[0]["kind"] == "null").any():
        values = [float(10 ** f.loc[f["kind"] == "null", "log10_p_holm"].min()) for f in query]
        out.append(
            _across_seeds(
                "null_models_not_flagged",
                "no independently trained model is flagged (min Holm-adjusted p over null rows > 0.05)",
                values,
                ">",
                0.05,
                source=SOURCES["null"],
            )
        )
    return out


# ------------------------------------------------------------------------------------------ tiny
def light_suspects(robustness: pd.DataFrame, section: Any) -> list[str]:
    """Alice and her light fine-tunes: lr at most `light_lr_fraction` of hers and at most
    `light_token_fraction` of her tokens (the rule is fixed in the config, before any result)."""
    light = (
        (robustness["kind"] == "derived")
        & (robustness["lr_fraction"] <= section.light_lr_fraction)
        & (robustness["token_fraction"] <= section.light_token_fraction)
    )
    return list(robustness.loc[light, "suspect"])


def _tiny_claims(results: SeedResults, section: Any) -> list[Claim]:
    query = results.per_seed("table_query")
    q = [_by(f, "suspect", "log10_p") for f in query]
    qnr = [_by(f, "suspect", "log10_p_no_reference") for f in query]
    robustness_frames = results.per_seed("table_finetune_robustness")
    light = light_suspects(robustness_frames[0], section)
    weakest = [max(light, key=lambda s, qs=qs: qs[s]) for qs in q]
    out = [
        _across_seeds(
            "query_derived_tiny_p",
            f"Alice and her light fine-tunes (lr <= {section.light_lr_fraction:g} of hers, tokens <= "
            f"{section.light_token_fraction:g} of hers: {', '.join(light)}) reach p <= 1e-8 with a "
            f"reference (max log10 p; the weakest per seed: {', '.join(weakest)})",
            [max(qs[s] for s in light) for qs in q],
            "<=",
            -8.0,
            paper_value=PAPER["headline"],
            source=SOURCES["headline"],
        ),
        _across_seeds(
            "reference_gain",
            "the reference model improves Alice's p by orders of magnitude "
            "(log10 p without - with reference)",
            [a["alice"] - b["alice"] for a, b in zip(qnr, q, strict=True)],
            ">=",
            3.0,
            paper_value="no reference 0.21 vs same-arch reference 8e-20 at n=10k",
            source=SOURCES["reference"],
        ),
    ]
    ablation = results.per_seed("table_reference_ablation")
    last = [c for c in ablation[0].columns if c.startswith("log10_p_n")][-1]
    by_ref = [_by(f, "reference", last) for f in ablation]
    if "other-data" in by_ref[0] and section.reference in by_ref[0]:
        out.append(
            _across_seeds(
                "same_data_reference_best",
                "a reference on the same data beats one trained on other data (log10 p same - other)",
                [b[section.reference] - b["other-data"] for b in by_ref],
                "<",
                0.0,
                paper_value="pythia-6.9b 8e-20 vs llama2-7b 5e-3 at n=10k",
                source=SOURCES["reference"],
            )
        )
    out += _null_claims(results, "Alice")
    tokens = results.per_seed("table_reshuffle_tokens")
    near = [tok.iloc[int(np.argmin(np.abs(np.log(tok["n_tokens"] / 300))))] for tok in tokens]
    rank = ", ".join(f"{float(r['rank_p']):.2g}" for r in near)
    out.append(
        _across_seeds(
            "reshuffle_few_hundred_tokens",
            "a few hundred tokens suffice for the reshuffle test (median t-corrected log10 p at "
            f"{', '.join(str(int(r['n_tokens'])) for r in near)} tokens; the exact rank p there: {rank}, "
            f"at its floor 1/(K+1) = {1 / (section.k + 1):.2g} when the original beats every copy)",
            [float(r["log10_t_p"]) for r in near],
            "<=",
            -2.0,
            paper_value="320 tokens: ~1e-4..1e-6 (Gaussian approx.)",
            source=SOURCES["reshuffle"],
        )
    )
    out.append(_ngram_claim(tokens, results.per_seed("table_ngram_tokens")))
    robustness = [_by(f, "suspect", "log10_t_p") for f in robustness_frames]
    c = section.setup
    heavy = f"ft-lr{max(c.finetune_lr_fractions):g}-tok{max(c.finetune_fractions):g}"
    if heavy in robustness[0]:
        out.append(
            _across_seeds(
                "finetune_weakens_reshuffle",
                f"heavy fine-tuning ({heavy}: {max(c.finetune_lr_fractions):g} of Alice's lr on "
                f"{max(c.finetune_fractions):g} of her volume) weakens the reshuffle signal "
                f"(log10 t-p {heavy} - alice)",
                [r[heavy] - r["alice"] for r in robustness],
                ">=",
                1.0,
                paper_value=PAPER["finetune"],
                source=SOURCES["finetune"],
            )
        )
    if "distilled" in q[0]:
        out.append(
            _across_seeds(
                "distillation_weakens_query",
                "distillation weakens the query signal (log10 p distilled - alice)",
                [qs["distilled"] - qs["alice"] for qs in q],
                ">=",
                3.0,
                paper_value=PAPER["distillation"],
                source=SOURCES["distillation"],
            )
        )
    return out


def _ngram_claim(tokens: list[pd.DataFrame], ngram: list[pd.DataFrame]) -> Claim:
    """Tokens the n-gram test needs over tokens the reshuffle test needs to reach p <= 0.01, per seed.

    Judged on the single-document-match statistic (the official code's variant); where either test never
    reaches p <= 0.01 on the text tried, the seed's ratio is NaN and the claim does not hold: a test
    that never detects is not evidence that it needs more tokens.
    """
    ratios, parts = [], []
    for tok, ng in zip(tokens, ngram, strict=True):
        t_reshuffle = tokens_to_reach(tok["n_tokens"], tok["log10_t_p"])
        t_ngram = tokens_to_reach(ng["target_tokens"], np.log10(ng["perm_p_single"]))
        t_paper = tokens_to_reach(ng["target_tokens"], np.log10(ng["perm_p"]))
        largest = float(ng["target_tokens"].max())
        found = math.isfinite(t_ngram) and math.isfinite(t_reshuffle)
        ratios.append(t_ngram / t_reshuffle if found else math.nan)
        ngram_text = f"{t_ngram:g}" if math.isfinite(t_ngram) else f"not within {largest:g}"
        paper_text = f"{t_paper:g}" if math.isfinite(t_paper) else f"not within {largest:g}"
        parts.append(f"reshuffle {t_reshuffle:g} vs n-gram {ngram_text} (all-match statistic: {paper_text})")
    statement = (
        "the n-gram test reaches p <= 0.01 but needs far more tokens than the reshuffle test (ratio of "
        "tokens, single-document matches, the official code's variant; per seed: "
        f"{'; '.join(parts)}; a seed where either test never reaches it makes the claim fail)"
    )
    kw: dict[str, Any] = {"paper_value": PAPER["ngram"], "source": SOURCES["ngram"]}
    if any(math.isnan(r) for r in ratios):  # the across-seed mean would silently drop such a seed
        missing = sum(math.isnan(r) for r in ratios)
        return Claim.check(
            "ngram_needs_more_tokens",
            statement,
            math.nan,
            ">=",
            10.0,
            interval=(math.nan, math.nan),
            per_seed=ratios,
            method=_T_METHOD,
            details=f"{missing} of {len(ratios)} seed(s) never reached p <= 0.01 on the text tried",
            **kw,
        )
    return _across_seeds("ngram_needs_more_tokens", statement, ratios, ">=", 10.0, **kw)


# ----------------------------------------------------------------------------------------- paper
def _paper_claims(results: SeedResults, section: Any) -> list[Claim]:
    query = results.per_seed("table_query")
    derived = pd.concat([f[f["kind"] == "derived"] for f in query])
    k = int((derived["log10_p"] <= -8.0).sum())
    out = [
        Claim.check(
            "query_derived_paper_rate",
            f"derived suspects flagged at p <= 1e-8 ({k} of {len(derived)})",
            k / len(derived),
            ">=",
            0.85,
            interval=binomial_ci(k, len(derived)),
            paper_value=PAPER["headline"],
            source=SOURCES["headline"],
        )
    ]
    main = [main_family(f, section) for f in query]
    base = [f.set_index("suspect") for f in main]
    if section.ablation_suspect in base[0].index:
        out.append(
            _across_seeds(
                "reference_gain",
                f"the reference model improves {section.ablation_suspect}'s p by orders of magnitude "
                "(log10 p without - with reference)",
                [
                    float(f.loc[section.ablation_suspect, "log10_p_no_reference"])
                    - float(f.loc[section.ablation_suspect, "log10_p"])
                    for f in base
                ],
                ">=",
                3.0,
                paper_value="no reference 0.21 vs same-arch reference 8e-20 at n=10k",
                source=SOURCES["reference"],
            )
        )
    return out + _null_claims(results, section.ablation_suspect)
