"""The tiny-scale tables and figures: one function each, ``(run, section) -> DataFrame | Figure``.

`TinyRun` is one seed's setup: the trained models (`palimpsest.tiny.TinySetup`) plus the work that
several tables share (the query table, the null p-values, Bob's samples, the reshuffle scores), each
computed once. Every random draw of the evaluation comes from `eval_seed`, so ``--seed`` changes the
world, the training orders and the evaluation together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from palimpsest.ngram import NGramIndex, ngram_test
from palimpsest.query import QueryResult, query_test_from_losses
from palimpsest.reshuffle import ReshuffleResult, ReshuffleScores, score_candidates
from palimpsest.suspects import adjust_suspects
from reprokit.progress import progress
from reprokit.results import new_figure
from reprokit.stats import binomial_ci, ks_uniform_test, log10_p_to_str

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from palimpsest.reproduce import TinySection
    from palimpsest.sampling import Samples
    from palimpsest.tiny import TinySetup

__all__ = [
    "TinyRun",
    "eval_seed",
    "figure1",
    "figure_null_qq",
    "figure_tokens",
    "fmt_log10_p",
    "null_calibration_table",
    "query_row",
    "table_finetune_robustness",
    "table_ngram_tokens",
    "table_null_calibration",
    "table_query",
    "table_reference_ablation",
    "table_reshuffle_fraction",
    "table_reshuffle_tokens",
]

_DRAWS_PER_SEED = 1_000_000


def eval_seed(seed: int, draw: int) -> int:
    """The RNG seed of evaluation draw `draw` of a run seeded with `seed`: ``seed * 10**6 + draw``.

    Seed 0 keeps the draws 0, 1, 2, ... of the committed tables; other seeds get disjoint draws.
    """
    if not 0 <= draw < _DRAWS_PER_SEED:
        raise ValueError(f"draw must lie in [0, {_DRAWS_PER_SEED}), got {draw}")
    return seed * _DRAWS_PER_SEED + draw


def fmt_log10_p(log10_p: float) -> str:
    """``5.5e-26`` from a log10 p (``nan`` when it is not finite)."""
    return log10_p_to_str(log10_p) if math.isfinite(log10_p) else "nan"


def query_row(name: str, kind: str, reference: str, res: QueryResult) -> dict[str, Any]:
    """One row of a query table (the same columns at both scales)."""
    return {
        "suspect": name,
        "kind": kind,
        "n": res.n,
        "reference": reference,
        "rho": res.statistic,
        "log10_p": res.log10_pvalue,
        "p": fmt_log10_p(res.log10_pvalue),
        "permutation_p": res.permutation_pvalue,
        "log10_p_no_reference": res.without_reference().log10_pvalue,
    }


def null_calibration_table(pvalues: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """False-positive rates (exact binomial 95% intervals) and the KS test of uniformity, per source."""
    rows = []
    for source, p in pvalues.items():
        row: dict[str, Any] = {"source": source, "m": p.size}
        for alpha in (0.05, 0.01):
            ci = binomial_ci(int((p <= alpha).sum()), p.size)
            row[f"fpr_{alpha:g}"] = ci.estimate
            row[f"fpr_{alpha:g}_ci"] = f"[{ci.low:.3f}, {ci.high:.3f}]"
        statistic, pvalue = ks_uniform_test(p) if p.size >= 2 else (float("nan"), float("nan"))
        row["ks_pvalue"] = pvalue
        row["ks_statistic"] = statistic
        rows.append(row)
    return pd.DataFrame(rows)


def _median_p(scores: ReshuffleScores, tokens: int, draws: int, seed: int) -> dict[str, float]:
    res = [scores.test(scores.subsample(tokens, seed=eval_seed(seed, d))) for d in range(draws)]
    return {
        "n_tokens": float(np.median([r.n_tokens for r in res])),
        "rank_p": float(np.median([r.rank_pvalue for r in res])),
        "log10_t_p": float(np.median([r.log10_t_pvalue for r in res])),
        "log10_normal_p": float(np.median([r.log10_normal_pvalue for r in res])),
    }


def _grid(grid: tuple[int, ...], total: int) -> list[tuple[str, int]]:
    """(label, tokens) for each grid size below `total`, then ("all", total): labels match across seeds."""
    return [(str(t), t) for t in grid if t < total] + [("all", total)]


def _reshuffle_row(res: ReshuffleResult) -> dict[str, float]:
    return {
        "n_tokens": res.n_tokens,
        "rank_p": res.rank_pvalue,
        "log10_t_p": res.log10_t_pvalue,
        "log10_normal_p": res.log10_normal_pvalue,
    }


class TinyRun:
    """One seed's tiny-scale setup and the intermediate results several tables share (computed once)."""

    def __init__(self, section: TinySection, models: TinySetup) -> None:
        self.section = section
        self.models = models

    @property
    def seed(self) -> int:
        """The run's seed (world, training orders and evaluation)."""
        return self.models.seed

    # ------------------------------------------------------------------------------------- query
    def query(self, suspect: Any, reference: Any | None, index: np.ndarray, perms: int) -> QueryResult:
        """Query test of `suspect` on the transcript examples `index` (losses come from the disk cache)."""
        m = self.models
        s = m.losses(suspect)[index]
        r = None if reference is None else m.losses(reference)[index]
        return query_test_from_losses(
            m.transcript.positions[index], s, r, n_permutations=perms, seed=eval_seed(self.seed, 0)
        )

    @cached_property
    def query_table(self) -> pd.DataFrame:
        """One row per suspect (derived, then null and the other references); Holm over all rows."""
        m, sec = self.models, self.section
        ref = m.references[sec.reference]
        everything = np.arange(len(m.transcript))
        nulls = dict(m.nulls)
        for name, model in m.references.items():
            if name != sec.reference:
                nulls[f"ref-{name}"] = model
        rows = []
        for kind, group in (("derived", m.suspects), ("null", nulls)):
            for name, model in progress(group.items(), total=len(group), desc=f"query {kind}"):
                res = self.query(model, ref, everything, sec.n_permutations)
                rows.append(query_row(name, kind, sec.reference, res))
        return adjust_suspects(pd.DataFrame(rows), column="log10_p", method="holm")

    @cached_property
    def null_pvalues(self) -> dict[str, np.ndarray]:
        """Query p-values under H0: Alice against random orders, and the independently trained models."""
        m, sec = self.models, self.section
        a = m.losses(m.alice)
        r = m.losses(m.references[sec.reference])
        rng = np.random.default_rng(eval_seed(self.seed, 0))
        random_p = np.array(
            [query_test_from_losses(rng.permutation(a.size), a, r).pvalue for _ in range(sec.n_null_orders)]
        )
        table = self.query_table
        model_p = 10 ** table.loc[table["kind"] == "null", "log10_p"].to_numpy()
        return {"random orders, Alice vs reference": random_p, "independent models": model_p}

    # ------------------------------------------------------------------------------ observational
    @cached_property
    def alice_text(self) -> Samples:
        """Alice's own samples, as many as the larger of the two observational experiments needs."""
        sec = self.section
        n = max(sec.n_samples, sec.ngram_samples)
        return self.models.samples(
            self.models.alice, n, new_tokens=sec.sample_tokens, seed=eval_seed(self.seed, 1)
        )

    @cached_property
    def bob(self) -> Samples:
        """Bob's text for the reshuffle test: the first `n_samples` of Alice's samples."""
        return self.alice_text[: self.section.n_samples]

    @cached_property
    def ngram_text(self) -> Samples:
        """Bob's text for the n-gram test: the first `ngram_samples` of Alice's samples."""
        return self.alice_text[: self.section.ngram_samples]

    def candidate_scores(self, fraction: float, k: int, samples: Samples) -> ReshuffleScores:
        """Scores of `samples` under Alice's last `fraction` retrained in her order and `k` times shuffled."""
        m = self.models
        original, copies = m.retrain(fraction, k)
        return score_candidates(
            m.load(original),
            [m.load(c) for c in copies],
            samples.sequences,
            prompts=samples.prompt_lengths,
        )

    @cached_property
    def main_scores(self) -> ReshuffleScores:
        """Bob's text under the main retrain fraction with K = `section.k` reshuffled copies."""
        return self.candidate_scores(self.section.main_fraction, self.section.k, self.bob)

    @cached_property
    def tokens_table(self) -> pd.DataFrame:
        """`table_reshuffle_tokens` (also drawn in `figure_tokens`)."""
        return _reshuffle_tokens(self, self.section)

    @cached_property
    def ngram_table(self) -> pd.DataFrame:
        """`table_ngram_tokens` (also drawn in `figure_tokens`)."""
        return _ngram_tokens(self, self.section)

    def retrained_examples(self, fraction: float) -> int:
        """How many of Alice's documents the retrain of her last `fraction` covers."""
        m = self.models
        return len(m.alice.order) - m.checkpoint_step(fraction) * m.config.batch_size


# ------------------------------------------------------------------------------------------ tables
def table_query(run: TinyRun, section: TinySection) -> pd.DataFrame:
    """Query test: one row per suspect (derived and null), log10 p with and without the reference, Holm."""
    return run.query_table


def table_reference_ablation(run: TinyRun, section: TinySection) -> pd.DataFrame:
    """log10 p of Alice at several n for references of different quality (one uniform draw per n)."""
    m = run.models
    n_all = len(m.transcript)
    ns = [n for n in section.query_n if n < n_all] + [n_all]
    refs: dict[str, Any] = {"none": None, **m.references}
    rows = []
    for name, ref in refs.items():
        row: dict[str, Any] = {"reference": name}
        for n in ns:
            idx = np.sort(np.random.default_rng(eval_seed(run.seed, n)).choice(n_all, n, replace=False))
            row[f"log10_p_n{n}"] = run.query(m.alice, ref, idx, 0).log10_pvalue
        rows.append(row)
    return pd.DataFrame(rows)


def table_null_calibration(run: TinyRun, section: TinySection) -> pd.DataFrame:
    """False-positive rates under H0 (random orders; independent models) and the KS test of uniformity."""
    return null_calibration_table(run.null_pvalues)


def table_reshuffle_tokens(run: TinyRun, section: TinySection) -> pd.DataFrame:
    """Reshuffle test on Alice's samples: median p (over draws) against suspect-text tokens."""
    return run.tokens_table


def _reshuffle_tokens(run: TinyRun, section: TinySection) -> pd.DataFrame:
    bob, main = run.bob, run.main_scores
    rows = [
        {"target": label, "target_tokens": t, **_median_p(main, t, section.n_draws, run.seed)}
        for label, t in _grid(section.token_grid, bob.n_tokens)
    ]
    tokens = pd.DataFrame(rows)
    tokens.insert(0, "k", section.k)
    tokens.insert(0, "retrained_examples", run.retrained_examples(section.main_fraction))
    tokens.insert(0, "retrain_fraction", section.main_fraction)
    return tokens


def table_reshuffle_fraction(run: TinyRun, section: TinySection) -> pd.DataFrame:
    """Reshuffle test against the retrained fraction of Alice's run (K = `k_sweep`)."""
    bob = run.bob
    fractions = run.models.config.retrain_fractions
    rows = []
    for f in progress(fractions, total=len(fractions), desc="retrain fractions"):
        if f == section.main_fraction:
            sc = ReshuffleScores(run.main_scores.scores[: section.k_sweep + 1], run.main_scores.n_tokens)
        else:
            sc = run.candidate_scores(f, section.k_sweep, bob)
        for label, t in (("1000", min(1000, bob.n_tokens)), ("all", bob.n_tokens)):
            rows.append(
                {
                    "retrain_fraction": f,
                    "retrained_examples": run.retrained_examples(f),
                    "k": section.k_sweep,
                    "target": label,
                    "target_tokens": t,
                    **_median_p(sc, t, section.n_draws, run.seed),
                }
            )
    return pd.DataFrame(rows)


def table_finetune_robustness(run: TinyRun, section: TinySection) -> pd.DataFrame:
    """Reshuffle p (K = `k_sweep`) with Bob = each derived or null model's samples, beside its query p;
    fine-tunes carry their lr and tokens as fractions of Alice's."""
    m = run.models
    plan = m.finetune_plan
    qt = run.query_table
    qlog = dict(zip(qt["suspect"], qt["log10_p"], strict=True))
    robust_models = {**{k: v for k, v in m.suspects.items() if k != "alice"}, **m.nulls}
    rows = []
    for name, model in progress(robust_models.items(), total=len(robust_models), desc="robustness"):
        s = m.samples(
            model, section.n_robustness_samples, new_tokens=section.sample_tokens, seed=eval_seed(run.seed, 2)
        )
        res = run.candidate_scores(section.main_fraction, section.k_sweep, s).test()
        lr_fraction, token_fraction = plan.get(name, (math.nan, math.nan))
        rows.append(
            {
                "suspect": name,
                "kind": "null" if name in m.nulls else "derived",
                "lr_fraction": lr_fraction,
                "token_fraction": token_fraction,
                **_reshuffle_row(res),
                "query_log10_p": qlog.get(name, float("nan")),
            }
        )
    # Alice with the same K as the others, on as many tokens as the first of them.
    alice_scores = ReshuffleScores(run.main_scores.scores[: section.k_sweep + 1], run.main_scores.n_tokens)
    alice_tokens = rows[0]["n_tokens"] if rows else 3000
    alice = alice_scores.test(alice_scores.subsample(alice_tokens, seed=eval_seed(run.seed, 0)))
    rows.insert(
        0,
        {
            "suspect": "alice",
            "kind": "derived",
            "lr_fraction": 0.0,
            "token_fraction": 0.0,
            **_reshuffle_row(alice),
            "query_log10_p": qlog.get("alice", float("nan")),
        },
    )
    return pd.DataFrame(rows)


def table_ngram_tokens(run: TinyRun, section: TinySection) -> pd.DataFrame:
    """n-gram test: median permutation p against suspect-text tokens (Alice's samples, step-tagged docs)."""
    return run.ngram_table


def _ngram_tokens(run: TinyRun, section: TinySection) -> pd.DataFrame:
    """Both statistics on the same draws: the paper's (every occurrence of every matched span counts) and
    the official code's single-match variant (only spans found in exactly one document count)."""
    t = run.models.transcript
    index = NGramIndex(t.token_ids, t.step_of_example, max_n=section.ngram_max_n)  # type: ignore[arg-type]
    texts = [list(c) for c in run.ngram_text.completion_ids]
    n_tok = np.array([len(x) for x in texts])
    grid = _grid(section.ngram_token_grid, int(n_tok.sum()))
    rows = []
    for label, g in progress(grid, total=len(grid), desc="n-gram"):
        found: dict[str, list[float]] = {"rho": [], "perm_p": [], "rho_single": [], "perm_p_single": []}
        for d in range(section.n_draws):
            perm = np.random.default_rng(eval_seed(run.seed, d)).permutation(len(texts))
            take = [texts[i] for i in perm[: max(1, int(np.searchsorted(np.cumsum(n_tok[perm]), g)) + 1)]]
            for suffix, max_occurrences in (("", None), ("_single", 1)):
                res = ngram_test(
                    index,
                    take,
                    n_permutations=section.ngram_permutations,
                    max_occurrences=max_occurrences,
                    seed=eval_seed(run.seed, d),
                )
                found[f"rho{suffix}"].append(res.statistic)
                found[f"perm_p{suffix}"].append(res.pvalue)
        rows.append(
            {
                "target": label,
                "target_tokens": g,
                **{k: float(np.median(v)) for k, v in found.items()},
                "min_possible_p": 1 / (section.ngram_permutations + 1),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- figures
def figure_null_qq(run: TinyRun, section: TinySection) -> Figure:
    """QQ plot of the null p-values against U(0, 1)."""
    pvalues = dict(zip(("random orders", "independent models"), run.null_pvalues.values(), strict=True))
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


def figure1(run: TinyRun, section: TinySection) -> Figure:
    """Normalised loss difference against training order, for Alice and the first independent model."""
    m = run.models
    derived = "alice"
    null = next(iter(m.nulls))
    ref = m.losses(m.references[section.reference])
    pos = m.transcript.positions
    fig, axes = new_figure(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, name, model in ((axes[0], derived, m.suspects[derived]), (axes[1], null, m.nulls[null])):
        d = m.losses(model) - ref
        z = (d - d.mean()) / d.std()
        res = query_test_from_losses(pos, m.losses(model), ref)
        ax.scatter(pos, -z, s=3, alpha=0.3)
        slope, icpt = np.polyfit(pos, -z, 1)
        ax.plot(pos, slope * pos + icpt, "r-", lw=1.5)
        ax.set_title(f"{name}: rho={res.statistic:+.3f}, p={fmt_log10_p(res.log10_pvalue)}", fontsize=9)
        ax.set_xlabel("training position in Alice's order")
    axes[0].set_ylabel("normalised log-likelihood (vs reference)")
    return fig


def figure_tokens(run: TinyRun, section: TinySection) -> Figure:
    """Median p against suspect-text tokens: reshuffle (three p-values) beside the n-gram test."""
    reshuffle, ngram = run.tokens_table, run.ngram_table
    fig, ax = new_figure(figsize=(6, 4))
    ax.plot(reshuffle["n_tokens"], reshuffle["log10_t_p"], "o-", label="reshuffle, t-corrected p")
    ax.plot(
        reshuffle["n_tokens"], reshuffle["log10_normal_p"], "s--", label="reshuffle, Gaussian approx. (paper)"
    )
    ax.plot(
        reshuffle["n_tokens"],
        np.log10(reshuffle["rank_p"]),
        "^:",
        label=f"reshuffle, exact rank p (K={section.k})",
    )
    ax.plot(ngram["target_tokens"], np.log10(ngram["perm_p"]), "d-", label="n-gram, all matches (paper)")
    ax.plot(
        ngram["target_tokens"],
        np.log10(ngram["perm_p_single"]),
        "v-",
        label="n-gram, single-document matches",
    )
    ax.axhline(-2, color="grey", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("suspect-text tokens")
    ax.set_ylabel("median log10 p")
    ax.legend(fontsize=7)
    return fig
