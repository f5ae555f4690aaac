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
from pathlib import Path
from typing import Any, Literal

import numpy as np

from palimpsest.scoring import Sharding, score_examples
from palimpsest.transcript import Transcript, TranscriptError
from reprokit.errors import ConfigError, DataError
from reprokit.lm import LanguageModel, require_lm
from reprokit.stats import (
    StatResult,
    blocked_spearman_permutation_test,
    blocked_spearman_test,
    spearman_permutation_test,
    spearman_test,
)

logger = logging.getLogger(__name__)

__all__ = [
    "QueryConfig",
    "QueryResult",
    "QueryTrend",
    "example_losses",
    "loss_differences",
    "plot_query",
    "query_figure",
    "query_test",
    "query_test_from_losses",
    "query_trend",
]

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
    sharding: Sharding | None = None,
    desc: str = "scoring",
) -> np.ndarray:
    """Per-example loss of `lm` on the transcript: mean (or summed) NLL, after `prefix_tokens` tokens.

    Scored in chunks by `palimpsest.scoring.score_examples`: with a `sharding` work folder the chunks
    are saved (an interrupted run resumes) and split over the processes of an `accelerate launch`.
    """
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
    scores = score_examples(
        lm,
        seqs,
        [prefix] * len(seqs),
        sharding=Sharding() if sharding is None else sharding,
        batch_size=config.batch_size,
        show_progress=show_progress,
        desc=desc,
    )
    return scores.mean_nll if config.metric == "mean_nll" else scores.sum_nll


def query_test(
    transcript: Transcript,
    suspect: LanguageModel,
    reference: LanguageModel | None = None,
    config: QueryConfig = QueryConfig(),
    *,
    reference_name: str | None = None,
    show_progress: bool = False,
    sharding: Sharding | None = None,
) -> QueryResult:
    """Score n sampled transcript examples under the suspect (and reference) and run the query test.

    `suspect` and `reference` are `reprokit.lm.LanguageModel`s, e.g. from `reprokit.lm.load_lm(path)`.
    `sharding` splits the scoring over `accelerate launch` processes and saves it in resumable chunks.
    """
    suspect = require_lm(suspect, "suspect")
    reference = None if reference is None else require_lm(reference, "reference")
    sample = transcript.sample(config.n, seed=config.seed)
    kwargs: dict[str, Any] = {"show_progress": show_progress, "sharding": sharding}
    s_loss = example_losses(suspect, sample, config, desc="suspect", **kwargs)
    r_loss = None
    if reference is not None:
        r_loss = example_losses(reference, sample, config, desc="reference", **kwargs)
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


# ------------------------------------------------------------------------------------------------ plot
@dataclass(frozen=True)
class QueryTrend:
    """Least-squares line of the loss difference against position (per block when the run has stages),
    and the mean difference in equal-count position bins: what the query plot draws."""

    lines: tuple[tuple[float, float, float, float], ...]  # (slope, intercept, x_min, x_max) per block
    bin_positions: np.ndarray = field(**_ARRAY)
    bin_means: np.ndarray = field(**_ARRAY)
    bin_errors: np.ndarray = field(**_ARRAY)


def loss_differences(result: QueryResult) -> np.ndarray:
    """What the statistic ranks: suspect minus reference loss per example (without one, the suspect's)."""
    if result.reference_losses is None:
        return result.suspect_losses
    return result.suspect_losses - result.reference_losses


def query_trend(result: QueryResult, *, bins: int = 20) -> QueryTrend:
    """The fitted trend of the loss difference over training position, and binned means with s.e."""
    pos, d = result.positions, loss_differences(result)
    if pos.size < 3:
        raise DataError(f"a trend needs at least 3 examples, got {pos.size}.")
    blocks = np.zeros(pos.size) if result.blocks is None else result.blocks
    lines = []
    for b in np.unique(blocks):
        x, y = pos[blocks == b], d[blocks == b]
        if x.size < 2 or np.all(x == x[0]):
            continue
        slope, intercept = np.polyfit(x, y, 1)
        lines.append((float(slope), float(intercept), float(x.min()), float(x.max())))
    order = np.argsort(pos, kind="stable")
    groups = np.array_split(order, min(bins, pos.size))
    counts = np.array([g.size for g in groups])
    bin_pos = np.array([pos[g].mean() for g in groups])
    bin_mean = np.array([d[g].mean() for g in groups])
    bin_err = np.array([d[g].std(ddof=1) / np.sqrt(g.size) if g.size > 1 else 0.0 for g in groups])
    keep = counts > 0
    return QueryTrend(tuple(lines), bin_pos[keep], bin_mean[keep], bin_err[keep])


def query_figure(result: QueryResult, *, bins: int = 20, title: str | None = None) -> Any:
    """The query plot: each example's loss difference against its training position, binned means, the
    fitted trend line, and the test statistic and p-value in the title. Returns a matplotlib Figure."""
    from reprokit.results import new_figure
    from reprokit.stats import log10_p_to_str

    pos, d = result.positions, loss_differences(result)
    trend = query_trend(result, bins=bins)
    fig, ax = new_figure(figsize=(7.5, 4.8), layout="constrained")
    alpha = float(np.clip(300.0 / pos.size, 0.06, 0.6))
    ax.scatter(pos, d, s=4, alpha=alpha, color="0.55", linewidths=0, rasterized=True, label="examples")
    ax.errorbar(
        trend.bin_positions,
        trend.bin_means,
        yerr=trend.bin_errors,
        fmt="o",
        ms=4,
        color="tab:blue",
        label=f"mean of {trend.bin_positions.size} position bins (± s.e.)",
    )
    for k, (slope, intercept, x0, x1) in enumerate(trend.lines):
        xs = np.array([x0, x1])
        label = f"least-squares trend ({slope * (x1 - x0):+.3g} from first to last)" if k == 0 else None
        ax.plot(xs, slope * xs + intercept, color="tab:red", lw=2, label=label)
    lo, hi = np.percentile(d, [1, 99])
    lo, hi = min(lo, trend.bin_means.min()), max(hi, trend.bin_means.max())
    pad = 0.1 * (hi - lo) if hi > lo else 1.0
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("training position of the example")
    ax.set_ylabel("suspect − reference loss" if result.reference_losses is not None else "suspect loss")
    ref = f" vs reference {result.reference}" if result.reference else ""
    stat = (
        f"Spearman ρ = {result.statistic:+.4f}, one-sided p = {log10_p_to_str(result.log10_pvalue)}, "
        f"n = {result.n}"
    )
    ax.set_title(f"{title or 'query test' + ref}\n{stat}", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_query(result: QueryResult, path: str | Path, *, bins: int = 20, title: str | None = None) -> Path:
    """Write `query_figure(result)` atomically to `path` (png unless the suffix says otherwise)."""
    from reprokit.results import save_figure

    return save_figure(query_figure(result, bins=bins, title=title), path)
