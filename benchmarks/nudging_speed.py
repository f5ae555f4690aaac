"""Nudging speed, as ratios measured in one run on the same prompts (tiny models, CPU).

1. nudged decoding throughput (output tokens / s) against the base model alone with a KV cache
   (target >= 0.85; the paper reports about 15% overhead);
2. the fast KV-cached implementation against the stateless reference one (target >= 5x).

    python benchmarks/nudging_speed.py [--n 8] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import time

import torch

from nudging import Nudger, NudgingConfig, nudge_reference
from nudging.batch import generate_texts
from nudging.prompts import base_prompt
from nudging.tiny import TinyConfig, build_tiny


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=8, help="prompts per measurement")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, families = build_tiny(TinyConfig(), cache_dir=args.cache_dir)
    fam = families[0]
    (base, btok), (small, stok) = fam.load("base"), fam.load("small_aligned")
    items = [i for t in ("arithmetic", "coin_flip") for i in data.tasks[t][: args.n // 2]]
    cfg = NudgingConfig(gamma=0.3, max_new_tokens=128)
    nudger = Nudger(base, btok, small, stok, cfg)
    nudger(items[0].question)  # warm-up

    t0 = time.perf_counter()
    nudged = [nudger(i.question) for i in items]
    t_fast = time.perf_counter() - t0
    nudged_tokens = sum(r.n_tokens for r in nudged)

    t0 = time.perf_counter()
    base_out = [
        generate_texts(base, btok, [base_prompt(i.question)], max_new_tokens=128, batch_size=1)[0]
        for i in items
    ]
    t_base = time.perf_counter() - t0
    base_tokens = sum(len(btok(o, add_special_tokens=False)["input_ids"]) for o in base_out)

    t0 = time.perf_counter()
    ref = [nudge_reference(base, btok, small, stok, i.question, cfg) for i in items]
    t_ref = time.perf_counter() - t0
    same = all(a.text == b.text for a, b in zip(nudged, ref, strict=True))

    thr_nudge, thr_base = nudged_tokens / t_fast, base_tokens / t_base
    print(
        f"prompts: {len(items)}; base {fam.spec.large_recipe} + nudger {fam.spec.small_recipe}; "
        f"torch threads {args.threads}"
    )
    print(f"base alone (KV cache):  {base_tokens} tokens in {t_base:.2f}s = {thr_base:.1f} tok/s")
    print(
        f"nudging, fast:          {nudged_tokens} tokens in {t_fast:.2f}s = {thr_nudge:.1f} tok/s "
        f"(nudged share {sum(r.nudged_token_share for r in nudged) / len(nudged):.1%})"
    )
    print(f"nudging, reference:     {t_ref:.2f}s; identical outputs: {same}")
    print(f"RATIO throughput nudging / base alone = {thr_nudge / thr_base:.2f}  (target >= 0.85)")
    print(f"RATIO fast / reference speed-up       = {t_ref / t_fast:.1f}x  (target >= 5x)")


if __name__ == "__main__":
    main()
