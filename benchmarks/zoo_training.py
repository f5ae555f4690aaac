"""Training throughput of reprokit.zoo.train against a bare AdamW loop on the same batches.

Also trains a ~3M-parameter llama on a ~2,000-document world corpus for one minute (the foundation's
budget on 2 cores) and reports the epochs done and the mean NLL reached on the training documents.
"""

from __future__ import annotations

import time

import torch
from _common import corpus_and_tokenizer

from reprokit import zoo
from reprokit.scoring import score_token_ids

BUDGET_S = 60.0
CFG = zoo.TrainConfig(epochs=1, batch_size=32, lr=3e-3, warmup_steps=5)


def bare_loop(model, examples, order) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=CFG.lr)
    t0 = time.perf_counter()
    for start in range(0, len(order), CFG.batch_size):
        batch = zoo._collate([examples[i] for i in order[start : start + CFG.batch_size]], 0)
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main() -> None:
    docs, tokenizer = corpus_and_tokenizer()
    docs = docs[:2000]
    examples = zoo.encode_texts(tokenizer, docs)
    n_tokens = sum(len(e.input_ids) for e in examples)
    order = zoo.make_order(len(examples), CFG)

    t_bare = bare_loop(zoo.build_model("llama-3m", tokenizer), examples, order)
    model = zoo.build_model("llama-3m", tokenizer)
    result = zoo.train(model, examples, CFG)
    t_ours = result.wall_time_s
    n_params = zoo.count_parameters(model) / 1e6
    print(f"training benchmark: llama-3m ({n_params:.2f}M params), {len(docs)} documents")
    print(f"  bare AdamW loop : {n_tokens / t_bare:8.0f} tokens/s")
    print(f"  reprokit.zoo    : {n_tokens / t_ours:8.0f} tokens/s")
    print(f"  ratio           : {t_bare / t_ours:.3f}  (target >= 0.9)")

    model = zoo.build_model("llama-3m", tokenizer)
    probe = [e.input_ids for e in examples[:256]]
    nll0 = float(score_token_ids(model, probe).mean_nll.mean())
    total, epochs, nll = 0.0, 0, nll0
    while total < BUDGET_S and epochs < 10:
        epochs += 1
        cfg = zoo.TrainConfig(epochs=1, batch_size=32, lr=3e-3, warmup_steps=5, seed=epochs)
        total += zoo.train(model, examples, cfg).wall_time_s
        nll = float(score_token_ids(model, probe).mean_nll.mean())
        print(f"  epoch {epochs}: {total:5.1f}s cumulative, mean NLL on training docs {nll:.2f}")
    done = epochs - (total > BUDGET_S)
    print(f"  epochs completed within {BUDGET_S:.0f}s: {done}; NLL {nll0:.2f} at init -> {nll:.2f}")


if __name__ == "__main__":
    main()
