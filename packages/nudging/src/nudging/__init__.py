"""Nudging: inference-time alignment of a base LM by a small aligned model (Fei, Razeghi, Singh 2024).

The base model writes while its top-1 next-token probability is at least gamma; where it is uncertain,
a small aligned model of any family writes the next word(s). The two exchange text, never token ids.
"""

from nudging.batch import generate_texts
from nudging.config import NudgingConfig
from nudging.fast import nudge_fast
from nudging.lockstep import nudge_batch
from nudging.nudger import Nudger, nudge
from nudging.prompts import SYSTEM_PROMPT, NudgingPrompt, base_prompt, build_prompts, nudger_prompt
from nudging.reference import nudge_reference
from nudging.result import NudgeResult, Segment
from nudging.words import join_words, split_words, strip_trailing_repetitions

__version__ = "0.1.0"

__all__ = [
    "SYSTEM_PROMPT",
    "NudgeResult",
    "Nudger",
    "NudgingConfig",
    "NudgingPrompt",
    "Segment",
    "base_prompt",
    "build_prompts",
    "generate_texts",
    "join_words",
    "nudge",
    "nudge_batch",
    "nudge_fast",
    "nudge_reference",
    "nudger_prompt",
    "split_words",
    "strip_trailing_repetitions",
]
