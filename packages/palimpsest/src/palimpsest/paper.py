"""The paper-scale tables: the paper's transcript and models (needs the weights locally or in the HF cache).

`PaperRun` is the setup of a paper-scale run: the transcript (sampled with the run's seed) and every
model's per-example losses, each computed once and shared by the tables. The table functions have the
same ``(run, section)`` shape as the tiny ones in `palimpsest.experiments`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from palimpsest.experiments import eval_seed, null_calibration_table, query_row
from palimpsest.query import example_losses, query_test_from_losses
from palimpsest.suspects import adjust_suspects

if TYPE_CHECKING:
    from palimpsest.reproduce import PaperSection, QueryFamily
    from palimpsest.transcript import Transcript
    from reprokit.reproduce import Requirement, RunContext

__all__ = [
    "PaperRun",
    "families",
    "olmo_prompts",
    "paper_requirements",
    "paper_table_null_calibration",
    "paper_table_olmo_ingredients",
    "paper_table_query",
    "paper_table_reference_ablation",
]


def families(section: PaperSection) -> list[QueryFamily]:
    """The query families of a paper-scale run: the main one (the section's top-level fields), then
    `section.families`."""
    from palimpsest.reproduce import QueryFamily

    main = QueryFamily(
        name=section.family,
        subset=section.subset,
        transcript_tokenizer=section.transcript_tokenizer,
        reference=section.reference,
        suspects=section.suspects,
        nulls=section.nulls,
        transcript=section.transcript,
    )
    return [main, *section.families]


def paper_requirements(section: PaperSection) -> list[Requirement]:
    """Every data set and model the paper-scale config names, for the preflight."""
    from reprokit.reproduce import Requirement

    reqs = []
    for fam in families(section):
        reqs += [
            Requirement("dataset", fam.transcript, why=f"{fam.name} transcript"),
            Requirement("model", fam.transcript_tokenizer, why=f"{fam.name} transcript tokenizer"),
            *(Requirement("model", s, why=f"{fam.name} suspect") for s in fam.suspects),
            Requirement("model", fam.reference, why=f"{fam.name} reference"),
            *(Requirement("model", s, why=f"{fam.name} null model") for s in fam.nulls),
        ]
    reqs += [
        Requirement("model", section.ablation_suspect, why="ablation suspect"),
        *(Requirement("model", r, why="ablation reference") for r in section.ablation_references),
    ]
    reqs += [
        Requirement("model", section.olmo_model, revision=r, why="OLMo-2 stage-2 ingredient")
        for r in section.olmo_revisions
    ]
    if section.olmo_revisions and section.olmo_prompt_dataset:
        reqs.append(Requirement("dataset", section.olmo_prompt_dataset, why="OLMo-2 ingredient prompts"))
    return reqs


class PaperRun:
    """The paper-scale setup: the transcript and each model's losses on it (computed once, on demand)."""

    def __init__(self, section: PaperSection, ctx: RunContext) -> None:
        self.section = section
        self.seed = ctx.seed
        self.device = ctx.device
        self.dtype = ctx.dtype
        self.scores_dir = ctx.cache_dir / "runs" / "palimpsest" / "scores"  # chunked, resumable, sharded
        self.families = {f.name: f for f in families(section)}
        self._transcripts: dict[str, Transcript] = {}
        self._losses: dict[tuple[str, str], np.ndarray] = {}

    @property
    def transcript(self) -> Transcript:
        """The main family's transcript (`transcript_of` the section's `family`)."""
        return self.transcript_of(self.section.family)

    def transcript_of(self, family: str) -> Transcript:
        """`query.n` examples of the family's transcript, sampled uniformly with the run's seed."""
        if family not in self._transcripts:
            from palimpsest.transcript import Transcript
            from reprokit.lm import load_tokenizer

            fam, sec = self.families[family], self.section
            loaded = Transcript.load(fam.transcript, subset=fam.subset)
            transcript = dataclasses.replace(loaded, tokenizer=load_tokenizer(fam.transcript_tokenizer))
            n = len(transcript) if sec.query.n is None else min(sec.query.n, len(transcript))
            self._transcripts[family] = transcript.sample(n, seed=eval_seed(self.seed, 0))
        return self._transcripts[family]

    def loss(self, name: str, family: str | None = None) -> np.ndarray:
        """Per-example losses of model `name` on a family's transcript (default: the main family's);
        each model is loaded, scored and released once per family."""
        family = self.section.family if family is None else family
        if (family, name) not in self._losses:
            from palimpsest.scoring import Sharding
            from reprokit.lm import load_lm

            lm = load_lm(name, device=self.device, dtype=self.dtype)
            # under `accelerate launch` each process scores its shard; a rerun skips finished chunks
            sharding = Sharding(work_dir=self.scores_dir)
            self._losses[(family, name)] = example_losses(
                lm,
                self.transcript_of(family),
                self.section.query,
                show_progress=True,
                sharding=sharding,
                desc=f"{name} on {family}",
            )
        return self._losses[(family, name)]


def paper_table_query(run: PaperRun, section: PaperSection) -> pd.DataFrame:
    """Query test of every family's suspects and null models against its reference, each on its own
    transcript; Holm over all rows of all families."""
    rows = []
    for fam in run.families.values():
        positions = run.transcript_of(fam.name).positions
        blocks = run.transcript_of(fam.name).blocks
        for kind, names in (("derived", fam.suspects), ("null", fam.nulls)):
            for name in names:
                res = query_test_from_losses(
                    positions,
                    run.loss(name, fam.name),
                    run.loss(fam.reference, fam.name),
                    blocks=blocks,
                    n_permutations=section.query.n_permutations,
                    seed=eval_seed(run.seed, 0),
                )
                rows.append({"family": fam.name, **query_row(name, kind, fam.reference, res)})
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
        prompts = olmo_prompts(section, bob.tokenizer, seed=eval_seed(run.seed, i))
        s = sample_texts(bob, prompts, max_new_tokens=section.olmo_tokens, seed=eval_seed(run.seed, i))
        others = [lm for j, lm in enumerate(lms) if j != i]
        res = score_candidates(bob, others, s.sequences, prompts=s.prompt_lengths).test()
        rows.append({"bob": revisions[i], **res.to_dict()})
    return pd.DataFrame(rows)


def olmo_prompts(section: PaperSection, tokenizer: Any, *, seed: int) -> list[list[int]] | int:
    """The ingredient test's prompts: the first `olmo_prompt_tokens` tokens of `olmo_samples` random
    stories of `olmo_prompt_dataset` (bos first where the tokenizer has one), as the official code
    prompts; with no dataset configured, `olmo_samples` bos-only prompts."""
    if not section.olmo_prompt_dataset:
        return section.olmo_samples
    import datasets

    from reprokit.errors import DataError

    data = datasets.load_dataset(section.olmo_prompt_dataset, split=section.olmo_prompt_split)
    if "text" not in data.column_names:
        raise DataError(
            f"olmo_prompt_dataset {section.olmo_prompt_dataset!r} has no 'text' column (columns: "
            f"{data.column_names}); name a data set of stories with a 'text' column."
        )
    rng = np.random.default_rng(seed)
    texts = [t for t in data["text"] if t and t.strip()]
    if len(texts) < section.olmo_samples:
        raise DataError(
            f"olmo_prompt_dataset {section.olmo_prompt_dataset!r} has {len(texts)} non-empty stories; "
            f"olmo_samples = {section.olmo_samples} needs as many. Lower olmo_samples."
        )
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    take = rng.choice(len(texts), section.olmo_samples, replace=False)
    ids = tokenizer([texts[i] for i in take], add_special_tokens=False)["input_ids"]
    return [[*bos, *x[: section.olmo_prompt_tokens]] for x in ids]
