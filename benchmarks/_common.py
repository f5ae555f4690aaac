"""Helpers shared by the benchmark scripts: a small world corpus and its tokenizer, best-of-N timing."""

from __future__ import annotations

import time
from collections.abc import Callable

from reprokit.tokenizer import train_tokenizer
from reprokit.world import WorldConfig, encyclopedia_documents, make_world


def world_corpus(n_people: int = 1936, seed: int = 0) -> list[str]:
    """About 2,000 encyclopedic documents from a seeded world."""
    world = make_world(WorldConfig(seed=seed, n_people=n_people, n_places=24, n_objects=40))
    return [d.text for d in encyclopedia_documents(world)]


def corpus_and_tokenizer(n_people: int = 1936, vocab_size: int = 1024):
    docs = world_corpus(n_people)
    return docs, train_tokenizer(docs, vocab_size=vocab_size)


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest wall time of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
