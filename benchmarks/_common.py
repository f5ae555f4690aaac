"""Helpers shared by the benchmarks: a world corpus and tokenizer, a bare-forward baseline, fair timing."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from reprokit.tokenizer import train_tokenizer
from reprokit.world import WorldConfig, encyclopedia_documents, make_world


def world_corpus(n_people: int = 1936, seed: int = 0) -> list[str]:
    """About 2,000 encyclopedic documents from a seeded world."""
    world = make_world(WorldConfig(seed=seed, n_people=n_people, n_places=24, n_objects=40))
    return [d.text for d in encyclopedia_documents(world)]


def corpus_and_tokenizer(n_people: int = 1936, vocab_size: int = 1024):
    docs = world_corpus(n_people)
    return docs, train_tokenizer(docs, vocab_size=vocab_size)


Batch = tuple[torch.Tensor, torch.Tensor]


def padded_batches(sequences: list[list[int]], batch_size: int) -> list[Batch]:
    """Right-padded (input_ids, attention_mask) batches: the input of a bare forward-pass baseline."""
    batches = []
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        width = max(map(len, chunk))
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        batches.append((ids, mask))
    return batches


def bare_forward(model: torch.nn.Module, batches: list[Batch]) -> Callable[[], None]:
    """A callable running the model over `batches` with no grad: the ceiling scoring is measured against."""

    @torch.no_grad()
    def run() -> None:
        for ids, mask in batches:
            model(input_ids=ids, attention_mask=mask)

    return run


def compare(*fns: Callable[[], object], repeats: int = 3) -> list[float]:
    """Fastest wall time of each function, measured in interleaved rounds after one warm-up call each.

    Interleaving spreads slow phases of a shared machine over all candidates, so their ratio is fair.
    """
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best
