"""The paper-scale tables: the paper's transcript and models (needs the weights locally or in the HF cache).

`PaperRun` is the setup of a paper-scale run: the transcript (sampled with the run's seed) and every
model's per-example losses, each computed once and shared by the tables. The table functions have the
same ``(run, section)`` shape as the tiny ones in `palimpsest.experiments`.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from palimpsest.experiments import eval_seed, null_calibration_table, query_row
from palimpsest.query import example_losses, query_test_from_losses
from palimpsest.suspects import adjust_suspects

if TYPE_CHECKING:
    from palimpsest.reproduce import PaperSection
    from palimpsest.transcript import Transcript
    from reprokit.reproduce import Requirement, RunContext

__all__ = [
    "PaperRun",
    "paper_requirements",
    "paper_table_null_calibration",
    "paper_table_olmo_ingredients",
    "paper_table_query",
    "paper_table_reference_ablation",
]


def paper_requirements(section: PaperSection) -> list[Requirement]:
    """Every data set and model the paper-scale config names, for the preflight."""
    from reprokit.reproduce import Requirement

    reqs = [
        Requirement("dataset", section.transcript, why="transcript"),
        Requirement("model", section.transcript_tokenizer, why="transcript tokenizer"),
        *(Requirement("model", s, why="suspect") for s in section.suspects),
        Requirement("model", section.reference, why="reference"),
        *(Requirement("model", s, why="null model") for s in section.nulls),
        Requirement("model", section.ablation_suspect, why="ablation suspect"),
        *(Requirement("model", r, why="ablation reference") for r in section.ablation_references),
    ]
    reqs += [
        Requirement("model", section.olmo_model, revision=r, why="OLMo-2 stage-2 ingredient")
        for r in section.olmo_revisions
    ]
    return reqs


class PaperRun:
    """The paper-scale setup: the transcript and each model's losses on it (computed once, on demand)."""

    def __init__(self, section: PaperSection, ctx: RunContext) -> None:
        self.section = section
        self.seed = ctx.seed
        self.device = ctx.device
        self.dtype = ctx.dtype
        self.scores_dir = ctx.cache_dir / "runs" / "palimpsest" / "scores"  # chunked, resumable, sharded
        self._losses: dict[str, np.ndarray] = {}

    @cached_property
    def transcript(self) -> Transcript:
        """`query.n` examples of the transcript, sampled uniformly with the run's seed."""
        from palimpsest.transcript import Transcript
        from reprokit.lm import load_tokenizer

        sec = self.section
        loaded = Transcript.load(sec.transcript, subset=sec.subset)
        tokenizer = load_tokenizer(sec.transcript_tokenizer)
        transcript = dataclasses.replace(loaded, tokenizer=tokenizer)
        n = len(transcript) if sec.query.n is None else min(sec.query.n, len(transcript))
        return transcript.sample(n, seed=eval_seed(self.seed, 0))

    def loss(self, name: str) -> np.ndarray:
        """Per-example losses of model `name` on the transcript (loaded, scored and released once)."""
        if name not in self._losses:
            from reprokit.lm import load_lm

            lm = load_lm(name, device=self.device, dtype=self.dtype)
            from palimpsest.scoring import Sharding

            # under `accelerate launch` each process scores its shard; a rerun skips finished chunks
            sharding = Sharding(work_dir=self.scores_dir)
            self._losses[name] = example_losses(
                lm, self.transcript, self.section.query, show_progress=True, sharding=sharding, desc=name
            )
        return self._losses[name]


def paper_table_query(run: PaperRun, section: PaperSection) -> pd.DataFrame:
    """Query test of every suspect and null model against the reference; Holm over all rows."""
    rows = []
    for kind, names in (("derived", section.suspects), ("null", section.nulls)):
        for name in names:
            res = query_test_from_losses(
                run.transcript.positions,
                run.loss(name),
                run.loss(section.reference),
                n_permutations=section.query.n_permutations,
                seed=eval_seed(run.seed, 0),
            )
            rows.append(query_row(name, kind, section.reference, res))
    return adjust_suspects(pd.DataFrame(rows), column="log10_p", method="holm")


def paper_table_reference_ablation(run: PaperRun, section: PaperSection) -> pd.DataFrame:
    """log10 p of the ablation suspect for each reference model at several n (one uniform draw per n)."""
    n_all = len(run.transcript)
    rows = []
    for ref in ("none", *section.ablation_references):
        row: dict[str, Any] = {"reference": ref}
        for n in section.ablation_n:
            rng = np.random.default_rng(eval_seed(run.seed, n))
            idx = np.sort(rng.choice(n_all, min(n, n_all), replace=False))
            r = None if ref == "none" else run.loss(ref)[idx]
            row[f"log10_p_n{n}"] = query_test_from_losses(
                run.transcript.positions[idx], run.loss(section.ablation_suspect)[idx], r
            ).log10_pvalue
        rows.append(row)
    return pd.DataFrame(rows)


def paper_table_null_calibration(run: PaperRun, section: PaperSection) -> pd.DataFrame:
    """Query p-values under H0: the ablation suspect against random orders, and the null models."""
    rng = np.random.default_rng(eval_seed(run.seed, 0))
    a, r = run.loss(section.ablation_suspect), run.loss(section.reference)
    random_p = np.array(
        [query_test_from_losses(rng.permutation(a.size), a, r).pvalue for _ in range(section.n_null_orders)]
    )
    pvalues = {"random orders, suspect vs reference": random_p}
    if section.nulls:
        positions, ref = run.transcript.positions, run.loss(section.reference)
        pvalues["independent models"] = np.array(
            [query_test_from_losses(positions, run.loss(n), ref).pvalue for n in section.nulls]
        )
    return null_calibration_table(pvalues)


def paper_table_olmo_ingredients(run: PaperRun, section: PaperSection) -> pd.DataFrame:
    """Reshuffle test between OLMo-2 stage-2 ingredients: each one's samples against the others (K = n - 1).

    Empty when the config names no revisions.
    """
    from palimpsest.reshuffle import score_candidates
    from palimpsest.sampling import sample_texts
    from reprokit.lm import load_lm

    revisions = section.olmo_revisions
    if not revisions:
        return pd.DataFrame(columns=["bob"])
    lms = [load_lm(section.olmo_model, revision=r, device=run.device, dtype=run.dtype) for r in revisions]
    rows = []
    for i, bob in enumerate(lms):
        s = sample_texts(
            bob, section.olmo_samples, max_new_tokens=section.olmo_tokens, seed=eval_seed(run.seed, i)
        )
        others = [lm for j, lm in enumerate(lms) if j != i]
        res = score_candidates(bob, others, s.sequences, prompts=s.prompt_lengths).test()
        rows.append({"bob": revisions[i], **res.to_dict()})
    return pd.DataFrame(rows)
