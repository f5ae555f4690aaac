"""Palimpsest: exact provenance tests for language models.

Does a suspect model (query test) or a suspect text (reshuffle and n-gram tests) derive from one
particular training run? Under a uniformly random training order, every p-value here is exact or
explicitly labelled as an approximation. Reproduces Kuditipudi et al. (2025), arXiv 2510.19796.

The public names below are imported on first use (`reprokit.lazy`), so ``palimpsest --help`` does not
import torch.
"""
# ruff: noqa: F401  (the TYPE_CHECKING imports re-export the lazy names for type checkers)

from typing import TYPE_CHECKING

from reprokit.lazy import lazy_exports

__version__ = "0.1.0"

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "palimpsest.ngram": ("InfiniGramIndex", "NGramIndex", "NGramResult", "match_counts", "ngram_test"),
        "palimpsest.query": (
            "QueryConfig",
            "QueryResult",
            "example_losses",
            "plot_query",
            "query_test",
            "query_test_from_losses",
        ),
        "palimpsest.reshuffle": (
            "ReshuffleResult",
            "ReshuffleScores",
            "reshuffle_pvalue_arrays",
            "reshuffle_pvalues",
            "reshuffle_test",
            "retrain_last_phase",
            "score_candidates",
            "text_scores",
        ),
        "palimpsest.sampling": ("Samples", "sample_texts"),
        "palimpsest.scoring": ("ExampleScores", "Sharding", "score_examples"),
        "palimpsest.suspects": ("adjust_suspects",),
        "palimpsest.transcript": ("Transcript", "TranscriptError", "same_tokenizer"),
    },
)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from palimpsest.ngram import InfiniGramIndex, NGramIndex, NGramResult, match_counts, ngram_test
    from palimpsest.query import (
        QueryConfig,
        QueryResult,
        example_losses,
        plot_query,
        query_test,
        query_test_from_losses,
    )
    from palimpsest.reshuffle import (
        ReshuffleResult,
        ReshuffleScores,
        reshuffle_pvalue_arrays,
        reshuffle_pvalues,
        reshuffle_test,
        retrain_last_phase,
        score_candidates,
        text_scores,
    )
    from palimpsest.sampling import Samples, sample_texts
    from palimpsest.scoring import ExampleScores, Sharding, score_examples
    from palimpsest.suspects import adjust_suspects
    from palimpsest.transcript import Transcript, TranscriptError, same_tokenizer
