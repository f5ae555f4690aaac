"""Chat-formatted instruction/response pairs built from the world's questions and worked tasks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from reprokit.world.questions import FactQuestion
from reprokit.world.util import sub_rng

SYSTEM_PROMPT = "Answer the question by walking through the reasoning steps."

# Openings of the "aligned" style: what makes an aligned model's answers look aligned.
ALIGNED_OPENINGS: tuple[str, ...] = (
    "Sure! Let's think step by step.",
    "Of course! Let's work it out.",
    "Happy to help! Let's see.",
    "Great question! Let's reason it out.",
)
# "mixed": answer formats of plain question-answer text (what a base model sees in pretraining).
_MIXED_FORMATS: tuple[str, ...] = (
    "{answer}.",
    "The answer is {answer}.",
    "Answer: {answer}.",
    "{reasoning}",
    "{reasoning} So the answer is {answer}.",
)
CHAT_STYLES: tuple[str, ...] = ("aligned", "plain", "short", "mixed")


@runtime_checkable
class WorkedTask(Protocol):
    """A task with worked steps (e.g. a word problem): what `chat_pairs` needs besides fact questions."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def question(self) -> str: ...
    @property
    def steps(self) -> tuple[str, ...]: ...
    @property
    def answer(self) -> object: ...


Item = FactQuestion | WorkedTask


@dataclass(frozen=True)
class ChatPair:
    """One user instruction and one assistant response."""

    instruction: str
    response: str
    source_id: str
    task: str  # "fact" | "fact_mc" | "arithmetic" | "last_letter" | "coin_flip"

    def messages(self, system: str | None = None) -> list[dict[str, str]]:
        """Chat messages [user, assistant], preceded by a system message when `system` is given."""
        msgs = [{"role": "system", "content": system}] if system is not None else []
        return [
            *msgs,
            {"role": "user", "content": self.instruction},
            {"role": "assistant", "content": self.response},
        ]


def _parts(item: Item, multiple_choice: bool) -> tuple[str, str, str, str]:
    """(instruction, reasoning, answer, task) of one item."""
    if isinstance(item, FactQuestion):
        if multiple_choice:
            return item.as_multiple_choice(), item.fact, item.letter, "fact_mc"
        return item.question, item.fact, item.answer, "fact"
    if isinstance(item, WorkedTask):
        return item.question, " ".join(item.steps), str(item.answer), item.kind
    raise ValueError(
        f"chat_pairs: cannot make a chat pair from {type(item).__name__}; pass FactQuestion items or "
        "worked tasks with id, kind, question, steps and answer"
    )


def chat_pairs(
    items: Iterable[Item],
    *,
    style: str = "aligned",
    seed: int = 0,
    multiple_choice: bool = False,
    openings: Sequence[str] = ALIGNED_OPENINGS,
) -> list[ChatPair]:
    """Instruction/response pairs, one per item, in the given order.

    Styles: "aligned" = an opening from `openings` + reasoning + "The answer is X."; "plain" = reasoning
    + "The answer is X."; "short" = "X."; "mixed" = one of five plain answer formats per item (varied
    pretraining QA text). A fact question's reasoning is its one-sentence fact; with
    `multiple_choice=True` its instruction is `as_multiple_choice()` and X is the letter.
    """
    if style not in CHAT_STYLES:
        raise ValueError(f"unknown chat style {style!r}; choose from {CHAT_STYLES}")
    if isinstance(openings, str) or not openings:
        raise ValueError("openings must be a non-empty sequence of strings")
    pairs = []
    for item in items:
        instruction, reasoning, answer, task = _parts(item, multiple_choice)
        rng = sub_rng(seed, "chat", style, item.id)
        if style == "aligned":
            response = f"{rng.choice(openings)} {reasoning} The answer is {answer}."
        elif style == "plain":
            response = f"{reasoning} The answer is {answer}."
        elif style == "short":
            response = f"{answer}."
        else:
            response = rng.choice(_MIXED_FORMATS).format(reasoning=reasoning, answer=answer)
        pairs.append(ChatPair(instruction, response, item.id, task))
    return pairs
