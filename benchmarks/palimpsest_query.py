"""Query-test throughput (examples/s) against a bare batched forward pass on the same tokens, and n-gram
lookups per second of the in-memory index.

Prints both throughputs and their ratio (the query test scores each example and runs Spearman; the target
is a ratio of at least 0.8), then greedy longest-match lookups per second.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _common import bare_forward, compare, corpus_and_tokenizer, padded_batches

from palimpsest import NGramIndex, QueryConfig, Transcript, query_test
from reprokit import zoo
from reprokit.lm import LanguageModel

N_EXAMPLES = 512
BATCH = 32


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny models on a shared CPU: one thread avoids OpenMP spinning noise
    docs, tokenizer = corpus_and_tokenizer()
    sequences = [tokenizer(d).input_ids for d in docs[:N_EXAMPLES]]
    model = zoo.build_model("llama-3m", tokenizer).eval()
    transcript = Transcript(
        positions=np.random.default_rng(0).permutation(N_EXAMPLES),
        token_ids=tuple(tuple(s) for s in sequences),
        tokenizer=tokenizer,
    )
    bare = bare_forward(model, padded_batches(sequences, BATCH))

    config = QueryConfig(batch_size=BATCH)

    def ours() -> None:
        query_test(transcript, LanguageModel(model, tokenizer), config=config)

    t_bare, t_ours = compare(bare, ours, repeats=5)
    print(f"bare forward : {N_EXAMPLES / t_bare:9.1f} examples/s")
    print(f"query test   : {N_EXAMPLES / t_ours:9.1f} examples/s (no reference)")
    print(f"ratio        : {t_bare / t_ours:9.3f}  (target >= 0.8)")

    # n-gram lookups: index ~10x the corpus (tiled with random steps), query random positions
    docs_ids = [list(s) for s in sequences] * 10
    index = NGramIndex(docs_ids, np.arange(len(docs_ids)) // 16, max_n=8)
    rng = np.random.default_rng(1)
    queries = [sequences[i] for i in rng.integers(0, N_EXAMPLES, 200)]
    t0 = time.perf_counter()
    n = 0
    for q in queries:
        for p in range(len(q)):
            index.longest_match(q, p)
            n += 1
    dt = time.perf_counter() - t0
    print(f"n-gram index : {index.n_tokens} tokens; {n / dt:9.0f} longest-match lookups/s")


if __name__ == "__main__":
    main()
