"""The query test: does a suspect model's loss fall with Alice's training position?

Statistic (the paper's Equation 2): Spearman's rho between each example's training position and the
suspect's per-example loss minus a reference model's loss (or the raw loss without a reference),
tested one-sided in the pre-registered direction (later -> relatively lower loss, rho < 0). The
p-value is the t approximation in log space (no underflow) and, optionally, an exact permutation
p-value (b + 1) / (m + 1); with stage blocks, ranks are correlated within each block and combined,
and permutations stay inside blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from palimpsest.transcript import Transcript, TranscriptError
from reprokit.errors import ConfigError, DataError
from reprokit.lm import LanguageModel, require_lm
from reprokit.scoring import score_token_ids
from reprokit.stats import (
    StatResult,
    blocked_spearman_permutation_test,
    blocked_spearman_test,
    spearman_permutation_test,
    spearman_test,
)

logger = logging.getLogger(__name__)

__all__ = ["QueryConfig", "QueryResult", "example_losses", "query_test", "query_test_from_losses"]

# Per-example arrays: not compared, not printed, left out of `to_dict()`.
_ARRAY: dict[str, Any] = {"repr": False, "compare": False, "metadata": {"array": True}}


@dataclass(frozen=True)
class QueryConfig:
    """Settings of the query test.

    n: examples sampled uniformly from the transcript (None: all). prefix_tokens: score only the
    continuation after this many tokens (0: full-sequence mean NLL). metric: per-example mean or summed
    NLL. n_permutations: also compute an exact permutation p-value with this many permutations (0: off).
    retokenize: decode and re-encode the transcript when a model's tokenizer differs from its own.
    """

    n: int | None = None
    prefix_tokens: int = 0
    max_tokens: int | None = None
    metric: Literal["mean_nll", "sum_nll"] = "mean_nll"
    n_permutations: int = 0
    batch_size: int = 32
    prepend_bos: bool = True
    retokenize: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n is not None and self.n < 3:
            raise ConfigError(f"QueryConfig.n must be >= 3 (or None for all examples), got {self.n}.")
        if self.prefix_tokens < 0:
            raise ConfigError(f"QueryConfig.prefix_tokens must be >= 0, got {self.prefix_tokens}.")
        if self.metric not in ("mean_nll", "sum_nll"):
            raise ConfigError(f"QueryConfig.metric must be 'mean_nll' or 'sum_nll', got {self.metric!r}.")
        if self.n_permutations < 0:
            raise ConfigError(f"QueryConfig.n_permutations must be >= 0, got {self.n_permutations}.")
        if self.batch_size < 1:
            raise ConfigError(f"QueryConfig.batch_size must be >= 1, got {self.batch_size}.")


@dataclass(frozen=True)
class QueryResult(StatResult):
    """Outcome of one query test; `log10_pvalue` is finite even where `pvalue` underflows to 0.

    `to_dict()` (from `reprokit.stats.StatResult`) gives the scalar fields; the per-example arrays stay out.
    """

    statistic: float
    pvalue: float
    log10_pvalue: float
    n: int
    method: str
    alternative: str
    permutation_pvalue: float | None = None
    n_permutations: int = 0
    reference: str | None = None
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0), **_ARRAY)
    suspect_losses: np.ndarray = field(default_factory=lambda: np.zeros(0), **_ARRAY)
    reference_losses: np.ndarray | None = field(default=None, **_ARRAY)
    blocks: np.ndarray | None = field(default=None, **_ARRAY)

    def without_reference(self) -> QueryResult:
        """The same test on the raw suspect losses (no reference subtracted)."""
        return query_test_from_losses(
            self.positions, self.suspect_losses, None, blocks=self.blocks, n_permutations=self.n_permutations
        )


def _check_losses(name: str, values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise DataError(f"{name} must have one value per example ({n}), got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise DataError(
            f"{name} has {bad} non-finite values; drop those examples (e.g. empty continuations)."
        )
    return arr


def query_test_from_losses(
    positions: Sequence[float] | np.ndarray,
    suspect_losses: Sequence[float] | np.ndarray,
    reference_losses: Sequence[float] | np.ndarray | None = None,
    *,
    blocks: Sequence[Any] | np.ndarray | None = None,
    n_permutations: int = 0,
    seed: int = 0,
    reference: str | None = None,
) -> QueryResult:
    """Query test on precomputed per-example losses (e.g. the paper's released `loss_*` columns).

    H1: rho(position, suspect - reference loss) < 0. Without blocks the p-value is Spearman's t
    approximation; with blocks it is a Stouffer combination of within-block tests. `n_permutations > 0`
    adds the exact Monte Carlo permutation p-value (within blocks when given).
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 1 or pos.size < 3:
        raise DataError(f"need at least 3 examples with positions, got shape {pos.shape}.")
    n = pos.size
    suspect = _check_losses("suspect_losses", suspect_losses, n)
    ref = None if reference_losses is None else _check_losses("reference_losses", reference_losses, n)
    d = suspect if ref is None else suspect - ref
    if np.all(d == d[0]):
        raise DataError(
            "the loss differences are all equal; the suspect and reference give identical losses."
        )
    perm_p = None
    if blocks is None:
        res = spearman_test(pos, d, alternative="less")
        stat, log10_p, method = res.statistic, res.log10_pvalue, "spearman"
        if n_permutations:
            perm_p = spearman_permutation_test(
                pos, d, n_resamples=n_permutations, alternative="less", rng=seed
            ).pvalue
    else:
        blk = np.asarray(blocks)
        if blk.shape != (n,):
            raise DataError(f"blocks must have one label per example ({n}), got shape {blk.shape}.")
        res = blocked_spearman_test(pos, d, blk, alternative="less")
        stat, log10_p, method = res.statistic, res.log10_pvalue, res.method
        if n_permutations:
            perm_p = blocked_spearman_permutation_test(
                pos, d, blk, n_resamples=n_permutations, alternative="less", rng=seed
            ).pvalue
    log10_p = min(0.0, float(log10_p))
    return QueryResult(
        statistic=float(stat),
        pvalue=float(10.0**log10_p),
        log10_pvalue=log10_p,
        n=n,
        method=method,
        alternative="less",
        permutation_pvalue=perm_p,
        n_permutations=n_permutations,
        reference=reference,
        positions=pos,
        suspect_losses=suspect,
        reference_losses=ref,
        blocks=None if blocks is None else np.asarray(blocks),
    )


def example_losses(
    lm: LanguageModel,
    transcript: Transcript,
    config: QueryConfig = QueryConfig(),
    *,
    show_progress: bool = False,
) -> np.ndarray:
    """Per-example loss of `lm` on the transcript: mean (or summed) NLL, after `prefix_tokens` tokens."""
    lm = require_lm(lm, "example_losses: lm")
    seqs = transcript.sequences_for(lm.tokenizer, retokenize=config.retokenize)
    bos = lm.tokenizer.bos_token_id
    prefix = config.prefix_tokens
    if config.prepend_bos and bos is not None:
        seqs = [s if s and s[0] == bos else [bos, *s] for s in seqs]
        prefix = prefix + 1 if prefix else 0
    if config.max_tokens is not None:
        seqs = [s[: config.max_tokens + (1 if config.prepend_bos and bos is not None else 0)] for s in seqs]
    too_short = [i for i, s in enumerate(seqs) if len(s) <= max(prefix, 1)]
    if too_short:
        raise TranscriptError(
            f"{len(too_short)} examples (e.g. #{too_short[0]}) have no tokens after the "
            f"{config.prefix_tokens}-token "
            "prefix; lower QueryConfig.prefix_tokens or drop short examples."
        )
    scores = score_token_ids(
        lm,
        seqs,
        prompt_lengths=[prefix] * len(seqs),
        batch_size=config.batch_size,
        show_progress=show_progress,
    )
    return scores.mean_nll if config.metric == "mean_nll" else -scores.sum_logprob


def query_test(
    transcript: Transcript,
    suspect: LanguageModel,
    reference: LanguageModel | None = None,
    config: QueryConfig = QueryConfig(),
    *,
    reference_name: str | None = None,
    show_progress: bool = False,
) -> QueryResult:
    """Score n sampled transcript examples under the suspect (and reference) and run the query test.

    `suspect` and `reference` are `reprokit.lm.LanguageModel`s, e.g. from `reprokit.lm.load_lm(path)`.
    """
    suspect = require_lm(suspect, "suspect")
    reference = None if reference is None else require_lm(reference, "reference")
    sample = transcript.sample(config.n, seed=config.seed)
    s_loss = example_losses(suspect, sample, config, show_progress=show_progress)
    r_loss = (
        None if reference is None else example_losses(reference, sample, config, show_progress=show_progress)
    )
    if reference is not None and reference_name is None:
        reference_name = reference.name or "reference"
    result = query_test_from_losses(
        sample.positions,
        s_loss,
        r_loss,
        blocks=sample.blocks,
        n_permutations=config.n_permutations,
        seed=config.seed,
        reference=reference_name,
    )
    logger.info("query test: rho=%.4f log10 p=%.2f (n=%d)", result.statistic, result.log10_pvalue, result.n)
    return result
