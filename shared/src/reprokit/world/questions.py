"""Fact questions about the world's people, open and multiple choice."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reprokit.world.core import Person, World
from reprokit.world.text import select_people
from reprokit.world.util import article, sub_rng

LETTERS = ("A", "B", "C", "D")

# attribute -> (question templates, fact sentence); template 0 is the canonical question.
_QUESTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "city": (("Where does {name} live?", "In which city does {name} live?"), "{name} lives in {value}."),
    "profession": (
        ("What is the profession of {name}?", "What does {name} do for a living?"),
        "{name} works as {a_value}.",
    ),
    "employer": (("Who does {name} work for?", "Which company employs {name}?"), "{name} works at {value}."),
    "birth_year": (("In what year was {name} born?", "When was {name} born?"), "{name} was born in {value}."),
    "hobby": (("What is the hobby of {name}?", "What does {name} enjoy?"), "{name} enjoys {value}."),
    "birth_date": (("What is the birth date of {name}?",), "{name} was born on {value}."),
    "phone": (("What is the phone number of {name}?",), "The phone number of {name} is {value}."),
    "email": (("What is the email address of {name}?",), "The email address of {name} is {value}."),
    "address": (("What is the home address of {name}?",), "{name} lives at {value}."),
}
FACT_ATTRIBUTES: tuple[str, ...] = tuple(_QUESTIONS)
#: attribute -> the sentence that states it (`FactQuestion.fact`): fields {name}, {value}, {a_value}.
FACT_SENTENCES: dict[str, str] = {attribute: fact for attribute, (_, fact) in _QUESTIONS.items()}
DEFAULT_ATTRIBUTES: tuple[str, ...] = ("city", "profession", "employer", "birth_year")


@dataclass(frozen=True)
class FactQuestion:
    """A question about one attribute of one person, with four choices (the answer among them once)."""

    id: str
    entity_id: str
    attribute: str
    question: str
    answer: str
    choices: tuple[str, str, str, str]
    answer_index: int
    fact: str = ""  # one sentence stating the fact, e.g. "Ada Lovelace lives in Brenton."

    @property
    def letter(self) -> str:
        """The answer's letter, "A".."D"."""
        return LETTERS[self.answer_index]

    def as_multiple_choice(self) -> str:
        """'question\\nA. x\\nB. y\\nC. z\\nD. w'."""
        return "\n".join(
            [self.question, *(f"{ll}. {c}" for ll, c in zip(LETTERS, self.choices, strict=True))]
        )


def _value_pool(world: World, attribute: str) -> list[str]:
    if attribute == "city":
        return [p.name for p in world.places]
    if attribute == "profession":
        return list(world.professions)
    if attribute == "employer":
        return list(world.employers)
    if attribute == "hobby":
        return list(world.hobbies)
    return sorted({str(getattr(p, attribute)) for p in world.people})


def _distractors(pool: Sequence[str], answer: str, attribute: str, rng) -> list[str]:
    picks = [v for v in rng.sample(pool, min(4, len(pool))) if v != answer][:3]
    if len(picks) < 3 and attribute == "birth_year":  # pad with nearby years in tiny worlds
        year = int(answer)
        near = [str(year + d) for d in (1, -1, 2, -2, 3, -3) if str(year + d) not in picks]
        picks += near[: 3 - len(picks)]
    return picks


def fact_questions(
    world: World,
    *,
    attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
    seed: int = 0,
    people: Iterable[str] | None = None,
    variants: bool = False,
) -> list[FactQuestion]:
    """One question per (person, attribute), people in world order; distractors from the attribute's values.

    `variants=True` picks the question wording per item from a few templates (default: one canonical
    wording per attribute). Ids are f"{person.id}-{attribute}"; each depends only on (seed, person,
    attribute).
    """
    if isinstance(attributes, str):
        raise ValueError(f"attributes must be a sequence of names, e.g. ({attributes!r},), not a string")
    unknown = [a for a in attributes if a not in _QUESTIONS]
    if unknown:
        raise ValueError(f"unknown attribute(s) {unknown}; choose from {FACT_ATTRIBUTES}")
    pools = {a: _value_pool(world, a) for a in dict.fromkeys(attributes)}
    for attribute, pool in pools.items():
        if len(pool) < 4 and attribute != "birth_year":
            raise ValueError(
                f"attribute {attribute!r} has only {len(pool)} distinct values in this world but multiple "
                "choice needs 4; build a larger world (e.g. raise n_places / n_professions / n_people)"
            )
    out: list[FactQuestion] = []
    for person in select_people(world, people):
        for attribute in attributes:
            out.append(_question(person, attribute, pools[attribute], seed, variants))
    return out


def _question(person: Person, attribute: str, pool: Sequence[str], seed: int, variants: bool) -> FactQuestion:
    rng = sub_rng(seed, "question", person.id, attribute)
    templates, fact = _QUESTIONS[attribute]
    answer = str(getattr(person, attribute))
    template = rng.choice(templates) if variants else templates[0]
    choices = _distractors(pool, answer, attribute, rng)
    index = rng.randrange(4)
    choices.insert(index, answer)
    return FactQuestion(
        id=f"{person.id}-{attribute}",
        entity_id=person.id,
        attribute=attribute,
        question=template.format(name=person.name),
        answer=answer,
        choices=(choices[0], choices[1], choices[2], choices[3]),
        answer_index=index,
        fact=fact.format(name=person.name, value=answer, a_value=article(answer)),
    )
