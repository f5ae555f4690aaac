"""Nudging speed, as ratios measured in one process on the same prompts (CPU, one torch thread).

Targets (from the issue):
1. nudged decoding throughput (answer tokens / s) against the base model alone with a KV cache,
   decoding the same number of tokens per prompt: >= 0.85 (the paper reports about 15% overhead;
   issue 11's "fast batches" asks >= 0.9 single-stream, also printed);
2. the fast KV-cached implementation against the stateless reference one: >= 5x;
3. lock-step batches of 16 against batched base-alone decoding: >= 0.8 (issue 11, "fast batches").

Setting ("long answers"): the paper's shape, scaled down. A llama base of ~15M parameters and a llama
nudging model of ~1.6M (about 10x smaller, as 7B vs 70B), built from `reprokit.zoo` recipes of their own
(independent of `nudging.tiny`), briefly trained on a synthetic world: the base on plain reports about
five people, the nudging model then chat-aligned to answer with an opening line, the reports and a
closing line. Answers run to `max_new_tokens=256`. Models are cached by `reprokit.zoo.train_cached`
(the first run trains them, several minutes on a 2-core CPU; cached runs take a minute or two, most of it
the slow reference). The nudged share is printed: with these models it is near the paper's ~10%.

Every variant runs on one prompt after another (base alone, fast, lazy, reference), so slow drifts
of the machine's speed hit all of them alike; times are summed over the prompts.

Both modes are measured: the official look-ahead (always `lookahead_tokens=16` nudging tokens per
round, the default) and the optional `lazy_lookahead=True` (draft only as far as Stage 1 needs; not
the official behaviour, see `NudgingConfig.lazy_lookahead`). Every ratio is measured `--repeats` times
(each repeat times every variant once per prompt; the slow reference runs once) and printed as the mean
with the min and max over the repeats, since one run's figure moves by several points on a busy
machine; a target is "met" when the mean reaches it. Also printed: the tokens each model
processes (the work that dominates on an accelerator, where a decode step costs in proportion to the
model's size) and the measured nudged share.

Both ratios depend on how often the base model is uncertain. Each nudging round costs the nudging
model's 16-token look-ahead (on a CPU a step of these small models is mostly fixed per-call cost, about a
quarter of a base step rather than ~1/10), so throughput falls as rounds get frequent; the stateless
reference wastes work per call (it re-encodes the whole prefix and discards most of each 16-token
chunk), so its slowdown grows as rounds get frequent. With realistic confidence (a nudged share near
10%) the first ratio is the one to read; with undertrained models (most tokens nudged) the second grows
and the first shrinks. The printout says whether each target is met; it does not hard-code any number.

Batched evaluation (`--batch-sizes`): `nudge_batch` in lock-step batches against the base model alone
decoding the same batches (every row as long as the batch's longest nudged answer), and against the
reference run one prompt after another. Also timed in the same repeats: the batch with
`verify_lookahead=True` forced (the single-stream default), against the default that skips that
speculative read in batches (the answers must be the same).

    python benchmarks/nudging_speed.py [--n 16] [--repeats 1] [--batch-sizes 4,16] [--lookup 0]
        [--cache-dir DIR] [--threads 1] [--device cpu|cuda] [--dtype float32|bfloat16] [--tiny]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import time

import torch

from nudging import NudgingConfig, NudgingPrompt, build_prompts, nudge_fast, nudge_reference
from nudging.lockstep import nudge_batch
from reprokit.generation import generate_texts
from reprokit.tokenizer import train_tokenizer
from reprokit.world import SYSTEM_PROMPT, WorldConfig, encyclopedia_documents, make_world
from reprokit.zoo import Recipe, TrainConfig, count_parameters, encode_chats, encode_texts, train_cached

BASE_RECIPE = Recipe("nudgebench-llama-15m", "llama", 384, 8, 6, 1024, max_position_embeddings=1024)
NUDGER_RECIPE = Recipe("nudgebench-llama-1.6m", "llama", 160, 4, 4, 448, max_position_embeddings=1024)
OPENING = "Here is what I know about each of them."
CLOSING = "I hope this helps!"
TARGET_THROUGHPUT, TARGET_SPEEDUP = 0.85, 5.0
TARGET_SINGLE_ISSUE, TARGET_BATCHED, TARGET_BATCH_SIZE = 0.9, 0.8, 16  # issue 11, "fast batches"


def spread(values: list[float]) -> str:
    """'mean [min, max]' of one ratio over the repeats."""
    return f"{statistics.mean(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def verdict(values: list[float], target: float) -> str:
    """Met when the mean reaches the target (and whether every repeat did)."""
    mean = statistics.mean(values)
    if mean < target:
        return "NOT met"
    return "met" if min(values) >= target else "met on the mean, not in every repeat"


def build_world(
    seed: int = 0, n_people: int = 24, per_report: int = 5, n_train: int = 320, n_align: int = 120
):
    """Plain base texts, aligned chats and held-out questions: 'Describe A, B, C, D and E.' reports."""
    world = make_world(WorldConfig(seed=seed, n_people=n_people))
    variants = [[d.text for d in encyclopedia_documents(world, seed=s, kinds=("person",))] for s in range(3)]
    names = [p.name for p in world.people]
    rng = random.Random(seed)

    def report() -> tuple[str, list[str]]:
        who = rng.sample(range(len(names)), per_report)
        q = "Describe " + ", ".join(names[i] for i in who[:-1]) + " and " + names[who[-1]] + "."
        return q, [variants[rng.randrange(3)][i] for i in who]

    base_texts = []
    for _ in range(n_train):
        q, docs = report()
        base_texts.append(f"{SYSTEM_PROMPT}\nQuestion: {q}\n" + " ".join(docs))
    chats = []
    for _ in range(n_align):
        q, docs = report()
        answer = " ".join([OPENING, *docs, CLOSING])
        chats.append(
            [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": q},
                {"role": "assistant", "content": answer},
            ]
        )
    questions = [report()[0] for _ in range(16)]
    return base_texts, chats, questions


def build_models(cache_dir: str | None = None):
    """(base, base tokenizer, nudger, nudger tokenizer, questions), trained once and cached."""
    base_texts, chats, questions = build_world()
    tok = train_tokenizer(
        [*base_texts, *(m["content"] for c in chats for m in c)], vocab_size=1024, chat_template=True
    )
    pre = encode_texts(tok, base_texts, max_length=320)
    base = train_cached(
        BASE_RECIPE, tok, pre, TrainConfig(epochs=8.0, batch_size=8, lr=2e-3, seed=0),
        name="nudgebench-base", cache_dir=cache_dir,
    )  # fmt: skip
    small = train_cached(
        NUDGER_RECIPE, tok, pre, TrainConfig(epochs=4.0, batch_size=8, lr=3e-3, seed=1),
        name="nudgebench-small", cache_dir=cache_dir,
    )  # fmt: skip
    nudger = train_cached(
        small, tok, encode_chats(tok, chats, max_length=320),
        TrainConfig(epochs=2.0, batch_size=8, lr=2e-3, seed=2), name="nudgebench-nudger", cache_dir=cache_dir,
    )  # fmt: skip
    return base.load(), nudger.load(), questions


def measure(
    label: str,
    prompts: list[NudgingPrompt],
    models,
    cfg: NudgingConfig,
    repeats: int,
    batch_sizes: tuple[int, ...] = (),
) -> None:
    base, small = models
    args = (base, small)
    btok = base.tokenizer
    print(
        f"\n[{label}] base {count_parameters(base.model) / 1e6:.1f}M + nudger "
        f"{count_parameters(small.model) / 1e6:.2f}M "
        f"params, {len(prompts)} prompts, gamma {cfg.gamma}, max_new_tokens {cfg.max_new_tokens}"
    )
    lazy_cfg = dataclasses.replace(cfg, lazy_lookahead=True)
    nudge_fast(*args, prompts[0], cfg)  # warm-up
    results: dict[str, list] = {"fast": [], "lazy": [], "ref": []}
    per_repeat = {name: [0.0] * repeats for name in ("base", "fast", "lazy")}  # seconds, summed over prompts
    t = {"ref": 0.0}
    for p in prompts:  # every variant on one prompt after another: slow drifts of the machine hit all alike
        for name, c in (("fast", cfg), ("lazy", lazy_cfg)):
            for i in range(repeats):
                t0 = time.perf_counter()
                out = nudge_fast(*args, p, c)
                per_repeat[name][i] += time.perf_counter() - t0
            results[name].append(out)
        fast_r = results["fast"][-1]
        for i in range(repeats):
            t0 = time.perf_counter()  # base alone, same prompt, as many tokens as the nudged answer
            generate_texts(
                base, [p.base], max_new_tokens=max(1, fast_r.n_tokens), batch_size=1, stop_at_eos=False
            )
            per_repeat["base"][i] += time.perf_counter() - t0
        t0 = time.perf_counter()
        results["ref"].append(nudge_reference(*args, p, cfg))
        t["ref"] += time.perf_counter() - t0  # slow: timed once
    t.update({name: statistics.mean(values) for name, values in per_repeat.items()})
    t_ref, ref = t["ref"], results["ref"]
    fast = results["fast"]
    same = all(a.text == b.text and a.segments == b.segments for a, b in zip(fast, ref, strict=True))
    tokens = sum(r.n_tokens for r in fast)
    lazy_tokens = sum(r.n_tokens for r in results["lazy"])
    share = sum(r.nudged_token_share * r.n_tokens for r in fast) / max(1, tokens)
    word_share = statistics.mean(r.nudged_word_share for r in fast)
    rounds = sum(r.n_rounds for r in fast)
    prompt_len = statistics.mean(len(btok(p.base)["input_ids"]) for p in prompts)
    print(
        f"  mean prompt {prompt_len:.0f} base tokens; {tokens} answer tokens ({tokens / len(prompts):.0f} "
        f"per answer), {rounds} rounds; nudged share: {share:.1%} of tokens, {word_share:.1%} of words "
        f"(paper: ~10%)"
    )
    print(f"  base alone (KV cache):    {t['base']:.2f}s = {tokens / t['base']:.1f} tok/s")
    print(f"  nudging, fast (official): {t['fast']:.2f}s = {tokens / t['fast']:.1f} tok/s")
    print(
        f"  nudging, fast (lazy look-ahead, optional): {t['lazy']:.2f}s = {lazy_tokens / t['lazy']:.1f} "
        f"tok/s ({lazy_tokens} tokens; same text as official for "
        f"{sum(a.text == b.text for a, b in zip(fast, results['lazy'], strict=True))}/{len(prompts)})"
    )
    print(f"  nudging, reference:       {t_ref:.2f}s; fast == reference outputs: {same}")

    r1 = [b / f for b, f in zip(per_repeat["base"], per_repeat["fast"], strict=True)]  # same tokens
    r1_lazy = [
        (lazy_tokens / lz) / (tokens / b)
        for b, lz in zip(per_repeat["base"], per_repeat["lazy"], strict=True)
    ]
    r2 = [t_ref / f for f in per_repeat["fast"]]
    print(f"  RATIO throughput nudging (official) / base alone = {spread(r1)} over {repeats} repeats  "
          f"(target >= {TARGET_THROUGHPUT}: {verdict(r1, TARGET_THROUGHPUT)}; issue 11 >= "
          f"{TARGET_SINGLE_ISSUE}: {verdict(r1, TARGET_SINGLE_ISSUE)})")  # fmt: skip
    print(f"  RATIO throughput nudging (lazy) / base alone     = {spread(r1_lazy)}  (target >= "
          f"{TARGET_THROUGHPUT}: {verdict(r1_lazy, TARGET_THROUGHPUT)}; optional mode)")  # fmt: skip
    print(f"  RATIO fast / reference speed-up                  = {spread(r2)}x  (target >= "
          f"{TARGET_SPEEDUP}x: {verdict(r2, TARGET_SPEEDUP)})")  # fmt: skip
    base_alone_work = sum(
        len(btok(p.base)["input_ids"]) + r.n_tokens - 1 for p, r in zip(prompts, fast, strict=True)
    )
    print(f"  tokens run through the base model alone: {base_alone_work}")
    for who in ("base", "nudger"):
        f_work = sum(r.info[f"{who}_forward_tokens"] for r in fast)
        l_work = sum(r.info[f"{who}_forward_tokens"] for r in results["lazy"])
        f_calls = sum(r.info[f"{who}_forward_calls"] for r in fast)
        l_calls = sum(r.info[f"{who}_forward_calls"] for r in results["lazy"])
        r_work = sum(r.info[f"{who}_forward_tokens"] for r in ref)
        print(
            f"  {who} model: tokens processed: reference {r_work}, fast {f_work} ({f_calls} calls), "
            f"lazy {l_work} ({l_calls} calls); RATIO reference / fast {r_work / max(1, f_work):.1f}x"
        )  # fmt: skip

    if batch_sizes:
        measure_batched(prompts, models, cfg, batch_sizes, fast, t_ref, repeats)


def measure_batched(
    prompts: list[NudgingPrompt],
    models,
    cfg: NudgingConfig,
    batch_sizes: tuple[int, ...],
    single: list,
    t_ref: float,
    repeats: int = 1,
) -> None:
    """Lock-step batches (`nudge_batch`) against batched base-alone decoding and the one-by-one reference.

    The base alone decodes every row of a batch for as many steps as the batch's longest nudged answer
    (what batched generation of fixed-length answers costs), and its throughput counts all those tokens.
    Each repeat runs every batch size once (nudging, lazy nudging, base alone, one after another).
    """
    base, small = models
    args = (base, small)
    tokens = sum(r.n_tokens for r in single)
    lengths = [r.n_tokens for r in single]
    lazy_cfg = dataclasses.replace(cfg, lazy_lookahead=True)
    verify_cfg = dataclasses.replace(cfg, verify_lookahead=True)  # the single-stream default
    print("  lock-step batched decoding (evaluation workload):")
    ratios: dict[int, dict[str, list[float]]] = {
        size: {"official": [], "lazy": [], "ref": [], "verify": []} for size in batch_sizes
    }
    for _ in range(repeats):
        for size in batch_sizes:
            row = {}
            for name, c in (("official", cfg), ("lazy", lazy_cfg), ("verify", verify_cfg)):
                t0 = time.perf_counter()
                res = nudge_batch(*args, prompts, c, batch_size=size)
                row[name] = (time.perf_counter() - t0, res)
            t0 = time.perf_counter()
            base_tokens = 0
            for i in range(0, len(prompts), size):
                longest = max(lengths[i : i + size])
                group = [p.base for p in prompts[i : i + size]]
                generate_texts(base, group, max_new_tokens=longest, batch_size=size, stop_at_eos=False)
                base_tokens += longest * len(group)
            t_base = time.perf_counter() - t0
            t_off, res = row["official"]
            t_lazy, lazy_res = row["lazy"]
            if [r.text for r in row["verify"][1]] != [r.text for r in res]:
                raise AssertionError("verify_lookahead changed a batched answer")
            same = sum(
                a.text == b.text and a.segments == b.segments for a, b in zip(single, res, strict=True)
            )
            lazy_tokens = sum(r.n_tokens for r in lazy_res)
            ratios[size]["official"].append((tokens / t_off) / (base_tokens / t_base))
            ratios[size]["lazy"].append((lazy_tokens / t_lazy) / (base_tokens / t_base))
            ratios[size]["ref"].append(t_ref / t_off)
            ratios[size]["verify"].append(row["verify"][0] / t_off)
            print(
                f"    batch {size:>2}: official {t_off:.2f}s = {tokens / t_off:.1f} tok/s (same output as "
                f"one by one: {same}/{len(prompts)}), lazy {lazy_tokens / t_lazy:.1f} tok/s, base alone "
                f"{base_tokens / t_base:.1f} tok/s"
            )
    for size in batch_sizes:
        r = ratios[size]
        target = (
            f" (target >= {TARGET_BATCHED}: {verdict(r['official'], TARGET_BATCHED)})"
            if size == TARGET_BATCH_SIZE
            else ""
        )
        print(
            f"    RATIO batch {size:>2}: throughput nudging / base alone = {spread(r['official'])} over "
            f"{repeats} repeats{target}; lazy {spread(r['lazy'])}; fast / reference one by one = "
            f"{spread(r['ref'])}x (target >= {TARGET_SPEEDUP}x: {verdict(r['ref'], TARGET_SPEEDUP)})"
        )
        print(
            f"    RATIO batch {size:>2}: time with verify_lookahead forced on / the default (off in "
            f"batches) = {spread(r['verify'])}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=16, help="prompts per setting")
    parser.add_argument(
        "--batch-sizes", default="4,16", help="lock-step batch sizes to measure (comma-separated)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--lookup",
        type=int,
        default=0,
        help="NudgingConfig.lookup_draft_tokens for the nudged runs (prompt-lookup guesses; 0: off)",
    )
    parser.add_argument("--gamma", type=float, default=0.3)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="where to measure: cpu (default), cuda, cuda:N")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument(
        "--tiny", action="store_true", help="also the old tiny-task row (nudging.tiny models)"
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    base, small, questions = build_models(args.cache_dir)  # trains on all cores (first run)
    dtype = getattr(torch, args.dtype)
    base.model.to(args.device, dtype)
    small.model.to(args.device, dtype)
    torch.set_num_threads(max(1, args.threads))  # measures on one thread: stable timings
    print(
        f"models ready in {time.perf_counter() - t0:.0f}s; device {args.device}, {args.dtype}, "
        f"torch threads {args.threads}"
    )
    prompts = [build_prompts(q, small.tokenizer) for q in questions[: args.n]]
    cfg = NudgingConfig(gamma=args.gamma, max_new_tokens=256, lookup_draft_tokens=args.lookup)
    sizes = tuple(int(b) for b in args.batch_sizes.split(",") if b.strip())
    measure("long answers", prompts, (base, small), cfg, args.repeats, sizes)
    if args.tiny:
        from nudging.tiny import TinyConfig, build_tiny

        data, families = build_tiny(TinyConfig(), cache_dir=args.cache_dir)
        fam = families[0]
        tb, ts = fam.load("base"), fam.load("small_aligned")
        tb.model.to(args.device, dtype)
        ts.model.to(args.device, dtype)
        items = [i for t in ("arithmetic", "coin_flip") for i in data.tasks[t][: args.n // 2]]
        tiny_prompts = [build_prompts(i.question, ts.tokenizer) for i in items]
        tiny_cfg = NudgingConfig(gamma=0.3, max_new_tokens=128)
        measure("tiny tasks", tiny_prompts, (tb, ts), tiny_cfg, args.repeats)


if __name__ == "__main__":
    main()
