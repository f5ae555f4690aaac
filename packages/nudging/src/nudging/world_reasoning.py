"""Multi-step arithmetic word problems and symbolic tasks (last-letter concatenation, coin flip).

The reasoning tasks of the tiny nudging reproduction, built on `reprokit.world` (its people and objects,
its seeded random streams); `reprokit.world.chat_pairs` turns them into chat pairs like fact questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from reprokit.world import COUNTABLE_ITEMS, World
from reprokit.world.util import cap, check_count, count_noun, seeded_faker, sub_rng, to_ascii

__all__ = ["SymbolicTask", "WordProblem", "arithmetic_problems", "coin_flip_tasks", "last_letter_tasks"]


@dataclass(frozen=True)
class WordProblem:
    """A multi-step word problem with small non-negative integers and one sentence per step."""

    id: str
    question: str
    steps: tuple[str, ...]
    answer: int

    @property
    def kind(self) -> str:
        """The task name, "arithmetic" (what `reprokit.world.chat_pairs` records for it)."""
        return "arithmetic"

    @property
    def solution(self) -> str:
        """The steps followed by 'The answer is N.'."""
        return " ".join([*self.steps, f"The answer is {self.answer}."])

    @property
    def textbook(self) -> str:
        """Plain textbook rendering: 'Problem: ...\\nSolution: ... So the answer is N.'."""
        return f"Problem: {self.question}\nSolution: {' '.join(self.steps)} So the answer is {self.answer}."


@dataclass(frozen=True)
class SymbolicTask:
    """A symbolic reasoning task (Wei et al. 2022 style) with its worked steps."""

    id: str
    kind: str  # "last_letter" | "coin_flip"
    question: str
    steps: tuple[str, ...]
    answer: str

    @property
    def solution(self) -> str:
        """The steps followed by 'The answer is X.'."""
        return " ".join([*self.steps, f"The answer is {self.answer}."])


@dataclass(frozen=True)
class _Names:
    firsts: tuple[tuple[str, str], ...]  # (first name, gender), distinct names
    lasts: tuple[str, ...]
    fulls: tuple[tuple[str, str], ...]  # (first, last) pairs that exist together


@lru_cache(maxsize=32)
def _faker_names(seed: int) -> _Names:
    fake = seeded_faker(seed, "task-names")
    firsts: dict[str, str] = {}
    while len(firsts) < 64:
        gender = "female" if len(firsts) % 2 == 0 else "male"
        name = to_ascii(fake.first_name_female() if gender == "female" else fake.first_name_male())
        if name.isalpha() and len(name) > 1:
            firsts.setdefault(name, gender)
    lasts: dict[str, None] = {}
    while len(lasts) < 64:
        name = to_ascii(fake.last_name())
        if name.isalpha() and len(name) > 1:
            lasts.setdefault(name)
    first_items = tuple(firsts.items())
    last_items = tuple(lasts)
    return _Names(
        first_items,
        last_items,
        tuple((f, last) for (f, _), last in zip(first_items, last_items, strict=True)),
    )


def _names(world: World | None, seed: int) -> _Names:
    if world is None:
        return _faker_names(seed)
    firsts: dict[str, str] = {}
    for p in world.people:
        firsts.setdefault(p.first_name, p.gender)
    lasts = tuple(dict.fromkeys(p.last_name for p in world.people))
    return _Names(tuple(firsts.items()), lasts, tuple((p.first_name, p.last_name) for p in world.people))


def _items(world: World | None) -> tuple[tuple[str, str], ...]:
    if world is not None and world.objects:
        return tuple((o.name, o.plural) for o in world.objects)
    return COUNTABLE_ITEMS


def _pronoun(gender: str) -> tuple[str, str]:
    return ("she", "her") if gender == "female" else ("he", "him")


def arithmetic_problems(
    n: int,
    *,
    seed: int = 0,
    min_steps: int = 2,
    max_steps: int = 3,
    max_value: int = 20,
    world: World | None = None,
) -> list[WordProblem]:
    """`n` word problems of `min_steps`..`max_steps` add / subtract / multiply steps.

    Every number (operands, intermediate results, answer) lies in 0..`max_value`. Each step is one
    sentence with exactly one "a + b = c" / "a - b = c" / "a * b = c". People and items come from
    `world` when given (else faker first names and a fixed item list). Problem i depends only on
    (seed, i, the size arguments, world), so a longer list extends a shorter one.
    """
    check_count("n", n)
    check_count("min_steps", min_steps, minimum=1)
    check_count("max_steps", max_steps, minimum=1)
    check_count("max_value", max_value, minimum=2)
    if max_steps < min_steps:
        raise ValueError(f"max_steps ({max_steps}) must be >= min_steps ({min_steps})")
    names, items = _names(world, seed), _items(world)
    if len(names.firsts) < 2:
        raise ValueError("word problems need at least 2 distinct first names; use a world with more people")
    return [_word_problem(i, seed, min_steps, max_steps, max_value, names, items) for i in range(n)]


def _word_problem(i, seed, min_steps, max_steps, max_value, names: _Names, items) -> WordProblem:
    rng = sub_rng(seed, "arith", i)
    (hero, gender), (other, _) = rng.sample(names.firsts, 2)
    singular, plural = rng.choice(items)
    she, her = _pronoun(gender)
    cur = rng.randint(1, max(1, max_value // 2))
    question = [f"{hero} has {count_noun(cur, singular, plural)}."]
    steps: list[str] = []
    for k in range(rng.randint(min_steps, max_steps)):
        ops = [
            op
            for op, ok in (("add", cur < max_value), ("sub", cur > 0), ("mul", 0 < cur * 2 <= max_value))
            if ok
        ]
        op = rng.choice(ops)
        if op == "add":
            x = rng.randint(1, min(10, max_value - cur))
            new, expr = cur + x, f"{cur} + {x}"
            form = rng.randrange(3)
            if form == 0:
                question.append(f"{cap(she)} buys {x} more {singular if x == 1 else plural}.")
                act = f"buys {x} more"
            elif form == 1:
                question.append(f"{cap(she)} finds {x} more {singular if x == 1 else plural}.")
                act = f"finds {x} more"
            else:
                question.append(f"{other} gives {her} {count_noun(x, singular, plural)}.")
                act = f"gets {x} from {other}"
        elif op == "sub":
            x = rng.randint(1, cur)
            new, expr = cur - x, f"{cur} - {x}"
            if rng.random() < 0.5:
                question.append(f"{cap(she)} gives {count_noun(x, singular, plural)} to {other}.")
                act = f"gives {x} to {other}"
            else:
                question.append(f"{cap(she)} loses {count_noun(x, singular, plural)}.")
                act = f"loses {x}"
        else:
            x = rng.choice([m for m in (2, 3) if cur * m <= max_value])
            new, expr = cur * x, f"{cur} * {x}"
            verb = "doubles" if x == 2 else "triples"
            question.append(f"Then the number of {plural} {hero} has {verb}.")
            act = f"the number {verb}"
        if k == 0:
            lead = f"{hero} has {count_noun(cur, singular, plural)} and"
        else:
            lead = "Then" if op == "mul" else f"Then {she}"
        steps.append(f"{lead} {act}, so {she} has {expr} = {count_noun(new, singular, plural)}.")
        cur = new
    question.append(f"How many {plural} does {hero} have now?")
    return WordProblem(f"arith-{seed}-{i:05d}", " ".join(question), tuple(steps), cur)


def last_letter_tasks(
    n: int, *, n_words: int = 2, seed: int = 0, world: World | None = None
) -> list[SymbolicTask]:
    """`n` last-letter concatenation tasks over names of `n_words` words (a real full name when 2)."""
    check_count("n", n)
    check_count("n_words", n_words, minimum=1)
    names = _names(world, seed)
    out = []
    for i in range(n):
        rng = sub_rng(seed, "last_letter", i)
        first, last = rng.choice(names.fulls)
        if n_words == 1:
            words = [first]
        else:
            words = [rng.choice(names.firsts)[0] for _ in range(n_words - 2)] + [first, last]
        phrase = " ".join(words)
        answer = "".join(w[-1] for w in words)
        steps = [f'The last letter of "{w}" is "{w[-1]}".' for w in words]
        steps.append(f'Concatenating them gives "{answer}".')
        question = f'Take the last letters of the words in "{phrase}" and concatenate them.'
        out.append(SymbolicTask(f"last_letter-{seed}-{i:05d}", "last_letter", question, tuple(steps), answer))
    return out


def coin_flip_tasks(
    n: int, *, n_flips: int = 2, seed: int = 0, world: World | None = None
) -> list[SymbolicTask]:
    """`n` coin-flip tasks: `n_flips` distinct people each flip the coin or not; is it still heads up?"""
    check_count("n", n)
    check_count("n_flips", n_flips, minimum=1)
    names = _names(world, seed)
    if len(names.firsts) < n_flips:
        raise ValueError(
            f"n_flips={n_flips} needs {n_flips} distinct first names but only {len(names.firsts)} are "
            "available; lower n_flips or use a world with more people"
        )
    out = []
    for i in range(n):
        rng = sub_rng(seed, "coin_flip", i)
        heads = True
        question = ["A coin is heads up."]
        steps = ["The coin starts heads up."]
        for name, _ in rng.sample(names.firsts, n_flips):
            if rng.random() < 0.5:
                heads = not heads
                question.append(f"{name} flips the coin.")
                steps.append(f"{name} flips the coin, so it is now {'heads' if heads else 'tails'} up.")
            else:
                question.append(f"{name} does not flip the coin.")
                steps.append(
                    f"{name} does not flip the coin, so it is still {'heads' if heads else 'tails'} up."
                )
        question.append("Is the coin still heads up?")
        answer = "yes" if heads else "no"
        out.append(
            SymbolicTask(f"coin_flip-{seed}-{i:05d}", "coin_flip", " ".join(question), tuple(steps), answer)
        )
    return out
