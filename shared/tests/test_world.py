"""Tests of reprokit.world: determinism, sizes, ASCII text, and the correctness of every generator.

The word problems and symbolic tasks live in nudging, their one user (nudging/tests/test_world_reasoning.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from reprokit.world import (
    CHAT_STYLES,
    FACT_ATTRIBUTES,
    SEMEVAL_COLUMNS,
    SYSTEM_PROMPT,
    ChatPair,
    FactQuestion,
    WorkedTask,
    WorldConfig,
    biography,
    biography_documents,
    chat_pairs,
    encyclopedia_documents,
    fact_questions,
    make_world,
    pii_biographies,
    pii_frame,
    split_by_person,
)

SMALL = {"n_people": 40, "n_places": 8, "n_professions": 8, "n_employers": 8, "n_objects": 10}


@pytest.fixture(scope="module")
def world():
    return make_world(seed=1, **SMALL)


@dataclass(frozen=True)
class Worked:
    """A worked task as a paper package defines one (`reprokit.world.WorkedTask`)."""

    id: str
    kind: str
    question: str
    steps: tuple[str, ...]
    answer: int | str


def _worked(n: int) -> list[Worked]:
    return [
        Worked(f"add-{i}", "addition", f"What is {i} + 2?", (f"{i} + 2 = {i + 2}.",), i + 2) for i in range(n)
    ]


def _all_outputs(world, seed=0):
    """Every generator's output for one world: the byte-for-byte determinism target."""
    facts = fact_questions(world, attributes=FACT_ATTRIBUTES, seed=seed)
    return (
        world,
        encyclopedia_documents(world, seed=seed),
        facts,
        pii_biographies(world, seed=seed),
        chat_pairs([*facts[:20], *_worked(5)], style="aligned", seed=seed),
        chat_pairs(facts[:20], style="mixed", seed=seed, multiple_choice=True),
    )


def _strings(obj):
    """All strings inside nested dataclasses / tuples / lists."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, list | tuple):
        for x in obj:
            yield from _strings(x)
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            if not name.startswith("_"):
                yield from _strings(getattr(obj, name))


# --- determinism -----------------------------------------------------------------------------------


def test_same_seed_same_world_and_texts(world):
    assert make_world(seed=1, **SMALL) == world
    assert _all_outputs(make_world(seed=1, **SMALL)) == _all_outputs(world)
    assert repr(_all_outputs(world, seed=5)) == repr(_all_outputs(world, seed=5))


def test_different_seed_different_world(world):
    other = make_world(seed=2, **SMALL)
    assert other.people != world.people
    assert [p.name for p in other.people] != [p.name for p in world.people]
    assert other.fingerprint() != world.fingerprint()
    assert encyclopedia_documents(world, seed=0) != encyclopedia_documents(world, seed=1)


_CHILD = """
import hashlib
from reprokit.world import make_world
import test_world as t
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


def test_parts_are_stable_under_growth_and_subsets(world):
    bigger = make_world(seed=1, **{**SMALL, "n_people": 60})
    assert bigger.people[:40] == world.people
    assert bigger.places == world.places
    some = [world.people[3].id, world.people[7].id]
    full = {d.entity_id: d for d in encyclopedia_documents(world, kinds=("person",))}
    assert encyclopedia_documents(world, people=some, kinds=("person",)) == [full[i] for i in some]


# --- the world -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes",
    [
        {"n_people": 1, "n_places": 1, "n_professions": 1, "n_employers": 1, "n_objects": 0},
        {"n_people": 25, "n_places": 5, "n_professions": 32, "n_employers": 3, "n_objects": 56},
    ],
)
def test_sizes_respected(sizes):
    w = make_world(WorldConfig(seed=4), **sizes)
    assert len(w.people) == sizes["n_people"]
    assert len(w.places) == sizes["n_places"]
    assert len(w.objects) == sizes["n_objects"]
    assert len(set(w.professions)) == sizes["n_professions"]
    assert len(set(w.employers)) == sizes["n_employers"]
    assert {p.profession for p in w.people} <= set(w.professions)
    assert {p.employer for p in w.people} <= set(w.employers)
    assert {p.city for p in w.people} <= {c.name for c in w.places}
    assert {o.made_in for o in w.objects} <= {c.name for c in w.places}


def test_people_attributes(world):
    people = world.people
    for field in ("id", "name", "phone", "email"):
        values = [getattr(p, field) for p in people]
        assert len(set(values)) == len(values), field
    for p in people:
        assert p.name == f"{p.first_name} {p.last_name}"
        assert p.first_name.isalpha()
        assert p.last_name.isalpha()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.birth_date)
        assert int(p.birth_date[:4]) == p.birth_year
        assert re.fullmatch(r"55\d-\d{4}", p.phone)
        assert re.fullmatch(r"[a-z]+\.[a-z]+\d*@example\.(com|org|net)", p.email)
        assert p.address.endswith(f", {p.city}")
        assert p.gender in ("female", "male")


def test_name_pools_unique_up_to_capacity():
    w = make_world(n_people=20, n_first_names=5, n_last_names=4, n_places=4, n_employers=4, n_objects=4)
    assert len({p.name for p in w.people}) == 20
    assert len({p.first_name for p in w.people}) == 5
    with pytest.raises(ValueError, match="larger than the 20 possible unique names"):
        WorldConfig(n_people=21, n_first_names=5, n_last_names=4)


def test_distinct_name_parts_give_no_namesakes():
    w = make_world(n_people=60, n_places=4, n_employers=4, n_objects=4, distinct_name_parts=True)
    assert len({p.first_name for p in w.people}) == 60 == len({p.last_name for p in w.people})
    with pytest.raises(ValueError, match="distinct_name_parts needs n_people=6 distinct first and last"):
        WorldConfig(n_people=6, n_first_names=5, n_last_names=10, distinct_name_parts=True)


def test_all_text_ascii(world):
    for s in _strings(_all_outputs(world)):
        assert s.isascii(), s
        assert all(ch.isprintable() or ch == "\n" for ch in s), s


def test_lookup(world):
    p = world.people[5]
    assert world.person(p.id) is p
    assert world.person(p.name) is p
    assert world.place(world.places[0].name) is world.places[0]
    assert world.thing(world.objects[0].id) is world.objects[0]
    with pytest.raises(KeyError, match="no person with id or name 'Nobody Here'"):
        world.person("Nobody Here")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_people": 0}, "n_people must be between 1"),
        ({"n_people": -3}, "n_people must be between 1"),
        ({"n_people": 99_999, "n_first_names": 10}, "larger than the .* possible unique names"),
        ({"n_professions": 99}, "n_professions must be between 1 and 32"),
        ({"n_places": 0}, "n_places must be"),
        ({"seed": "0"}, "seed must be an int"),
        ({"max_birth_year": 1900}, "max_birth_year"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_world(**kwargs)


def test_unknown_override():
    with pytest.raises(TypeError, match="unknown WorldConfig field"):
        make_world(n_persons=3)


# --- documents -------------------------------------------------------------------------------------


def test_encyclopedia_documents(world):
    docs = encyclopedia_documents(world, seed=2)
    assert len(docs) == len(world.people) + len(world.places) + len(world.objects)
    assert [d.kind for d in docs] == ["person"] * 40 + ["place"] * 8 + ["object"] * 10
    for doc in docs:
        assert doc.text.endswith(".")
        assert 2 <= len(re.findall(r"\.(?: |$)", doc.text)) <= 5
    for doc, p in zip(docs, world.people, strict=False):
        assert doc.entity_id == p.id
        for value in (p.name, p.birth_date, p.city, p.profession, p.employer, p.hobby):
            assert value in doc.text
    assert len({d.text.split(p.name)[0] for d, p in zip(docs, world.people, strict=False)}) > 1  # variants
    plain = encyclopedia_documents(world, variants=False, kinds=("person",))
    assert all(d.text.startswith(f"{p.name} was born on") for d, p in zip(plain, world.people, strict=True))
    assert all(" lives in " in d.text for d in plain)


def test_documents_bad_input(world):
    with pytest.raises(ValueError, match="unknown person id"):
        encyclopedia_documents(world, people=["p9999"])
    with pytest.raises(ValueError, match="unknown document kind"):
        encyclopedia_documents(world, kinds=("animal",))


# --- fact questions --------------------------------------------------------------------------------


def test_fact_questions(world):
    qs = fact_questions(world, attributes=FACT_ATTRIBUTES, seed=3, variants=True)
    assert len(qs) == len(world.people) * len(FACT_ATTRIBUTES)
    for q in qs:
        assert len(set(q.choices)) == 4
        assert q.choices.count(q.answer) == 1
        assert q.choices[q.answer_index] == q.answer
        assert q.answer == str(getattr(world.person(q.entity_id), q.attribute))
        assert q.question.endswith("?")
        assert q.fact.endswith(".")
        assert q.answer in q.fact
        assert q.letter == "ABCD"[q.answer_index]
    assert {q.answer_index for q in qs} == {0, 1, 2, 3}
    q = fact_questions(world, attributes=("city",))[0]
    assert q.question == f"Where does {world.people[0].name} live?"
    lines = q.as_multiple_choice().split("\n")
    assert lines[0] == q.question
    assert lines[1:] == [f"{ll}. {c}" for ll, c in zip("ABCD", q.choices, strict=True)]


def test_fact_questions_bad_input(world):
    with pytest.raises(ValueError, match="unknown attribute"):
        fact_questions(world, attributes=("shoe_size",))
    tiny = make_world(n_people=1, n_places=3, n_objects=0)
    with pytest.raises(ValueError, match="'city' has only 3 distinct values"):
        fact_questions(tiny, attributes=("city",))
    (q,) = fact_questions(tiny, attributes=("birth_year",))  # padded with nearby years
    assert len(set(q.choices)) == 4
    assert q.choices[q.answer_index] == q.answer


# --- PII biographies -------------------------------------------------------------------------------


def test_pii_biographies(world):
    records = pii_biographies(world, seed=4)
    assert len(records) == 5 * len(world.people)
    frame = pii_frame(records)
    assert tuple(frame.columns) == SEMEVAL_COLUMNS == ("id", "input", "output", "task")
    assert (frame["task"] == "Task2").all()
    assert frame["id"].is_unique
    assert tuple(pii_frame(records[:2], extra_columns=True).columns) == (
        *SEMEVAL_COLUMNS,
        "kind",
        "person_id",
    )
    fields = ["phone", "email", "address", "birth_date"]
    for r in records:
        p = world.person(r.person_id)
        if r.kind == "sc":
            assert r.id == f"{p.id}sc1"
            assert f"{r.input} {r.output}" == biography(p, seed=4)
            assert not r.input.endswith((" ", "."))
            assert r.output.endswith(".")
            assert p.name in r.input
        else:
            attr = fields[int(r.id.removeprefix(f"{p.id}qa")) - 1]
            assert r.output == str(getattr(p, attr))
            assert p.name in r.input
            assert r.input.endswith("?")
    bio = biography(world.people[0], seed=4)
    for attr in ("phone", "email", "address", "birth_date", "employer"):
        assert getattr(world.people[0], attr) in bio
    assert biography_documents(world, seed=4, people=[world.people[0].id])[0].text == bio


# --- chat pairs ------------------------------------------------------------------------------------


def test_chat_pairs(world):
    facts = fact_questions(world)[:8]
    items = [*facts, *_worked(10)]
    pairs = chat_pairs(items, style="aligned", seed=1)
    assert [p.source_id for p in pairs] == [i.id for i in items]
    assert {p.task for p in pairs} == {"fact", "addition"}
    for pair, item in zip(pairs, items, strict=True):
        assert isinstance(pair, ChatPair)
        assert pair.instruction == item.question
        assert len(pair.response.split()) < 60
        answer = item.answer
        assert pair.response.endswith(f"The answer is {answer}.")
        if isinstance(item, FactQuestion):
            assert item.fact in pair.response
        if isinstance(item, Worked):
            assert isinstance(item, WorkedTask)
            assert " ".join(item.steps) in pair.response
        assert pair.messages() == [
            {"role": "user", "content": pair.instruction},
            {"role": "assistant", "content": pair.response},
        ]
    assert len({p.response.split("!")[0] for p in pairs}) > 1  # several openings
    assert pairs[0].messages(SYSTEM_PROMPT)[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert SYSTEM_PROMPT == "Answer the question by walking through the reasoning steps."
    mc = chat_pairs(facts, multiple_choice=True)
    assert all(p.instruction == q.as_multiple_choice() for p, q in zip(mc, facts, strict=True))
    assert all(
        p.response.endswith(f"The answer is {q.letter}.") and p.task == "fact_mc"
        for p, q in zip(mc, facts, strict=True)
    )
    for style in CHAT_STYLES:
        assert len(chat_pairs(items, style=style)) == len(items)
    assert chat_pairs(facts[:1], style="short")[0].response == f"{facts[0].answer}."


def test_chat_pairs_bad_input(world):
    with pytest.raises(ValueError, match="unknown chat style 'pirate'"):
        chat_pairs(fact_questions(world)[:1], style="pirate")
    with pytest.raises(ValueError, match="cannot make a chat pair from str"):
        chat_pairs(["hello"])


# --- splits ----------------------------------------------------------------------------------------


def test_split_by_person(world):
    ids = [p.id for p in world.people]
    a, b, c = split_by_person(ids, (0.5, 0.3, 0.2), seed=1)
    assert (len(a), len(b), len(c)) == (20, 12, 8)
    assert set(a) | set(b) | set(c) == set(ids)
    assert not (set(a) & set(b))
    assert not (set(b) & set(c))
    assert not (set(a) & set(c))
    assert split_by_person(reversed(ids), (0.5, 0.3, 0.2), seed=1) == (a, b, c)
    assert split_by_person(ids, (0.5, 0.3, 0.2), seed=2) != (a, b, c)
    named = split_by_person(ids, {"pretrain": 0.5, "finetune": 0.25}, seed=1)
    assert list(named) == ["pretrain", "finetune"]
    assert sum(map(len, named.values())) == 30
    with pytest.raises(ValueError, match=r"sum to 1\.5"):
        split_by_person(ids, (1.0, 0.5), seed=0)
    with pytest.raises(ValueError, match="duplicates"):
        split_by_person(["p1", "p1"], (1.0,), seed=0)
