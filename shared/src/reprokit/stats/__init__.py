"""Statistics that scipy / statsmodels don't give in one call, with one family of result types.

Rank-correlation tests that report ``log10 p`` without underflow (also stage-wise, combined by Stouffer),
exact Monte Carlo permutation p-values ``(b + 1) / (m + 1)`` (optionally permuting only within blocks),
confidence intervals (bootstrap, paired bootstrap, exact binomial, across seeds), and thin validated
wrappers for p-value combination and multiple-testing correction (also in log10 space).

Every result (`CorrelationTest`, `PermutationResult`, `ConfidenceInterval`) is a frozen dataclass
deriving from `StatResult`, so ``result.to_dict()`` gives its scalar fields the same way for all.
"""

from reprokit.stats._base import Alternative, StatResult
from reprokit.stats.correlation import (
    CorrelationTest,
    blocked_spearman_test,
    correlation_test,
    kendall_test,
    spearman_test,
    t_logsf,
)
from reprokit.stats.intervals import (
    ConfidenceInterval,
    binomial_ci,
    bootstrap_ci,
    mean_difference,
    paired_bootstrap_ci,
    seed_interval,
)
from reprokit.stats.permutation import (
    PermutationResult,
    blocked_spearman_permutation_test,
    permutation_pvalue,
    permutation_test,
    spearman_permutation_test,
    within_block_ranks,
)
from reprokit.stats.pvalues import (
    LogAdjustMethod,
    adjust_log10_pvalues,
    adjust_pvalues,
    combine_pvalues,
    ks_uniform_test,
    log10_p_to_str,
)

__all__ = [
    "Alternative",
    "ConfidenceInterval",
    "CorrelationTest",
    "LogAdjustMethod",
    "PermutationResult",
    "StatResult",
    "adjust_log10_pvalues",
    "adjust_pvalues",
    "binomial_ci",
    "blocked_spearman_permutation_test",
    "blocked_spearman_test",
    "bootstrap_ci",
    "combine_pvalues",
    "correlation_test",
    "kendall_test",
    "ks_uniform_test",
    "log10_p_to_str",
    "mean_difference",
    "paired_bootstrap_ci",
    "permutation_pvalue",
    "permutation_test",
    "seed_interval",
    "spearman_permutation_test",
    "spearman_test",
    "t_logsf",
    "within_block_ranks",
]
