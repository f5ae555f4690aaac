"""Selective amnesia: find where a language model stores facts, and unlearn them there.

Batched ROME-style causal tracing on any decoder-only Hugging Face model (`selective_amnesia.tracing`),
aggregated by token role into the layers to train (`selective_amnesia.roles`); constrained unlearning of
those layers on `transformers.Trainer` with the organizers' baselines (`selective_amnesia.unlearning`); and
the SemEval-2025 Task 4 metrics, exactly (`selective_amnesia.scoring`). Reproduces Agrawal and Huang, "SHA256
at SemEval-2025 Task 4: Selective Amnesia" (arXiv 2504.12996): ``python reproduce/selective_amnesia.py``.

The public names below are imported on first use (`reprokit.lazy`), so importing the package is cheap.
"""
# ruff: noqa: F401  (the TYPE_CHECKING imports re-export the lazy names for type checkers)

from typing import TYPE_CHECKING

from reprokit.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "selective_amnesia.records": ("MCQuestion", "Row"),
    "selective_amnesia.layout": ("KINDS", "ModelLayout", "find_layout"),
    "selective_amnesia.figures": ("plot_role_effects", "plot_trace"),
    "selective_amnesia.roles": ("ROLES", "propose_layers", "role_effects", "token_roles"),
    "selective_amnesia.tracing": (
        "Fact",
        "Skipped",
        "TraceResult",
        "TraceRun",
        "TracingConfig",
        "subject_embedding_std",
        "trace_fact",
        "trace_facts",
    ),
    "selective_amnesia.data": (
        "UnlearningData",
        "load_documents",
        "load_rows",
        "load_unlearning_data",
        "write_rows",
    ),
    "selective_amnesia.scoring": (
        "MIAResult",
        "MMLUResult",
        "ScoreConfig",
        "SemEvalScore",
        "TaskScores",
        "exact_match",
        "final_score",
        "generate_answers",
        "load_mmlu",
        "mia_score",
        "mmlu_accuracy",
        "rouge_l_recall",
        "score_model",
        "task_scores",
    ),
    "selective_amnesia.unlearning": (
        "METHODS",
        "UnlearnConfig",
        "UnlearnResult",
        "select_parameters",
        "unlearn",
    ),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from selective_amnesia.data import (
        UnlearningData,
        load_documents,
        load_rows,
        load_unlearning_data,
        write_rows,
    )
    from selective_amnesia.figures import plot_role_effects, plot_trace
    from selective_amnesia.layout import KINDS, ModelLayout, find_layout
    from selective_amnesia.records import MCQuestion, Row
    from selective_amnesia.roles import ROLES, propose_layers, role_effects, token_roles
    from selective_amnesia.scoring import (
        MIAResult,
        MMLUResult,
        ScoreConfig,
        SemEvalScore,
        TaskScores,
        exact_match,
        final_score,
        generate_answers,
        load_mmlu,
        mia_score,
        mmlu_accuracy,
        rouge_l_recall,
        score_model,
        task_scores,
    )
    from selective_amnesia.tracing import (
        Fact,
        Skipped,
        TraceResult,
        TraceRun,
        TracingConfig,
        subject_embedding_std,
        trace_fact,
        trace_facts,
    )
    from selective_amnesia.unlearning import METHODS, UnlearnConfig, UnlearnResult, select_parameters, unlearn
