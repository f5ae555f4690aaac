"""Throughput of reprokit.scoring against a bare batched forward pass on the same tokens (the ceiling).

Prints tokens per second of both and their ratio; the target is a ratio of at least 0.9.
"""

from __future__ import annotations

import torch
from _common import bare_forward, compare, corpus_and_tokenizer, padded_batches

from reprokit import zoo
from reprokit.scoring import score_token_ids

BATCH = 32


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny models: one thread gives stable timings on a shared CPU
    docs, tokenizer = corpus_and_tokenizer()
    sequences = [tokenizer(d).input_ids for d in docs[:512]]
    n_tokens = sum(len(s) for s in sequences)
    model = zoo.build_model("llama-3m", tokenizer).eval()

    bare = bare_forward(model, padded_batches(sequences, BATCH))

    def ours() -> None:
        score_token_ids(model, sequences, batch_size=BATCH)

    t_bare, t_ours = compare(bare, ours, repeats=5)
    print(f"scoring benchmark: {len(sequences)} sequences, {n_tokens} tokens, llama-3m, batch {BATCH}")
    print(f"  bare forward : {n_tokens / t_bare:10.0f} tokens/s")
    print(f"  reprokit     : {n_tokens / t_ours:10.0f} tokens/s")
    print(f"  ratio        : {t_bare / t_ours:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
