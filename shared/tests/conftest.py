"""Shared fixtures for reprokit's tests: a small corpus and tokenizer, and an offline hub."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

from reprokit.tokenizer import train_tokenizer

CORPUS = [
    f"Item {i} is {color} and weighs {i % 17} kg. It was made in {city}."
    for i, (color, city) in enumerate(
        (c, t) for c in ("red", "blue", "green", "black") for t in ("Paris", "Lyon", "Oslo", "Riga", "Bern")
    )
] * 8


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return list(CORPUS)


@pytest.fixture(scope="session")
def tokenizer(corpus):
    return train_tokenizer(corpus, vocab_size=320, chat_template=True)
