"""Palimpsest: exact provenance tests for language models.

Does a suspect model (query test) or a suspect text (reshuffle and n-gram tests) derive from one
particular training run? Under a uniformly random training order, every p-value here is exact or
explicitly labelled as an approximation. Reproduces Kuditipudi et al. (2025), arXiv 2510.19796.
"""

from palimpsest.ngram import InfiniGramIndex, NGramIndex, NGramResult, match_counts, ngram_test
from palimpsest.query import QueryConfig, QueryResult, example_losses, query_test, query_test_from_losses
from palimpsest.reshuffle import (
    ReshuffleResult,
    ReshuffleScores,
    reshuffle_pvalues,
    reshuffle_test,
    retrain_last_phase,
    score_candidates,
    text_scores,
)
from palimpsest.sampling import Samples, sample_texts
from palimpsest.suspects import adjust_log10_pvalues, adjust_suspects
from palimpsest.transcript import Transcript, TranscriptError, same_tokenizer

__version__ = "0.1.0"

__all__ = [
    "InfiniGramIndex",
    "NGramIndex",
    "NGramResult",
    "QueryConfig",
    "QueryResult",
    "ReshuffleResult",
    "ReshuffleScores",
    "Samples",
    "Transcript",
    "TranscriptError",
    "adjust_log10_pvalues",
    "adjust_suspects",
    "example_losses",
    "match_counts",
    "ngram_test",
    "query_test",
    "query_test_from_losses",
    "reshuffle_pvalues",
    "reshuffle_test",
    "retrain_last_phase",
    "same_tokenizer",
    "sample_texts",
    "score_candidates",
    "text_scores",
]
