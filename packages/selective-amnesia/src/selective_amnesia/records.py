"""The record types every part of the package shares: task rows and multiple-choice questions.

A `Row` is one row of a SemEval-2025 Task 4 set (``id, input, output, task, split``); its probe kind
(sentence completion or QA) is read from the id's suffix exactly as the official scorer does. An
`MCQuestion` is one multiple-choice question of the utility test (MMLU, or the tiny world's analogue).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROBES", "SPLITS", "MCQuestion", "Row", "probe_of"]

#: Probe kinds, from the id suffix: ``...sc1`` sentence completion, ``...qa0``..``qa4`` question answering.
PROBES: tuple[str, ...] = ("sc", "qa")
#: The two sides of an unlearning set.
SPLITS: tuple[str, ...] = ("forget", "retain")


def probe_of(row_id: str) -> str | None:
    """``"sc"`` or ``"qa"`` as the official scorer reads it (``id[:-1].endswith(...)``), else None."""
    stem = str(row_id)[:-1]
    return next((p for p in PROBES if stem.endswith(p)), None)


@dataclass(frozen=True)
class Row:
    """One row of a forget or retain set: the model is prompted with `input` and should say `output`.

    `task` is ``"Task1"`` (creative documents), ``"Task2"`` (PII biographies) or ``"Task3"`` (real
    documents) in the SemEval data; any label works. `split` is ``"forget"`` or ``"retain"``.
    """

    id: str
    input: str
    output: str
    task: str
    split: str

    @property
    def probe(self) -> str:
        """``"sc"`` (sentence completion, scored by ROUGE-L recall) or ``"qa"`` (exact match)."""
        probe = probe_of(self.id)
        if probe is None:
            raise ValueError(f"row id {self.id!r} has no probe suffix (sc<digit> or qa<digit>)")
        return probe


@dataclass(frozen=True)
class MCQuestion:
    """A multiple-choice question scored by the next letter after ``Answer:`` (MMLU style).

    `answer` is the index of the right choice in `choices`; `subject` names the MMLU subject (or the
    tiny world's question kind) and goes into the few-shot header. `cloze` is the same question as a
    sentence with a ``{choice}`` slot (``"Oslo is a city in {choice}."``), for scoring each choice by its
    log-likelihood instead of the next letter (``ScoreConfig(mmlu_format="cloze")``).
    """

    question: str
    choices: tuple[str, ...]
    answer: int
    subject: str = "general knowledge"
    cloze: str = ""

    def __post_init__(self) -> None:
        if not 2 <= len(self.choices) <= 26:
            raise ValueError(f"an MCQuestion needs 2 to 26 choices, got {len(self.choices)}")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(f"answer index {self.answer} is out of range for {len(self.choices)} choices")
        if self.cloze and self.cloze.count("{choice}") != 1:
            raise ValueError(f"cloze {self.cloze!r} must hold exactly one {{choice}} slot")
