"""Tiny trained models for the nudging tests: two families (different tokenizers), cached per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from dataclasses import dataclass

import pytest

from nudging.world_reasoning import arithmetic_problems, coin_flip_tasks
from reprokit.lm import LanguageModel
from reprokit.tokenizer import train_tokenizer
from reprokit.world import (
    SYSTEM_PROMPT,
    WorldConfig,
    chat_pairs,
    encyclopedia_documents,
    fact_questions,
    make_world,
)
from reprokit.zoo import TrainConfig, encode_chats, encode_texts, train_cached


@dataclass
class Zoo:
    base: LanguageModel  # llama, tokenizer A, plain text only
    nudger_same: LanguageModel  # llama, tokenizer A, chat fine-tuned
    nudger_cross: LanguageModel  # gpt_neox, tokenizer B, chat fine-tuned
    questions: list[str]
    paths: dict[str, str]


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> Zoo:
    cache = tmp_path_factory.mktemp("zoo-cache")
    world = make_world(WorldConfig(seed=1, n_people=24))
    facts = fact_questions(world)
    problems = arithmetic_problems(90, seed=1, world=world)
    coins = coin_flip_tasks(30, seed=1, world=world)
    docs = [d.text for d in encyclopedia_documents(world, kinds=("person",))]
    qa = [
        f"{SYSTEM_PROMPT}\nQuestion: {p.instruction}\n{p.response}"
        for p in chat_pairs(facts[:48] + coins[:20], style="mixed")
    ]
    corpus = docs * 3 + [p.textbook for p in problems[:70]] + qa
    chats = [
        p.messages(system=SYSTEM_PROMPT)
        for p in chat_pairs(facts[48:] + problems[70:] + coins[20:], style="aligned")
    ]
    tok_a = train_tokenizer(corpus, vocab_size=420, chat_template=True)
    tok_b = train_tokenizer(corpus, vocab_size=640, chat_template=True)
    pre = TrainConfig(epochs=2.0, batch_size=16, lr=3e-3, seed=1)
    ft = TrainConfig(epochs=3.0, batch_size=8, lr=2e-3, seed=1)
    base = train_cached("llama-0.3m", tok_a, encode_texts(tok_a, corpus), pre, name="t-base", cache_dir=cache)
    small_a = train_cached(
        "llama-0.3m",
        tok_a,
        encode_texts(tok_a, corpus),
        TrainConfig(epochs=1.0, seed=2),
        name="t-sa",
        cache_dir=cache,
    )
    nudger_a = train_cached(small_a, tok_a, encode_chats(tok_a, chats), ft, name="t-na", cache_dir=cache)
    small_b = train_cached(
        "gpt_neox-0.3m",
        tok_b,
        encode_texts(tok_b, corpus),
        TrainConfig(epochs=1.0, seed=3),
        name="t-sb",
        cache_dir=cache,
    )
    nudger_b = train_cached(small_b, tok_b, encode_chats(tok_b, chats), ft, name="t-nb", cache_dir=cache)
    questions = [facts[0].question, problems[-1].question, coins[-1].question, facts[60].as_multiple_choice()]
    return Zoo(
        base.load(),
        nudger_a.load(),
        nudger_b.load(),
        questions,
        {"base": str(base.path), "nudger_same": str(nudger_a.path), "nudger_cross": str(nudger_b.path)},
    )
