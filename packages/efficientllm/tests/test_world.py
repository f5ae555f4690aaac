"""The tiny world: deterministic, disjoint train/held-out texts, well-formed and balanced tasks."""

from __future__ import annotations

from collections import Counter

import pytest

from efficientllm.evaluation import MCItem
from efficientllm.world import TASK_KINDS, TinyWorldConfig, make_tiny_world
from reprokit.errors import ConfigError

SMALL = TinyWorldConfig(
    n_people=40,
    n_places=8,
    n_countries=5,
    fact_repeats=2,
    n_sum_docs=60,
    n_count_docs=60,
    n_grammar_docs=60,
    n_category_docs=30,
    heldout_fraction=0.2,
    items_per_task=40,
)


@pytest.fixture(scope="module")
def tw():
    return make_tiny_world(SMALL)


def test_deterministic_and_seed_dependent(tw):
    again = make_tiny_world(SMALL)
    assert again.train_texts == tw.train_texts
    assert again.heldout_texts == tw.heldout_texts
    assert again.tasks == tw.tasks
    other = make_tiny_world(TinyWorldConfig(**{**SMALL.__dict__, "seed": 1}))
    assert other.train_texts != tw.train_texts


def test_train_and_heldout_disjoint_and_same_families(tw):
    assert tw.heldout_texts and tw.train_texts
    assert not set(tw.train_texts) & set(tw.heldout_texts)
    joined = " ".join(tw.heldout_texts)
    for marker in (" plus ", "I see ", " lives in "):
        assert marker in joined


def test_tasks_well_formed_and_balanced(tw):
    assert tuple(tw.tasks) == TASK_KINDS
    for name, items in tw.tasks.items():
        assert len(items) == SMALL.items_per_task, name
        for item in items:
            assert isinstance(item, MCItem)
            assert len(item.choices) == SMALL.n_choices
            assert len(set(item.choices)) == len(item.choices), (name, item)
        counts = Counter(item.answer for item in items)
        assert max(counts.values()) - min(counts.values()) <= 1, (name, counts)


def test_fact_answers_are_stated_in_training_text(tw):
    """Fact completion: the gold continuation appears in training, the distractors for that person do not."""
    corpus = " ".join(tw.train_texts)
    for item in tw.tasks["fact_completion"]:
        gold = f"{item.context} {item.choices[item.answer]}"
        assert gold in corpus
        for j, choice in enumerate(item.choices):
            if j != item.answer:
                assert f"{item.context} {choice}" not in corpus


def test_knowledge_pairs_not_asked_in_training(tw):
    """The MMLU analogue asks facts that training states declaratively but never in question form."""
    corpus = "\n".join(tw.train_texts)
    for item in tw.tasks["knowledge"]:
        assert item.context not in corpus
        assert item.context.startswith("Question: ")
    assert "Question: " in corpus  # the format itself is taught by the other pairs


def test_arithmetic_and_counting_golds_are_correct(tw):
    for item in tw.tasks["arithmetic"]:
        a, _, b, _ = item.context.split()
        assert item.choices[item.answer] == f"{int(a) + int(b)}."
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    for item in tw.tasks["counting"]:
        n = len(item.context.removeprefix("I see ").split(".")[0].split())
        assert item.choices[item.answer].split()[0] == words[n]


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="qa_fraction"):
        TinyWorldConfig(qa_fraction=1.0)
