"""Nudging speed, as ratios measured in one run on the same prompts (tiny models, CPU).

1. nudged decoding throughput (answer tokens / s) against the base model alone with a KV cache, decoding
   the same number of tokens per prompt (target >= 0.85; the paper reports about 15% overhead);
2. the fast KV-cached implementation against the stateless reference one (target >= 5x).

Also printed: how many tokens each implementation runs through each model (the work that dominates
with large models, where a forward pass costs in proportion to its tokens; with these tiny models a
forward pass costs about the same whatever its length, so wall-clock ratios understate the saving).

    python benchmarks/nudging_speed.py [--n 8] [--cache-dir DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from nudging import Nudger, NudgingConfig, NudgingPrompt, build_prompts, nudge_reference
from nudging.batch import generate_texts
from nudging.tiny import TinyConfig, build_tiny


def measure(label: str, prompts: list[NudgingPrompt], base, btok, small, stok, cfg: NudgingConfig) -> None:
    nudger = Nudger(base, btok, small, stok, cfg)
    nudger(prompts[0])  # warm-up
    t0 = time.perf_counter()
    nudged = [nudger(p) for p in prompts]
    t_fast = time.perf_counter() - t0
    tokens = sum(r.n_tokens for r in nudged)
    t0 = time.perf_counter()
    for p, r in zip(prompts, nudged, strict=True):  # the base alone, same prompt, same answer length
        generate_texts(
            base, btok, [p.base], max_new_tokens=max(1, r.n_tokens), batch_size=1, stop_at_eos=False
        )
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = [nudge_reference(base, btok, small, stok, p, cfg) for p in prompts]
    t_ref = time.perf_counter() - t0
    same = all(a.text == b.text for a, b in zip(nudged, ref, strict=True))
    prompt_len = sum(len(btok(p.base)["input_ids"]) for p in prompts) / len(prompts)
    share = sum(r.nudged_token_share for r in nudged) / len(nudged)
    print(
        f"\n[{label}] {len(prompts)} prompts, mean prompt {prompt_len:.0f} base tokens, "
        f"{tokens} answer tokens"
    )
    print(f"  base alone (KV cache): {t_base:.2f}s = {tokens / t_base:.1f} tok/s")
    print(f"  nudging, fast:         {t_fast:.2f}s = {tokens / t_fast:.1f} tok/s (nudged tokens {share:.1%})")
    print(f"  nudging, reference:    {t_ref:.2f}s; identical outputs: {same}")
    print(f"  RATIO throughput nudging / base alone = {t_base / t_fast:.2f}  (target >= 0.85)")
    print(f"  RATIO fast / reference speed-up       = {t_ref / t_fast:.1f}x  (target >= 5x)")
    for who in ("base", "nudger"):
        fast_work = sum(r.info[f"{who}_forward_tokens"] for r in nudged)
        ref_work = sum(r.info[f"{who}_forward_tokens"] for r in ref)
        print(
            f"  tokens run through the {who} model: reference {ref_work}, fast {fast_work} "
            f"(RATIO {ref_work / max(1, fast_work):.1f}x less work)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=8, help="prompts per setting")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, families = build_tiny(TinyConfig(), cache_dir=args.cache_dir)
    fam = families[0]
    (base, btok), (small, stok) = fam.load("base"), fam.load("small_aligned")
    print(f"base {fam.spec.large_recipe} + nudger {fam.spec.small_recipe}; torch threads {args.threads}")
    items = [i for t in ("arithmetic", "coin_flip") for i in data.tasks[t][: args.n // 2]]
    cfg = NudgingConfig(gamma=0.3, max_new_tokens=128)
    measure("tiny tasks", [build_prompts(i.question, stok) for i in items], base, btok, small, stok, cfg)


if __name__ == "__main__":
    main()
