"""Tables, figures and claims of the reproduction, as functions of a frozen config (tiny and paper scale).

`run_tiny` trains (or loads from cache) the tiny setup and writes every table through a
`reprokit.results.RunOutput`; `run_paper` runs the paper's real setup for a user who has the weights.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from palimpsest.ngram import NGramIndex, ngram_test
from palimpsest.query import QueryResult, query_test_from_losses
from palimpsest.reshuffle import ReshuffleScores, score_candidates
from palimpsest.suspects import adjust_suspects
from palimpsest.tiny import TinyConfig, TinySetup
from reprokit.cli import config_from_dict
from reprokit.progress import progress
from reprokit.results import Claim, RunOutput, Table, new_figure
from reprokit.stats import binomial_ci, ks_uniform_test, log10_p_to_str

logger = logging.getLogger(__name__)

__all__ = ["PAPER", "PaperConfig", "ReproduceConfig", "run_paper", "run_tiny"]


@dataclass(frozen=True)
class ReproduceConfig:
    """Sizes of the tiny-scale experiments (the models themselves are in `tiny`)."""

    tiny: TinyConfig = field(default_factory=TinyConfig)
    reference: str = "same-recipe"
    query_n: tuple[int, ...] = (100, 300, 1000)
    n_null_orders: int = 1000
    n_permutations: int = 999
    main_fraction: float = 0.1
    k: int = 19
    k_sweep: int = 9
    n_samples: int = 400
    sample_tokens: int = 32
    n_robustness_samples: int = 100
    token_grid: tuple[int, ...] = (100, 300, 1000, 3000, 10000)
    n_draws: int = 5
    ngram_max_n: int = 8
    ngram_permutations: int = 499

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReproduceConfig:
        """From a TOML table; the `[tiny]` sub-table becomes the `TinyConfig`."""
        data = dict(data)
        tiny = TinyConfig.from_dict(data.pop("tiny", {}))
        return config_from_dict(cls, data, what="palimpsest", tiny=tiny)


# The paper's published numbers (from the brief, /shared/papers/palimpsest.md), shown beside ours.
PAPER = {
    "headline": "p <= 1e-8 for all but 6 of 40+ fine-tunes of Pythia/OLMo (1B-12B) [P]",
    "repo_example": "rho = -0.078, p = 2.3e-134 (pythia-6.9b-deduped vs pythia-6.9b, n = 100k) [C]",
    "figure1": "derivative p = 3.13e-25, independent p = 0.915 [C]",
    "reference_ablation": {
        "none": "0.39 / 0.30 / 0.21",
        "same-recipe": "5e-5 / 2e-8 / 8e-20 (pythia-6.9b)",
        "smaller": "0.03 / 2e-5 / 8e-12 (pythia-1.4b)",
        "other-arch": "0.10 / 0.035 / 3e-4 (gpt-j-6b)",
        "other-data": "0.69 / 0.011 / 5e-3 (llama2-7b)",
    },
    "reshuffle_tokens": "320 tokens: ~1e-4..1e-6; 3,200: ~1e-13; 32,000: ~1e-28 "
    "(2% retrain, normal approx) [C]",
    "finetune": "Bob fine-tuned on 0.02% / 0.2% / 1% / 2% of pretraining: p ~ 1e-43 / 1e-11 / 1e-2 / 0.5 [C]",
    "distillation": "log10 p from -1.4 to -2.8 [C]",
    "ngram": "needs several hundred thousand tokens [P]",
    "null": "empirical CDF of null p-values on or below the diagonal [C]",
}


def _fmt(log10_p: float) -> str:
    return log10_p_to_str(log10_p) if math.isfinite(log10_p) else "nan"


# ----------------------------------------------------------------------------------------- query
def _query(
    setup: TinySetup, suspect: Any, reference: Any | None, index: np.ndarray, perms: int
) -> QueryResult:
    pos = setup.transcript.positions[index]
    s = setup.losses(suspect)[index]
    r = None if reference is None else setup.losses(reference)[index]
    return query_test_from_losses(pos, s, r, n_permutations=perms)


def query_table(setup: TinySetup, rc: ReproduceConfig) -> pd.DataFrame:
    """One row per suspect (derived and null): rho, log10 p with and without reference, Holm over all rows."""
    ref = setup.references[rc.reference]
    everything = np.arange(len(setup.transcript))
    rows = []
    nulls = dict(setup.nulls)
    for name, model in setup.references.items():
        if name != rc.reference:
            nulls[f"ref-{name}"] = model
    for kind, group in (("derived", setup.suspects), ("null", nulls)):
        for name, model in progress(group.items(), total=len(group), desc=f"query {kind}"):
            res = _query(setup, model, ref, everything, rc.n_permutations)
            rows.append(
                {
                    "suspect": name,
                    "kind": kind,
                    "n": res.n,
                    "reference": rc.reference,
                    "rho": res.statistic,
                    "log10_p": res.log10_pvalue,
                    "p": _fmt(res.log10_pvalue),
                    "permutation_p": res.permutation_pvalue,
                    "log10_p_no_reference": res.without_reference().log10_pvalue,
                }
            )
    return adjust_suspects(pd.DataFrame(rows), column="log10_p", method="holm")


def reference_ablation(setup: TinySetup, rc: ReproduceConfig) -> pd.DataFrame:
    """log10 p of Alice at several n for references of different quality (one uniform draw per n)."""
    n_all = len(setup.transcript)
    ns = [n for n in rc.query_n if n < n_all] + [n_all]
    refs: dict[str, Any] = {"none": None, **setup.references}
    rows = []
    for name, ref in refs.items():
        row: dict[str, Any] = {"reference": name}
        for n in ns:
            idx = np.sort(np.random.default_rng(rc.tiny.seed + n).choice(n_all, n, replace=False))
            row[f"log10_p_n{n}"] = _query(setup, setup.alice, ref, idx, 0).log10_pvalue
        rows.append(row)
    return pd.DataFrame(rows)


def null_calibration(setup: TinySetup, rc: ReproduceConfig, table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """p-values under H0: Alice's losses against random orders, and the independently trained nulls."""
    a = setup.losses(setup.alice)
    r = setup.losses(setup.references[rc.reference])
    rng = np.random.default_rng(rc.tiny.seed)
    random_p = np.array(
        [query_test_from_losses(rng.permutation(a.size), a, r).pvalue for _ in range(rc.n_null_orders)]
    )
    model_p = 10 ** table.loc[table["kind"] == "null", "log10_p"].to_numpy()
    rows = []
    for source, p in (("random orders, Alice vs reference", random_p), ("independent models", model_p)):
        row: dict[str, Any] = {"source": source, "m": p.size}
        for alpha in (0.05, 0.01):
            ci = binomial_ci(int((p <= alpha).sum()), p.size)
            row[f"fpr_{alpha:g}"] = ci.estimate
            row[f"fpr_{alpha:g}_ci"] = f"[{ci.low:.3f}, {ci.high:.3f}]"
        row["ks_pvalue"] = ks_uniform_test(p)[1] if p.size >= 2 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows), {"random": random_p, "models": model_p}


def qq_figure(pvalues: Mapping[str, np.ndarray]):
    """QQ plot of null p-values against U(0, 1)."""
    fig, ax = new_figure(figsize=(4.5, 4.5))
    for (label, p), marker in zip(pvalues.items(), ("-", "o"), strict=False):
        p = np.sort(p)
        expected = (np.arange(1, p.size + 1)) / (p.size + 1)
        ax.plot(expected, p, marker, label=f"{label} (m={p.size})", ms=5)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("expected p (uniform)")
    ax.set_ylabel("observed p")
    ax.set_title("Null calibration of the query test")
    ax.legend(fontsize=8)
    return fig


def figure1(setup: TinySetup, rc: ReproduceConfig, derived: str = "alice", null: str | None = None):
    """Normalised loss difference against training order, for a derived and an independent suspect."""
    null = null or next(iter(setup.nulls))
    ref = setup.losses(setup.references[rc.reference])
    pos = setup.transcript.positions
    fig, axes = new_figure(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, name, model in ((axes[0], derived, setup.suspects[derived]), (axes[1], null, setup.nulls[null])):
        d = setup.losses(model) - ref
        z = (d - d.mean()) / d.std()
        res = query_test_from_losses(pos, setup.losses(model), ref)
        ax.scatter(pos, -z, s=3, alpha=0.3)
        slope, icpt = np.polyfit(pos, -z, 1)
        ax.plot(pos, slope * pos + icpt, "r-", lw=1.5)
        ax.set_title(f"{name}: rho={res.statistic:+.3f}, p={_fmt(res.log10_pvalue)}", fontsize=9)
        ax.set_xlabel("training position in Alice's order")
    axes[0].set_ylabel("normalised log-likelihood (vs reference)")
    return fig


# -------------------------------------------------------------------------------------- observational
def _median_p(scores: ReshuffleScores, tokens: int, draws: int) -> dict[str, float]:
    res = [scores.test(scores.subsample(tokens, seed=d)) for d in range(draws)]
    return {
        "n_tokens": float(np.median([r.n_tokens for r in res])),
        "rank_p": float(np.median([r.rank_pvalue for r in res])),
        "log10_t_p": float(np.median([r.log10_t_pvalue for r in res])),
        "log10_normal_p": float(np.median([r.log10_normal_pvalue for r in res])),
    }


def _candidate_scores(setup: TinySetup, fraction: float, k: int, samples: Any) -> ReshuffleScores:
    original, copies = setup.retrain(fraction, k)
    return score_candidates(
        setup.load(original),
        [setup.load(c) for c in copies],
        setup.tokenizer,
        samples.sequences,
        prompts=samples.prompt_lengths,
    )


def reshuffle_experiments(
    setup: TinySetup, rc: ReproduceConfig, query: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """p against suspect-text tokens and retrain fraction, and the fine-tuning robustness sweep."""
    c = rc.tiny
    bob = setup.samples(setup.alice, rc.n_samples, new_tokens=rc.sample_tokens, seed=c.seed + 1)
    main = _candidate_scores(setup, rc.main_fraction, rc.k, bob)
    grid = [t for t in rc.token_grid if t < bob.n_tokens] + [bob.n_tokens]
    tokens = pd.DataFrame([{"target_tokens": t, **_median_p(main, t, rc.n_draws)} for t in grid])
    tokens.insert(0, "k", rc.k)
    tokens.insert(
        0,
        "retrained_examples",
        len(setup.alice.order) - setup.checkpoint_step(rc.main_fraction) * c.batch_size,
    )
    tokens.insert(0, "retrain_fraction", rc.main_fraction)

    rows = []
    for f in progress(c.retrain_fractions, total=len(c.retrain_fractions), desc="retrain fractions"):
        if f == rc.main_fraction:
            sc = ReshuffleScores(main.scores[: rc.k_sweep + 1], main.n_tokens)
        else:
            sc = _candidate_scores(setup, f, rc.k_sweep, bob)
        for t in (min(1000, bob.n_tokens), bob.n_tokens):
            rows.append(
                {
                    "retrain_fraction": f,
                    "retrained_examples": len(setup.alice.order) - setup.checkpoint_step(f) * c.batch_size,
                    "k": rc.k_sweep,
                    "target_tokens": t,
                    **_median_p(sc, t, rc.n_draws),
                }
            )
    fractions = pd.DataFrame(rows)

    rows = []
    robust_models = {**{k: v for k, v in setup.suspects.items() if k != "alice"}, **setup.nulls}
    qlog = dict(zip(query["suspect"], query["log10_p"], strict=True))
    for name, model in progress(robust_models.items(), total=len(robust_models), desc="robustness"):
        s = setup.samples(model, rc.n_robustness_samples, new_tokens=rc.sample_tokens, seed=c.seed + 2)
        res = _candidate_scores(setup, rc.main_fraction, rc.k_sweep, s).test()
        rows.append(
            {
                "suspect": name,
                "kind": "null" if name in setup.nulls else "derived",
                "n_tokens": res.n_tokens,
                "rank_p": res.rank_pvalue,
                "log10_t_p": res.log10_t_pvalue,
                "log10_normal_p": res.log10_normal_pvalue,
                "query_log10_p": qlog.get(name, float("nan")),
            }
        )
    alice_scores = ReshuffleScores(main.scores[: rc.k_sweep + 1], main.n_tokens)  # the same K as the others
    alice_small = alice_scores.test(alice_scores.subsample(rows[0]["n_tokens"] if rows else 3000, seed=0))
    rows.insert(
        0,
        {
            "suspect": "alice",
            "kind": "derived",
            "n_tokens": alice_small.n_tokens,
            "rank_p": alice_small.rank_pvalue,
            "log10_t_p": alice_small.log10_t_pvalue,
            "log10_normal_p": alice_small.log10_normal_pvalue,
            "query_log10_p": qlog.get("alice", float("nan")),
        },
    )
    return {"tokens": tokens, "fractions": fractions, "robustness": pd.DataFrame(rows), "bob": bob}  # type: ignore[dict-item]


def ngram_experiment(setup: TinySetup, rc: ReproduceConfig, bob: Any) -> pd.DataFrame:
    """n-gram test p against suspect-text tokens (Alice's samples against her step-tagged documents)."""
    t = setup.transcript
    index = NGramIndex(t.token_ids, t.step_of_example, max_n=rc.ngram_max_n)  # type: ignore[arg-type]
    texts = [list(c) for c in bob.completion_ids]
    n_tok = np.array([len(x) for x in texts])
    grid = [g for g in rc.token_grid if g < n_tok.sum()] + [int(n_tok.sum())]
    rows = []
    for g in progress(grid, total=len(grid), desc="n-gram"):
        ps, rhos = [], []
        for d in range(rc.n_draws):
            perm = np.random.default_rng(d).permutation(len(texts))
            take = perm[: max(1, int(np.searchsorted(np.cumsum(n_tok[perm]), g)) + 1)]
            res = ngram_test(index, [texts[i] for i in take], n_permutations=rc.ngram_permutations, seed=d)
            ps.append(res.pvalue)
            rhos.append(res.statistic)
        rows.append(
            {
                "target_tokens": g,
                "rho": float(np.median(rhos)),
                "perm_p": float(np.median(ps)),
                "min_possible_p": 1 / (rc.ngram_permutations + 1),
            }
        )
    return pd.DataFrame(rows)


def tokens_figure(reshuffle: pd.DataFrame, ngram: pd.DataFrame, k: int):
    """Median p against suspect-text tokens: reshuffle (three p-values) beside the n-gram test."""
    fig, ax = new_figure(figsize=(6, 4))
    ax.plot(reshuffle["n_tokens"], reshuffle["log10_t_p"], "o-", label="reshuffle, t-corrected p")
    ax.plot(
        reshuffle["n_tokens"], reshuffle["log10_normal_p"], "s--", label="reshuffle, Gaussian approx. (paper)"
    )
    ax.plot(
        reshuffle["n_tokens"], np.log10(reshuffle["rank_p"]), "^:", label=f"reshuffle, exact rank p (K={k})"
    )
    ax.plot(ngram["target_tokens"], np.log10(ngram["perm_p"]), "d-", label="n-gram, permutation p")
    ax.axhline(-2, color="grey", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("suspect-text tokens")
    ax.set_ylabel("median log10 p")
    ax.legend(fontsize=7)
    return fig


def _tokens_to_reach(tokens: Sequence[float], log10_p: Sequence[float], threshold: float = -2.0) -> float:
    for t, lp in zip(tokens, log10_p, strict=True):
        if lp <= threshold:
            return float(t)
    return math.inf


# ------------------------------------------------------------------------------------------ driver
def run_tiny(rc: ReproduceConfig, out: RunOutput, *, cache_dir: Any = None) -> RunOutput:
    """Every tiny-scale table, figure and claim, written into `out` (call `out.finish` afterwards)."""
    setup = TinySetup(rc.tiny, cache_dir=cache_dir)
    with out.time("train"):
        _ = (setup.alice, setup.references, setup.nulls, setup.suspects)
    with out.time("query"):
        qt = query_table(setup, rc)
        out.table(
            Table("table_query", qt, "Query test: one row per suspect; Holm-adjusted log10 p over all rows.")
        )
        abl = reference_ablation(setup, rc)
        out.table(
            Table("table_reference_ablation", abl, "log10 p of Alice for references of different quality.")
        )
        nc, null_p = null_calibration(setup, rc, qt)
        out.table(
            Table("table_null_calibration", nc, "False-positive rates under H0 with 95% Clopper-Pearson CIs.")
        )
        out.figure(
            qq_figure({"random orders": null_p["random"], "independent models": null_p["models"]}),
            "figure_null_qq",
        )
        out.figure(figure1(setup, rc), "figure1")
    with out.time("reshuffle"):
        obs = reshuffle_experiments(setup, rc, qt)
        out.table(
            Table("table_reshuffle_tokens", obs["tokens"], "Reshuffle test: median p against suspect tokens.")
        )
        out.table(
            Table("table_reshuffle_fraction", obs["fractions"], "Reshuffle test against retrain fraction.")
        )
        out.table(
            Table(
                "table_finetune_robustness",
                obs["robustness"],
                "Reshuffle (and query) p for Bob = derived/null.",
            )
        )
    with out.time("ngram"):
        ng = ngram_experiment(setup, rc, obs["bob"])
        out.table(
            Table("table_ngram_tokens", ng, "n-gram test: median permutation p against suspect tokens.")
        )
        out.figure(tokens_figure(obs["tokens"], ng, rc.k), "figure_tokens")
    _claims(out, rc, qt, abl, nc, obs, ng)
    _compare(out, qt, abl, obs, ng)
    return out


def _claims(out: RunOutput, rc: ReproduceConfig, qt, abl, nc, obs, ng) -> None:
    q = dict(zip(qt["suspect"], qt["log10_p"], strict=True))
    qnr = dict(zip(qt["suspect"], qt["log10_p_no_reference"], strict=True))
    light = [s for s in ("alice", "chat-full", "chat-lora", "finetune-0.01") if s in q]
    out.claim(
        Claim.check(
            "query_derived_tiny_p",
            f"Alice and her light fine-tunes ({', '.join(light)}) reach p <= 1e-8 with a reference "
            "(max log10 p)",
            max(q[s] for s in light),
            "<=",
            -8.0,
            paper_value=PAPER["headline"],
        )
    )
    out.claim(
        Claim.check(
            "reference_gain",
            "the reference model improves Alice's p by orders of magnitude "
            "(log10 p without - with reference)",
            qnr["alice"] - q["alice"],
            ">=",
            3.0,
            paper_value="no reference 0.21 vs same-arch reference 8e-20 at n=10k",
        )
    )
    last = [c for c in abl.columns if c.startswith("log10_p_n")][-1]
    by_ref = dict(zip(abl["reference"], abl[last], strict=True))
    if "other-data" in by_ref and rc.reference in by_ref:
        out.claim(
            Claim.check(
                "same_data_reference_best",
                "a reference on the same data beats one trained on other data (log10 p same - other)",
                by_ref[rc.reference] - by_ref["other-data"],
                "<",
                0.0,
                paper_value="pythia-6.9b 8e-20 vs llama2-7b 5e-3 at n=10k",
            )
        )
    random_row = nc.iloc[0]
    out.claim(
        Claim.check(
            "null_uniform",
            f"query p-values under random orders are uniform (KS p-value, m={int(random_row['m'])})",
            float(random_row["ks_pvalue"]),
            ">",
            0.01,
            paper_value=PAPER["null"],
        )
    )
    out.claim(
        Claim.check(
            "null_fpr",
            "false-positive rate at alpha=0.05 under random orders (within binomial noise of 0.05)",
            float(random_row["fpr_0.05"]),
            "<=",
            round(0.05 + 2.5 * math.sqrt(0.05 * 0.95 / max(1, int(random_row["m"]))), 4),
        )
    )
    nulls = qt[qt["kind"] == "null"]
    out.claim(
        Claim.check(
            "null_models_not_flagged",
            "no independently trained model is flagged (min Holm-adjusted p over null rows > 0.05)",
            float(10 ** nulls["log10_p_holm"].min()),
            ">",
            0.05,
        )
    )
    tok = obs["tokens"]
    near_300 = tok.iloc[int(np.argmin(np.abs(np.log(tok["n_tokens"] / 300))))]
    out.claim(
        Claim.check(
            "reshuffle_few_hundred_tokens",
            f"a few hundred tokens suffice for the reshuffle test (median t-corrected log10 p at "
            f"{int(near_300['n_tokens'])} tokens)",
            float(near_300["log10_t_p"]),
            "<=",
            -2.0,
            paper_value="320 tokens: ~1e-4..1e-6 (Gaussian approx.)",
        )
    )
    t_reshuffle = _tokens_to_reach(tok["n_tokens"], tok["log10_t_p"])
    t_ngram = _tokens_to_reach(ng["target_tokens"], np.log10(ng["perm_p"]))
    ratio = t_ngram / t_reshuffle if math.isfinite(t_reshuffle) else math.nan
    out.claim(
        Claim.check(
            "ngram_needs_more_tokens",
            f"the n-gram test needs far more tokens than the reshuffle test to reach p <= 0.01 (ratio; "
            f"reshuffle {t_reshuffle:g}, n-gram {t_ngram:g} tokens; inf = not reached within "
            f"{int(ng['target_tokens'].max())})",
            ratio,
            ">=",
            10.0,
            paper_value=PAPER["ngram"],
        )
    )
    rob = dict(zip(obs["robustness"]["suspect"], obs["robustness"]["log10_t_p"], strict=True))
    heavy = f"finetune-{max(rc.tiny.finetune_fractions):g}"
    if heavy in rob:
        out.claim(
            Claim.check(
                "finetune_weakens_reshuffle",
                f"heavy fine-tuning ({heavy} of Alice's volume) weakens the reshuffle signal "
                f"(log10 t-p {heavy} - alice)",
                rob[heavy] - rob["alice"],
                ">=",
                1.0,
                paper_value=PAPER["finetune"],
            )
        )
    if "distilled" in q:
        out.claim(
            Claim.check(
                "distillation_weakens_query",
                "distillation weakens the query signal (log10 p distilled - alice)",
                q["distilled"] - q["alice"],
                ">=",
                3.0,
                paper_value=PAPER["distillation"],
            )
        )


def _compare(out: RunOutput, qt, abl, obs, ng) -> None:
    q = qt.set_index("suspect")
    derived = qt[qt["kind"] == "derived"]
    out.compare(
        "derived suspects with p <= 1e-8",
        f"{int((derived['log10_p'] <= -8).sum())} of {len(derived)}",
        PAPER["headline"],
        "tiny: 1 base + 6 derivatives",
    )
    out.compare(
        "Alice vs same-recipe reference (full transcript)",
        f"rho = {q.loc['alice', 'rho']:+.3f}, p = {q.loc['alice', 'p']} (n = {int(q.loc['alice', 'n'])})",
        PAPER["repo_example"],
    )
    nulls = qt[qt["kind"] == "null"]
    out.compare(
        "Figure 1: derived vs independent",
        f"{q.loc['alice', 'p']} vs {', '.join(_fmt(v) for v in nulls['log10_p'])}",
        PAPER["figure1"],
    )
    cols = [c for c in abl.columns if c.startswith("log10_p_n")]
    for _, row in abl.iterrows():
        ours = " / ".join(_fmt(row[c]) for c in cols)
        note = "n = " + " / ".join(c.removeprefix("log10_p_n") for c in cols) + " (paper: 1k / 4k / 10k)"
        out.compare(
            f"reference ablation: {row['reference']}",
            ours,
            PAPER["reference_ablation"].get(row["reference"], "-"),
            note,
        )
    tok = obs["tokens"]
    out.compare(
        "reshuffle p vs tokens (median t-corrected / Gaussian approx.)",
        "; ".join(
            f"{int(r.n_tokens)}: {_fmt(r.log10_t_p)} / {_fmt(r.log10_normal_p)}" for r in tok.itertuples()
        ),
        PAPER["reshuffle_tokens"],
    )
    rob = obs["robustness"]
    out.compare(
        "fine-tuning robustness (t-corrected reshuffle p)",
        "; ".join(f"{r.suspect}: {_fmt(r.log10_t_p)}" for r in rob.itertuples()),
        PAPER["finetune"],
    )
    if "distilled" in q.index:
        out.compare(
            "distilled student, query log10 p", f"{q.loc['distilled', 'log10_p']:.1f}", PAPER["distillation"]
        )
    out.compare(
        "n-gram p vs tokens (median permutation p)",
        "; ".join(f"{int(r.target_tokens)}: {r.perm_p:.3g}" for r in ng.itertuples()),
        PAPER["ngram"],
    )


# ------------------------------------------------------------------------------------- paper scale
@dataclass(frozen=True)
class PaperConfig:
    """The paper's real setup (needs the weights and the transcript locally or in the HF cache)."""

    transcript: str = "hij/sequence_samples"
    subset: str = "pythia_deduped_100k"
    transcript_tokenizer: str = "EleutherAI/pythia-6.9b-deduped"
    n: int = 100_000
    suspects: tuple[str, ...] = ()
    reference: str = "EleutherAI/pythia-6.9b"
    ablation_references: tuple[str, ...] = ()
    ablation_suspect: str = "EleutherAI/pythia-6.9b-deduped"
    ablation_n: tuple[int, ...] = (1000, 4000, 10000)
    nulls: tuple[str, ...] = ()
    batch_size: int = 32
    n_null_orders: int = 1000
    olmo_model: str = "allenai/OLMo-2-0425-1B"
    olmo_revisions: tuple[str, ...] = ()
    olmo_samples: int = 100
    olmo_tokens: int = 32

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PaperConfig:
        """From the `[paper]` TOML table."""
        return config_from_dict(cls, data, what="paper")


def run_paper(pc: PaperConfig, out: RunOutput, *, device: str = "auto", dtype: str = "auto") -> RunOutput:
    """Query table, reference ablation, null calibration and the OLMo-2 ingredient test on real models."""
    from transformers import AutoTokenizer

    from palimpsest.query import QueryConfig, example_losses
    from palimpsest.reshuffle import score_candidates as _score
    from palimpsest.sampling import sample_texts
    from palimpsest.transcript import Transcript
    from reprokit.models import load_causal_lm

    loaded = Transcript.load(pc.transcript, subset=pc.subset)
    transcript = dataclasses.replace(loaded, tokenizer=AutoTokenizer.from_pretrained(pc.transcript_tokenizer))
    transcript = transcript.sample(min(pc.n, len(transcript)), seed=0)
    qc = QueryConfig(batch_size=pc.batch_size, retokenize=True)
    losses: dict[str, np.ndarray] = {}

    def loss(name: str) -> np.ndarray:
        if name not in losses:
            model, tok = load_causal_lm(name, device=device, dtype=dtype)
            losses[name] = example_losses(model, tok, transcript, qc, show_progress=True)
        return losses[name]

    rows = []
    for kind, names in (("derived", pc.suspects), ("null", pc.nulls)):
        for name in names:
            res = query_test_from_losses(transcript.positions, loss(name), loss(pc.reference))
            rows.append(
                {
                    "suspect": name,
                    "kind": kind,
                    "n": res.n,
                    "reference": pc.reference,
                    "rho": res.statistic,
                    "log10_p": res.log10_pvalue,
                    "p": _fmt(res.log10_pvalue),
                    "log10_p_no_reference": res.without_reference().log10_pvalue,
                }
            )
    if rows:
        out.table(
            Table("table_query", adjust_suspects(pd.DataFrame(rows)), "Query test on the paper's models.")
        )
    abl = []
    for ref in ("none", *pc.ablation_references):
        row: dict[str, Any] = {"reference": ref}
        for n in pc.ablation_n:
            idx = np.sort(
                np.random.default_rng(n).choice(len(transcript), min(n, len(transcript)), replace=False)
            )
            r = None if ref == "none" else loss(ref)[idx]
            row[f"log10_p_n{n}"] = query_test_from_losses(
                transcript.positions[idx], loss(pc.ablation_suspect)[idx], r
            ).log10_pvalue
        abl.append(row)
    out.table(Table("table_reference_ablation", pd.DataFrame(abl), "Reference-model ablation."))
    rng = np.random.default_rng(0)
    a, r = loss(pc.ablation_suspect), loss(pc.reference)
    null_p = np.array(
        [query_test_from_losses(rng.permutation(a.size), a, r).pvalue for _ in range(pc.n_null_orders)]
    )
    calib = {"source": "random orders", "m": null_p.size, "fpr_0.05": float(np.mean(null_p <= 0.05))}
    calib["fpr_0.01"], calib["ks_pvalue"] = float(np.mean(null_p <= 0.01)), ks_uniform_test(null_p)[1]
    out.table(Table("table_null_calibration", pd.DataFrame([calib]), "Query p-values under random orders."))
    if len(pc.olmo_revisions) >= 3:
        models = [
            load_causal_lm(pc.olmo_model, revision=r, device=device, dtype=dtype) for r in pc.olmo_revisions
        ]
        tok = models[0][1]
        orows = []
        for i, (bob, _) in enumerate(models):
            s = sample_texts(bob, tok, pc.olmo_samples, max_new_tokens=pc.olmo_tokens, seed=i)
            others = [m for j, (m, _) in enumerate(models) if j != i]
            res = _score(bob, others, tok, s.sequences, prompts=s.prompt_lengths).test()
            orows.append({"bob": pc.olmo_revisions[i], **res.to_dict()})
        out.table(Table("table_olmo_ingredients", pd.DataFrame(orows), "OLMo-2 stage-2 ingredients (K = 2)."))
    out.compare("headline", "see table_query", PAPER["headline"])
    return out
