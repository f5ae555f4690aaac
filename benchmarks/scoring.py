"""Throughput of reprokit.scoring against a bare batched forward pass on the same tokens (the ceiling).

Prints tokens per second of both and their ratio; the target is a ratio of at least 0.9.
"""

from __future__ import annotations

import torch
from _common import best_of, corpus_and_tokenizer

from reprokit import zoo
from reprokit.scoring import score_token_ids

BATCH = 32


def main() -> None:
    torch.manual_seed(0)
    docs, tokenizer = corpus_and_tokenizer()
    sequences = [tokenizer(d).input_ids for d in docs[:512]]
    n_tokens = sum(len(s) for s in sequences)
    model = zoo.build_model("llama-3m", tokenizer).eval()

    batches = []
    for start in range(0, len(sequences), BATCH):
        chunk = sequences[start : start + BATCH]
        width = max(map(len, chunk))
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        batches.append((ids, mask))

    @torch.no_grad()
    def bare() -> None:
        for ids, mask in batches:
            model(input_ids=ids, attention_mask=mask).logits  # noqa: B018 - the forward pass is the point

    def ours() -> None:
        score_token_ids(model, sequences, batch_size=BATCH)

    t_bare, t_ours = best_of(bare), best_of(ours)
    print(f"scoring benchmark: {len(sequences)} sequences, {n_tokens} tokens, llama-3m, batch {BATCH}")
    print(f"  bare forward : {n_tokens / t_bare:10.0f} tokens/s")
    print(f"  reprokit     : {n_tokens / t_ours:10.0f} tokens/s")
    print(f"  ratio        : {t_bare / t_ours:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
