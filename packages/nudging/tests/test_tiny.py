"""The tiny world's design: the premises nudging needs are built into the data (no training here)."""

from __future__ import annotations

import dataclasses

import pytest

from nudging.tasks import score
from nudging.tiny import BIO_SENTENCES, FACT_PARAPHRASES, LEAD_INS, TinyConfig, build_data
from reprokit.zoo import TrainConfig

CONFIG = TinyConfig(
    n_people=30,
    n_arithmetic=20,
    n_symbolic=6,
    n_eval=4,
    n_align_arithmetic=4,
    n_align_symbolic=2,
    doc_repeats=2,
    small_doc_repeats=1,
    n_arithmetic_qa=5,
    qa_repeats=1,
)


def test_build_data_is_deterministic() -> None:
    a, b = build_data(CONFIG), build_data(CONFIG)
    assert a.pretrain_texts == b.pretrain_texts
    assert a.alignment_chats == b.alignment_chats
    assert a.probes == b.probes


def test_facts_are_stated_with_full_names_and_the_large_corpus_holds_more() -> None:
    data = build_data(CONFIG)
    big = " ".join(data.pretrain_texts)
    small = " ".join(data.small_pretrain_texts)
    facts = [p for p in data.probes if p.kind == "fact"]
    assert facts
    for p in facts:  # every evaluation fact is in the large model's corpus, in the probe's wording
        assert f"{p.prompt} " in big
        assert (f"{p.prompt} " in small) == p.known_to_small
    assert any(not p.known_to_small for p in facts)
    assert sum(t.count(" lives in ") for t in data.pretrain_texts) > 2 * small.count(" lives in ")


def test_facts_come_in_several_wordings_and_names_are_unambiguous() -> None:
    data = build_data(CONFIG)
    big = " ".join(data.pretrain_texts)
    used = {  # the city wordings the corpus uses for anyone (canonical first)
        w
        for p in data.world.people
        for w in FACT_PARAPHRASES["city"]
        if w.format(name=p.name, value=p.city) in big
    }
    assert FACT_PARAPHRASES["city"][0] in used and len(used) >= 3
    assert any(b.split("{name}")[1].split("{")[0] in big for b in BIO_SENTENCES)
    firsts = [p.first_name for p in data.world.people]
    lasts = [p.last_name for p in data.world.people]
    assert len(set(firsts)) == len(firsts) and len(set(lasts)) == len(lasts)


def test_plain_answers_have_lead_ins_and_few_aligned_openings() -> None:
    from reprokit.world.chat import ALIGNED_OPENINGS

    config = dataclasses.replace(CONFIG, lead_in_share=0.5, opening_share=0.1)
    texts = build_data(config).pretrain_texts
    answers = [t for t in texts if "Question: " in t]
    lead = sum(any(f"\n{x} " in t for x in LEAD_INS) for t in answers)
    opened = sum(any(f"\n{x} " in t for x in ALIGNED_OPENINGS) for t in answers)
    assert 0 < opened < lead < len(answers)
    assert 0.05 < opened / len(answers) < 0.2


def test_chat_format_only_in_alignment_and_answers_are_scorable() -> None:
    data = build_data(CONFIG)
    assert not any("<|" in t for t in data.pretrain_texts)
    for chat in data.alignment_chats:
        assert chat[-1]["role"] == "assistant" and "The answer is " in chat[-1]["content"]
    for item in data.tasks["fact_open"]:
        fact = f"Someone lives in {item.answer}. The answer is {item.answer}."
        assert score(item, fact)
    for item in data.tasks["arithmetic"]:
        assert score(item, f"So the answer is {item.answer}.")


def test_the_seed_builds_another_world() -> None:
    a, b = build_data(CONFIG, seed=0), build_data(CONFIG, seed=1)
    assert a.pretrain_texts != b.pretrain_texts
    assert [i.question for i in a.tasks["arithmetic"]] != [i.question for i in b.tasks["arithmetic"]]
    assert build_data(CONFIG).probes == a.probes  # seed 0 by default: the committed world


def test_training_is_seeded_by_the_run_seed_only() -> None:
    with pytest.raises(ValueError, match="remove `seed` from finetune"):
        TinyConfig(finetune=TrainConfig(seed=3))
    assert CONFIG.train_config("finetune", 7).seed == 7
    assert CONFIG.train_config("finetune", 7).lr == CONFIG.finetune.lr
