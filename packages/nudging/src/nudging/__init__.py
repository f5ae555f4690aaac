"""Nudging: inference-time alignment of a base LM by a small aligned model (Fei, Razeghi, Singh 2024).

The base model writes while its top-1 next-token probability is at least gamma; where it is uncertain,
a small aligned model of any family writes the next word(s). The two exchange text, never token ids.

The public names below are imported on first use (`reprokit.lazy`), so ``nudging --help`` does not
import torch.
"""
# ruff: noqa: F401  (the TYPE_CHECKING imports re-export the lazy names for type checkers)

from typing import TYPE_CHECKING

from reprokit.lazy import lazy_exports

__version__ = "0.1.0"

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "nudging.baselines": (
            "BaselineOutput",
            "ensemble_generate",
            "proxy_tune_generate",
            "urial_generate",
            "urial_prompt",
        ),
        "nudging.config": ("NudgingConfig",),
        "nudging.fast": ("nudge_fast",),
        "nudging.lockstep": ("nudge_batch",),
        "nudging.nudger": ("Nudger", "nudge"),
        "nudging.prompts": (
            "SYSTEM_PROMPT",
            "NudgingPrompt",
            "base_prompt",
            "build_prompts",
            "nudger_prompt",
            "task_prompts",
        ),
        "nudging.reference": ("nudge_reference",),
        "nudging.result": ("NudgeResult", "Segment"),
        "nudging.server": ("ServedModel", "ServerError", "nudge_served", "nudge_served_batch"),
        "nudging.words": ("join_words", "split_words", "strip_trailing_repetitions"),
    },
)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from nudging.baselines import (
        BaselineOutput,
        ensemble_generate,
        proxy_tune_generate,
        urial_generate,
        urial_prompt,
    )
    from nudging.config import NudgingConfig
    from nudging.fast import nudge_fast
    from nudging.lockstep import nudge_batch
    from nudging.nudger import Nudger, nudge
    from nudging.prompts import (
        SYSTEM_PROMPT,
        NudgingPrompt,
        base_prompt,
        build_prompts,
        nudger_prompt,
        task_prompts,
    )
    from nudging.reference import nudge_reference
    from nudging.result import NudgeResult, Segment
    from nudging.server import ServedModel, ServerError, nudge_served, nudge_served_batch
    from nudging.words import join_words, split_words, strip_trailing_repetitions
