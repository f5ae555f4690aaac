"""selective-amnesia's three speed-ups, each a ratio against its baseline in the same run (issue 9).

1. Batched causal tracing against ROME's one-restoration-per-pass loop on the same facts and noise
   (target: 5x or more, equal scores).
2. Batched SemEval scoring (left-padded greedy generation) against one example at a time (target 5x, equal
   generations).
3. A constrained-unlearning step (MLPs of two layers) against a full fine-tuning step of the same model
   (reported; back-propagation still runs through every layer, so the saving is the weight gradients and
   the optimizer state).

Run it on an otherwise idle machine: ``python benchmarks/selective_amnesia_speed.py``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _common import compare

from reprokit.lm import LanguageModel
from reprokit.tokenizer import train_tokenizer
from reprokit.zoo import Recipe, build_model
from selective_amnesia.scoring import ScoreConfig, generate_answers
from selective_amnesia.tracing import TracingConfig, trace_fact
from selective_amnesia.tracing_loop import trace_fact_loop
from selective_amnesia.unlearning import UnlearnConfig, freeze, select_parameters
from selective_amnesia.world import AmnesiaWorldConfig, make_world

KINDS = ("hidden", "mlp", "attn")


def _model(world) -> LanguageModel:
    texts = [r.input + " " + r.output for r in (*world.forget, *world.retain)]
    tokenizer = train_tokenizer(texts, vocab_size=600, chat_template=True)
    model = build_model(Recipe("olmo-bench", "olmo", 128, 6, 4, 512, 256), tokenizer, seed=0).eval()
    return LanguageModel(model, tokenizer)


def bench_tracing(lm: LanguageModel, facts) -> None:
    config = TracingConfig(samples=10, window=3, require_argmax=False)
    batched_out: list[np.ndarray] = []
    loop_out: list[np.ndarray] = []

    def batched() -> None:
        batched_out.clear()
        for fact in facts:
            result = trace_fact(lm, fact, config, noise_std=0.5)
            batched_out.extend(result[k].scores for k in KINDS)

    def loop() -> None:
        loop_out.clear()
        for fact in facts:
            loop_out.extend(trace_fact_loop(lm, fact, k, config, 0.5)[1] for k in KINDS)

    t_loop, t_batched = compare(loop, batched, repeats=2)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(batched_out, loop_out, strict=True))
    print(f"tracing: {len(facts)} facts x 3 kinds, 10 samples, window 3")
    print(f"  one restoration per pass : {t_loop:7.2f} s")
    print(f"  batched                  : {t_batched:7.2f} s")
    print(f"  speed-up                 : {t_loop / t_batched:.1f}x (target >= 5x)")
    print(f"  max |score difference|   : {diff:.1e}")


def bench_scoring(lm: LanguageModel, rows) -> None:
    batched_cfg = ScoreConfig(max_new_tokens=48, batch_size=32)
    single_cfg = ScoreConfig(max_new_tokens=48, batch_size=1)
    out: dict[str, list[str]] = {}

    def batched() -> None:
        out["batched"] = generate_answers(lm, rows, batched_cfg)

    def single() -> None:
        out["single"] = generate_answers(lm, rows, single_cfg)

    t_single, t_batched = compare(single, batched, repeats=2)
    same = sum(a == b for a, b in zip(out["batched"], out["single"], strict=True))
    print(f"scoring: greedy generation of {len(rows)} rows, up to 48 new tokens")
    print(f"  one example at a time : {t_single:7.2f} s")
    print(f"  batched (32)          : {t_batched:7.2f} s")
    print(f"  speed-up              : {t_single / t_batched:.1f}x (target >= 5x); {same}/{len(rows)} equal")


def _step_seconds(lm: LanguageModel, config: UnlearnConfig | None, steps: int = 20) -> float:
    model = lm.model
    for p in model.parameters():
        p.requires_grad_(True)
    if config is not None:
        freeze(model, select_parameters(model, config))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(3, len(lm.tokenizer), (12, 64), generator=torch.Generator().manual_seed(0))
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    return (time.perf_counter() - start) / steps


def bench_step(lm: LanguageModel) -> None:
    constrained = UnlearnConfig(layers=(0, 1), module_kind="mlp")
    _step_seconds(lm, None, steps=3)
    t_full = min(_step_seconds(lm, None) for _ in range(2))
    t_constrained = min(_step_seconds(lm, constrained) for _ in range(2))
    print("training step: 12 x 64 tokens, AdamW")
    print(f"  full fine-tuning            : {t_full * 1e3:7.1f} ms")
    print(f"  constrained (MLP, 2 layers) : {t_constrained * 1e3:7.1f} ms")
    print(f"  ratio constrained / full    : {t_constrained / t_full:.2f}")


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny models: one thread gives stable timings on a shared CPU
    world = make_world(AmnesiaWorldConfig(seed=0))
    lm = _model(world)
    bench_tracing(lm, world.trace_facts[:4])
    rows = [*world.forget, *world.retain][:96]
    bench_scoring(lm, rows)
    bench_step(lm)


if __name__ == "__main__":
    main()
