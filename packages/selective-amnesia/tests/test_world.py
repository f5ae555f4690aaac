"""The tiny SemEval-2025 Task 4 world: determinism, splits, row/document contract, knowledge test, config."""

from __future__ import annotations

import collections
import hashlib
import itertools
import os
import re
import statistics
import subprocess
import sys

import pytest
from rouge_score import rouge_scorer

from reprokit.errors import ConfigError
from selective_amnesia.records import probe_of
from selective_amnesia.world import (
    _COUNTRIES,
    _MATERIALS,
    _RIVERS,
    MC_LETTERS,
    TASKS,
    AmnesiaWorld,
    AmnesiaWorldConfig,
    make_amnesia_world,
    make_world,
    mc_block,
    world_frames,
)

KNOWLEDGE_PATTERNS = (
    (re.compile(r"In which country is the city of (.+)\?"), _COUNTRIES),
    (re.compile(r"Which river flows through (.+)\?"), _RIVERS),
    (re.compile(r"What is the (.+) made of\?"), _MATERIALS),
)


@pytest.fixture(scope="module")
def world() -> AmnesiaWorld:
    return make_amnesia_world()


def _docs(world: AmnesiaWorld) -> dict[str, str]:
    return {d.id: d.text for d in world.documents}


def _doc_id(row_id: str) -> str:
    return row_id[:-3]


def _entity(question: str) -> tuple[str, tuple[str, ...]]:
    for pattern, pool in KNOWLEDGE_PATTERNS:
        match = pattern.fullmatch(question)
        if match:
            return match.group(1), pool
    raise AssertionError(f"unexpected knowledge question {question!r}")


def _mentions(name: str, text: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_same_world_and_other_seed_differs(world):
    again = make_world(AmnesiaWorldConfig())
    assert again == world
    assert repr(again) == repr(world)
    other = make_amnesia_world(seed=1)
    assert other.forget != world.forget
    assert set(other.knowledge_corpus) != set(world.knowledge_corpus)
    assert {d.text for d in other.documents}.isdisjoint(d.text for d in world.documents)


def test_world_is_byte_identical_in_a_fresh_process(world):
    code = (
        "import hashlib; from selective_amnesia.world import make_amnesia_world; "
        "print(hashlib.sha256(repr(make_amnesia_world()).encode()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert out.stdout.strip() == hashlib.sha256(repr(world).encode()).hexdigest()


# --------------------------------------------------------------------------------------------- splits
def test_forget_and_retain_are_disjoint_and_about_one_to_one(world):
    cfg = world.config
    forget_ids, retain_ids = {r.id for r in world.forget}, {r.id for r in world.retain}
    assert len(forget_ids) == len(world.forget) and len(retain_ids) == len(world.retain)
    assert forget_ids.isdisjoint(retain_ids)
    assert {_doc_id(i) for i in forget_ids}.isdisjoint(_doc_id(i) for i in retain_ids)
    assert {r.split for r in world.forget} == {"forget"} and {r.split for r in world.retain} == {"retain"}
    sizes = dict(zip(TASKS, (cfg.n_creative, cfg.n_people, cfg.n_encyclopedia), strict=True))
    for task, n in sizes.items():
        docs = [d for d in world.documents if d.task == task]
        assert len(docs) == n
        assert collections.Counter(d.split for d in docs) == {"forget": n // 2, "retain": n - n // 2}
        assert sum(r.task == task for r in world.forget) == sum(r.task == task for r in world.retain)
    texts = [d.text for d in world.documents]
    assert len(set(texts)) == len(texts)
    assert {d.id for d in world.documents} == {_doc_id(r.id) for r in world.rows}


def test_uneven_fraction_rounds_and_keeps_both_sides():
    w = make_amnesia_world(n_creative=5, n_people=4, n_encyclopedia=3, forget_fraction=0.3, n_knowledge=4)
    counts = collections.Counter((d.task, d.split) for d in w.documents)
    assert counts == {
        ("Task1", "forget"): 2, ("Task1", "retain"): 3,
        ("Task2", "forget"): 1, ("Task2", "retain"): 3,
        ("Task3", "forget"): 1, ("Task3", "retain"): 2,
    }  # fmt: skip


def test_members_are_the_forget_documents_and_nonmembers_are_never_trained(world):
    assert world.members == tuple(d.text for d in world.documents if d.split == "forget")
    assert len(world.nonmembers) == 3 * world.config.n_nonmember_per_task
    assert collections.Counter(d.task for d in world.nonmember_documents) == dict.fromkeys(TASKS, 8)
    trained = [p + c for p, c in world.training_texts()]
    for text in world.nonmembers:
        assert not any(text in t or t in text for t in trained)
    assert {d.id for d in world.nonmember_documents}.isdisjoint(_doc_id(r.id) for r in world.rows)
    # the people of nonmember biographies are never named in anything the model is trained on
    for doc in world.nonmember_documents:
        if doc.task == "Task2":
            name = re.match(r"(?:The date of birth of )?([A-Z][a-z]+ [A-Z][a-z]+)", doc.text).group(1)
            assert not any(_mentions(name, t) for t in trained), name


# ------------------------------------------------------------------------------ rows and documents
def test_every_id_has_a_probe_suffix_and_the_official_qa_counts(world):
    ids = [r.id for r in world.rows]
    assert len(set(ids)) == len(ids)
    assert all(probe_of(i) in ("sc", "qa") for i in ids)
    per_doc = collections.defaultdict(list)
    for row in world.rows:
        per_doc[_doc_id(row.id)].append(row.id[-3:])
    for doc in world.documents:
        expected = ["sc1", *(f"qa{k}" for k in range(5 if doc.task == "Task2" else 1))]
        assert per_doc[doc.id] == expected, doc.id


def test_sentence_completion_rows_split_their_document(world):
    docs = _docs(world)
    for row in world.rows:
        if row.probe == "sc":
            assert row.input and row.output
            assert row.input + " " + row.output == docs[_doc_id(row.id)]
            assert row.input == row.input.strip() and row.output == row.output.strip()


def test_task2_sentence_completion_stops_just_before_a_pii_value(world):
    answers = collections.defaultdict(set)
    for row in world.rows:
        if row.task == "Task2" and row.probe == "qa":
            answers[_doc_id(row.id)].add(row.output)
    for row in world.rows:
        if row.task == "Task2" and row.probe == "sc":
            assert any(row.output.startswith(a) for a in answers[_doc_id(row.id)]), row


def test_qa_answers_occur_in_their_document(world):
    docs = _docs(world)
    for row in world.rows:
        if row.probe == "qa":
            assert row.output and row.output in docs[_doc_id(row.id)], row
            assert row.input.endswith("?")


def test_task1_and_task3_questions(world):
    docs = _docs(world)
    for row in world.rows:
        if row.probe != "qa" or row.task == "Task2":
            continue
        if row.task == "Task1":
            title = re.fullmatch(r"Who is the main character of (.+)\?", row.input).group(1)
            assert title in docs[_doc_id(row.id)] and len(row.output.split()) == 2
        else:
            assert re.fullmatch(
                r"In which year was .+ founded\?|Who founded .+\?|What does the .+ feed on\?", row.input
            )
    kinds = collections.Counter(
        r.input.split()[0] for r in world.rows if r.task == "Task3" and r.probe == "qa"
    )
    assert set(kinds) == {"In", "Who", "What"}


def test_pii_formats_have_an_informative_first_token(world):
    qa = [r for r in world.rows if r.task == "Task2" and r.probe == "qa"]
    by_field = collections.defaultdict(list)
    for row in qa:
        by_field[row.id[-1]].append(row.output)
    patterns = {
        "0": r"(January|February|March|April|May|June|July|August|September|October|November|December)"
        r" \d{1,2}, \d{4}",
        "1": r"\d{3}-\d{2}-\d{4}",
        "2": r"\d{3}-\d{3}-\d{4}",
        "3": r"[a-z]+\d\d@example\.(com|org|net)",
        "4": r"\d{1,3} .+, .+",
    }
    for field, pattern in patterns.items():
        values = by_field[field]
        assert len(values) == world.config.n_people
        assert all(re.fullmatch(pattern, v) for v in values), (field, values[:3])
        assert len(set(values)) == len(values)
        first_chars = {v.split()[0][:1] if field != "0" else v.split()[0] for v in values}
        assert len(first_chars) >= 5, (field, first_chars)


def test_names_are_unique_but_first_and_last_names_repeat(world):
    names = [
        re.fullmatch(r"What is (.+)'s date of birth\?", r.input).group(1)
        for r in world.rows
        if r.id.endswith("qa0") and r.task == "Task2"
    ]
    heroes = [r.output for r in world.rows if r.task == "Task1" and r.probe == "qa"]
    assert len(set(names + heroes)) == len(names + heroes)
    firsts = collections.Counter(n.split()[0] for n in names + heroes)
    lasts = collections.Counter(n.split()[1] for n in names + heroes)
    assert len(firsts) <= len(names + heroes) / 2 and firsts.most_common(1)[0][1] >= 3
    assert len(lasts) < len(names + heroes) and lasts.most_common(1)[0][1] >= 2


def test_trace_facts_are_the_task2_questions_of_forget_and_retain_people(world):
    qa = [r for r in world.rows if r.task == "Task2" and r.probe == "qa"]
    assert len(world.trace_facts) == len(qa) == 5 * world.config.n_people
    by_id = {r.id: r for r in qa}
    docs = _docs(world)
    splits = collections.Counter()
    for fact in world.trace_facts:
        row = by_id[fact.id]
        assert fact.prompt == row.input and fact.answer == " " + row.output
        assert fact.subject in fact.prompt and fact.subject in docs[_doc_id(fact.id)]
        assert fact.prompt.index(fact.subject) + len(fact.subject) < len(fact.prompt) - 1  # subject first
        assert fact.answer.startswith(" ") and not fact.answer.startswith("  ")
        splits[row.split] += 1
    assert splits == {"forget": 100, "retain": 100}


def test_stories_are_short_and_distinct(world):
    stories = [d.text for d in world.documents if d.task == "Task1"]
    lengths = [len(re.findall(r"[.!?](?= |$)", s)) for s in stories]
    assert min(lengths) >= 4 and max(lengths) <= 6
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    scores = [scorer.score(a, b)["rougeL"].fmeasure for a, b in itertools.combinations(stories, 2)]
    assert statistics.mean(scores) < 0.35
    assert max(scores) < 0.6


# ------------------------------------------------------------------------------------------ training
def test_training_texts_hold_documents_qa_pairs_and_knowledge(world):
    pairs = world.training_texts()
    assert pairs[: len(world.documents)] == [("", d.text) for d in world.documents]
    qa_pairs = [(r.input, " " + r.output) for r in world.rows if r.probe == "qa"]
    assert pairs[len(world.documents) : len(world.documents) + len(qa_pairs)] == qa_pairs
    assert pairs[len(world.documents) + len(qa_pairs) :] == [("", t) for t in world.knowledge_corpus]
    assert world.training_texts(knowledge=False) == pairs[: len(world.documents) + len(qa_pairs)]
    assert not any(r.input == p for r in world.rows if r.probe == "sc" for p, _ in pairs)
    assert world.training_documents() == [t for p, t in pairs if not p]
    assert [(p, " " + c) for p, c in world.training_pairs()] == qa_pairs
    size = world.size()
    assert size["texts"] == len(pairs)
    assert size["words"] == sum(len((p + c).split()) for p, c in pairs) < 12_000  # tiny-model sized


# ------------------------------------------------------------------------------------------ knowledge
def test_knowledge_questions_are_four_choice_and_letters_balanced(world):
    assert len(world.knowledge) == 80 and len(world.knowledge_shots) == 5
    for q in (*world.knowledge, *world.knowledge_shots):
        _, pool = _entity(q.question)
        assert len(q.choices) == 4 and len(set(q.choices)) == 4
        assert set(q.choices) <= set(pool)
    letters = collections.Counter(q.answer for q in world.knowledge)
    assert letters == dict.fromkeys(range(4), 20)
    shot_letters = collections.Counter(q.answer for q in world.knowledge_shots)
    assert max(shot_letters.values()) - min(shot_letters.values()) <= 1 and len(shot_letters) == 4
    other = make_amnesia_world(seed=3)
    assert [q.answer for q in other.knowledge] != [q.answer for q in world.knowledge]


def test_knowledge_is_about_entities_outside_forget_and_retain(world):
    entities = [_entity(q.question)[0] for q in (*world.knowledge, *world.knowledge_shots)]
    assert len(set(entities)) == len(entities)
    texts = [d.text for d in (*world.documents, *world.nonmember_documents)]
    texts += [r.input + " " + r.output for r in world.rows]
    for entity in entities:
        assert not any(_mentions(entity, t) for t in texts), entity


def test_knowledge_facts_are_stated_in_the_corpus_without_leaking_test_answers(world):
    statements = [t for t in world.knowledge_corpus if "\nAnswer: " not in t]
    for q in (*world.knowledge, *world.knowledge_shots):
        entity, _ = _entity(q.question)
        gold = q.choices[q.answer]
        assert any(_mentions(entity, s) and _mentions(gold, s) for s in statements), q
    worked = [t for t in world.knowledge_corpus if "\nAnswer: " in t]
    assert len(worked) == 5 + world.config.n_knowledge_practice
    for text in worked:
        assert re.fullmatch(r"[^\n]+\?\nA\. [^\n]+\nB\. [^\n]+\nC\. [^\n]+\nD\. [^\n]+\nAnswer: [ABCD]", text)
    for shot in world.knowledge_shots:
        assert mc_block(shot) in worked
    for q in world.knowledge:
        assert not any(q.question in t for t in worked)


def test_mc_block_format():
    from selective_amnesia.records import MCQuestion

    q = MCQuestion("What is the Quill lamp made of?", ("wood", "glass", "clay", "stone"), 1)
    assert mc_block(q) == "What is the Quill lamp made of?\nA. wood\nB. glass\nC. clay\nD. stone\nAnswer: B"
    assert mc_block(q, with_answer=False).endswith("\nD. stone\nAnswer:")
    assert MC_LETTERS == ("A", "B", "C", "D")


# ------------------------------------------------------------------------------------------- frames
def test_world_frames(world):
    forget, retain = world_frames(world)
    assert list(forget.columns) == ["id", "input", "output", "task", "split"]
    assert len(forget) == len(world.forget) and len(retain) == len(world.retain)
    assert forget.iloc[0].tolist() == list(vars(world.forget[0]).values())
    assert set(retain["split"]) == {"retain"} and set(forget["task"]) == set(TASKS)


# ------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"seed": True}, "seed must be an int"),
        ({"seed": "0"}, "seed must be an int"),
        ({"n_people": 1}, "n_people must be an integer between 2"),
        ({"n_creative": 2.0}, "n_creative must be an integer"),
        ({"n_nonmember_per_task": 0}, "n_nonmember_per_task"),
        ({"n_knowledge": 0}, "n_knowledge must be"),
        ({"n_knowledge_shots": -1}, "n_knowledge_shots"),
        ({"forget_fraction": 1.0}, "strictly between 0 and 1"),
        ({"forget_fraction": 0}, "strictly between 0 and 1"),
        ({"forget_fraction": 0.1, "n_creative": 4}, "Task1 with 0 forget"),
        ({"forget_fraction": 0.9, "n_encyclopedia": 4}, "Task3 with 4 forget and 0 retain"),
    ],
)
def test_config_validation(overrides, match):
    with pytest.raises(ConfigError, match=match):
        AmnesiaWorldConfig(**overrides)


def test_make_world_rejects_unknown_fields_and_wrong_config():
    with pytest.raises(ConfigError, match="unknown AmnesiaWorldConfig field"):
        make_amnesia_world(n_persons=3)
    with pytest.raises(ConfigError, match="must be an AmnesiaWorldConfig"):
        make_amnesia_world({"seed": 0})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_people"):
        make_amnesia_world(n_people=0)


def test_smallest_world_builds():
    w = make_amnesia_world(
        n_creative=2, n_people=2, n_encyclopedia=2, n_nonmember_per_task=1,
        n_knowledge=1, n_knowledge_shots=0, n_knowledge_practice=0,
    )  # fmt: skip
    assert len(w.documents) == 6 and len(w.nonmembers) == 3 and len(w.knowledge) == 1
    assert len(w.trace_facts) == 10 and not w.knowledge_shots
