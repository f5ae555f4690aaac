"""Tests of nudging.world_reasoning: word problems and symbolic tasks built on reprokit.world.

Moved from reprokit (nudging is their one user); the assertions are those of shared/tests/test_world.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nudging.world_reasoning import (
    SymbolicTask,
    WordProblem,
    arithmetic_problems,
    coin_flip_tasks,
    last_letter_tasks,
)
from reprokit.world import ChatPair, FactQuestion, WorkedTask, chat_pairs, fact_questions, make_world

# sha256 of repr((arithmetic_problems(30, seed=0), last_letter_tasks(10), coin_flip_tasks(10))), computed
# with reprokit.world before the generators moved here.
KNOWN_DIGEST = "dfdf7720471cefb61e3f18aad0a3dc68cf11a6b38a0ec363c998f32782f082de"
SMALL = {"n_people": 40, "n_places": 8, "n_professions": 8, "n_employers": 8, "n_objects": 10}


@pytest.fixture(scope="module")
def world():
    return make_world(seed=1, **SMALL)


def _all_outputs(world, seed=0):
    """Every generator's output for one world: the byte-for-byte determinism target."""
    problems = arithmetic_problems(20, seed=seed, world=world)
    symbolic = last_letter_tasks(10, seed=seed, world=world) + coin_flip_tasks(10, seed=seed)
    return (
        problems,
        symbolic,
        arithmetic_problems(10, seed=seed),
        chat_pairs([*problems, *symbolic], style="aligned", seed=seed),
    )


# --- determinism -----------------------------------------------------------------------------------


def test_same_seed_same_tasks(world):
    assert _all_outputs(make_world(seed=1, **SMALL)) == _all_outputs(world)
    assert arithmetic_problems(5, seed=0) != arithmetic_problems(5, seed=1)
    assert arithmetic_problems(12, seed=3)[:5] == arithmetic_problems(5, seed=3)


_CHILD = """
import hashlib
from reprokit.world import make_world
import test_world_reasoning as t
w = make_world(seed=1, **t.SMALL)
print(hashlib.sha256(repr(t._all_outputs(w)).encode()).hexdigest())
"""


def test_deterministic_across_processes_and_hash_seeds(world):
    expected = hashlib.sha256(repr(_all_outputs(world)).encode()).hexdigest()
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == expected


def test_known_output_is_unchanged_by_the_move():
    """The first items of seed 0, as reprokit.world generated them before the move to nudging."""
    problem = arithmetic_problems(1, seed=0)[0]
    assert problem.id == "arith-0-00000" and problem.kind == "arithmetic"
    digest = hashlib.sha256(
        repr((arithmetic_problems(30, seed=0), last_letter_tasks(10), coin_flip_tasks(10))).encode()
    ).hexdigest()
    assert digest == KNOWN_DIGEST


# --- word problems ---------------------------------------------------------------------------------

_EXPR = re.compile(r"(\d+) ([+*-]) (\d+) = (\d+)")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@pytest.mark.parametrize(
    ("with_world", "min_steps", "max_steps", "max_value"), [(True, 2, 3, 20), (False, 1, 5, 12)]
)
def test_arithmetic_problems_consistent(world, with_world, min_steps, max_steps, max_value):
    problems = arithmetic_problems(
        200,
        seed=7,
        min_steps=min_steps,
        max_steps=max_steps,
        max_value=max_value,
        world=world if with_world else None,
    )
    assert len(problems) == 200
    assert len({p.id for p in problems}) == 200
    for p in problems:
        assert min_steps <= len(p.steps) <= max_steps
        start = int(re.match(r"\w+ has (\d+) ", p.question).group(1))
        cur = start
        for step in p.steps:
            (a, op, b, c), *more = _EXPR.findall(step)
            assert not more
            assert int(a) == cur
            assert _OPS[op](int(a), int(b)) == int(c)
            assert 0 <= int(c) <= max_value
            assert int(b) <= max_value
            assert step.endswith(".")
            cur = int(c)
        assert p.answer == cur >= 0
        assert p.solution == " ".join(p.steps) + f" The answer is {p.answer}."
        assert (
            p.textbook == f"Problem: {p.question}\nSolution: {' '.join(p.steps)} So the answer is {p.answer}."
        )
    if with_world:
        firsts = {q.first_name for q in world.people}
        assert all(p.question.split()[0] in firsts for p in problems)
        assert {p.question.split()[3].rstrip(".") for p in problems} <= {o.plural for o in world.objects} | {
            o.name for o in world.objects
        }
    assert {op for p in problems for s in p.steps for _, op, _, _ in _EXPR.findall(s)} == {"+", "-", "*"}


def test_generators_bad_counts():
    assert arithmetic_problems(0) == []
    for fn in (arithmetic_problems, last_letter_tasks, coin_flip_tasks):
        with pytest.raises(ValueError, match="n must be >= 0"):
            fn(-1)
    with pytest.raises(ValueError, match="max_steps"):
        arithmetic_problems(3, min_steps=4, max_steps=2)
    with pytest.raises(ValueError, match="n_flips"):
        coin_flip_tasks(3, n_flips=0)


# --- symbolic tasks --------------------------------------------------------------------------------


@pytest.mark.parametrize("n_words", [1, 2, 4])
def test_last_letter_tasks(world, n_words):
    for w in (world, None):
        tasks = last_letter_tasks(50, n_words=n_words, seed=1, world=w)
        for t in tasks:
            phrase = re.search(r'"([^"]+)"', t.question).group(1)
            words = phrase.split()
            assert len(words) == n_words
            assert t.answer == "".join(word[-1] for word in words)
            assert t.kind == "last_letter"
            assert t.solution.endswith(f"The answer is {t.answer}.")
    names = {p.name for p in world.people}
    assert all(
        re.search(r'"([^"]+)"', t.question).group(1) in names for t in last_letter_tasks(20, world=world)
    )


@pytest.mark.parametrize("n_flips", [1, 2, 5])
def test_coin_flip_tasks(world, n_flips):
    tasks = coin_flip_tasks(100, n_flips=n_flips, seed=2, world=world)
    for t in tasks:
        flips = len(re.findall(r"\w+ flips the coin\.", t.question))
        skips = len(re.findall(r"\w+ does not flip the coin\.", t.question))
        assert flips + skips == n_flips
        assert t.answer == ("yes" if flips % 2 == 0 else "no")
        assert t.question.startswith("A coin is heads up.")
        assert t.question.endswith("Is the coin still heads up?")
        assert len(t.steps) == n_flips + 1
    assert {t.answer for t in tasks} == {"yes", "no"}


# --- chat pairs ------------------------------------------------------------------------------------


def test_chat_pairs_of_reasoning_tasks(world):
    facts = fact_questions(world)[:8]
    items = [*facts, *arithmetic_problems(30, world=world), *last_letter_tasks(5), *coin_flip_tasks(5)]
    pairs = chat_pairs(items, style="aligned", seed=1)
    assert [p.source_id for p in pairs] == [i.id for i in items]
    assert {p.task for p in pairs} == {"fact", "arithmetic", "last_letter", "coin_flip"}
    for pair, item in zip(pairs, items, strict=True):
        assert isinstance(pair, ChatPair)
        assert pair.instruction == item.question
        assert len(pair.response.split()) < 60
        assert pair.response.endswith(f"The answer is {item.answer}.")
        if isinstance(item, FactQuestion):
            assert item.fact in pair.response
        if isinstance(item, WordProblem | SymbolicTask):
            assert isinstance(item, WorkedTask)
            assert " ".join(item.steps) in pair.response
