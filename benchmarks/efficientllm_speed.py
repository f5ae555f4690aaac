"""efficientllm's training cost, as ratios against baselines measured in the same process (CPU).

Model: a tiny llama (hidden 128, 4 layers, 4 heads of 32, FFN 512, vocab 512, tied embeddings, ~1.1M
parameters), AdamW as `prune_train` builds it (decay on matrices, betas 0.9/0.95, clip 1.0), batches of
8 x 128 random tokens; one torch thread by default (``--threads``), for stable timings on a shared CPU.

1. Pruning-aware step against a plain step of the same model (target: ratio <= 1.15). The hooks sit
   where `prune_train` puts them: `Pruner.after_backward` after backward, before clipping and the
   optimizer step; `Pruner.after_step` after the step, with an event every 10 steps (5% of the remaining
   parameters each, compaction after every event, the defaults). Plain and pruning-aware blocks of 10
   steps alternate on the same model and optimizer; a pruning block ends with its event (and compaction),
   so each pair of blocks runs at the same width and the ratio includes the event cost averaged over 10
   steps. The per-event cost (`after_step` on a due step) is reported separately.
2. After compaction: a step of a model pruned to ~40% (fast schedule: an event every step, masks only,
   then `Pruner.compact(optimizer)`) against a step of `from_scratch_like` it (target: ratio <= 1.10).
3. Memory before and after compaction: bytes of parameters + AdamW state, and the peak of what one
   training step allocates on top of them (activations, gradients), from the torch profiler's allocation
   events (tracemalloc does not see torch's allocator).

Timings: blocks of steps in interleaved rounds (`_common.compare`, one timed call per round after its
warm-up); median and spread over rounds. Run it on an otherwise idle machine:
``python benchmarks/efficientllm_speed.py [--rounds 6] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from _common import compare
from torch import nn
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile
from transformers import AutoModelForCausalLM, LlamaConfig

from efficientllm import PruneConfig, Pruner, from_scratch_like

VOCAB, BATCH, SEQ = 512, 8, 128
EVERY = 10
MB = 2**20


def build_source(seed: int) -> nn.Module:
    """The tiny tied llama every measurement starts from (transformers' own initialisation)."""
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=512,
        tie_word_embeddings=True,
        max_position_embeddings=SEQ,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).train()


def make_optimizer(model: nn.Module) -> torch.optim.AdamW:
    """AdamW as `prune_train` builds it: weight decay 0.1 on matrices only, betas (0.9, 0.95)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [
            {"params": [p for _, p in named if p.ndim >= 2], "weight_decay": 0.1},
            {"params": [p for _, p in named if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=3e-4,
        betas=(0.9, 0.95),
    )


class Trainer:
    """One model's training loop, stepped like `prune_train` (with the Pruner hooks when `pruner` is set)."""

    def __init__(self, model: nn.Module, pruner: Pruner | None, seed: int) -> None:
        self.model, self.pruner = model, pruner
        self.optimizer = make_optimizer(model)
        gen = torch.Generator().manual_seed(seed)
        self.batches = [torch.randint(0, VOCAB, (BATCH, SEQ), generator=gen) for _ in range(8)]
        self.calls = 0  # steps run (any kind): picks the batch
        self.pruned_steps = 0  # steps run with the hooks: the Pruner's step count
        self.event_seconds: list[float] = []

    def step(self, hooks: bool) -> None:
        """One optimizer step; `hooks` adds `after_backward` / `after_step` where prune_train calls them."""
        model, opt, pruner = self.model, self.optimizer, self.pruner if hooks else None
        ids = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        if pruner is not None:
            pruner.after_backward(model, opt)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss.detach())  # prune_train reads the loss every step
        if pruner is not None:
            self.pruned_steps += 1
            due = pruner.due(self.pruned_steps)
            t0 = time.perf_counter()
            pruner.after_step(model, opt, self.pruned_steps, {"input_ids": ids} if due else None)
            if due:
                self.event_seconds.append(time.perf_counter() - t0)

    def block(self, steps: int, hooks: bool) -> Callable[[], None]:
        """A callable running `steps` steps (for `compare`)."""

        def run() -> None:
            for _ in range(steps):
                self.step(hooks)

        return run


def paired_rounds(
    base: Callable[[], None], other: Callable[[], None], rounds: int
) -> list[tuple[float, float]]:
    """(base, other) seconds per round; a round is one `compare` call (warm-up, then one timed call each)."""
    return [tuple(compare(base, other, repeats=1)) for _ in range(rounds)]  # type: ignore[misc]


def spread(values: list[float]) -> str:
    """Median [min - max]."""
    return f"{statistics.median(values):.3f} [{min(values):.3f} - {max(values):.3f}]"


def verdict(value: float, limit: float) -> str:
    return f"(target <= {limit:.2f}: {'MET' if value <= limit else 'NOT MET'})"


def persistent_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """Bytes of the parameters (a tied tensor once) and of the optimizer's state tensors."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    state = sum(
        t.numel() * t.element_size()
        for s in optimizer.state.values()
        for t in s.values()
        if torch.is_tensor(t)
    )
    return params, state


def step_peak_bytes(fn: Callable[[], None]) -> int:
    """Peak of the CPU bytes `fn` allocates beyond what it started with (profiler allocation events)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    allocs: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and str(node.extra_fields.device) == "cpu":
            allocs.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    running = peak = 0
    for _, size in sorted(allocs):
        running += size
        peak = max(peak, running)
    return peak


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def bench_pruning_step(rounds: int) -> None:
    model = build_source(seed=0)
    source = n_params(model)
    pruner = Pruner(model, PruneConfig(every=EVERY, target_ratio=0.3))
    trainer = Trainer(model, pruner, seed=0)
    plain, pruning = trainer.block(EVERY, hooks=False), trainer.block(EVERY, hooks=True)
    pairs, between = [], []
    for _ in range(rounds):
        n_events = len(trainer.event_seconds)
        a, b = compare(plain, pruning, repeats=1)  # the timed pruning block is the last one run
        pairs.append((a, b))
        event = trainer.event_seconds[-1] if len(trainer.event_seconds) == n_events + 2 else 0.0
        between.append((b - event) / a)  # the hooks alone: the block less its event
    ratios = [b / a for a, b in pairs]
    t_plain = [a / EVERY * 1e3 for a, _ in pairs]
    t_prune = [b / EVERY * 1e3 for _, b in pairs]
    events = [t * 1e3 for t in trainer.event_seconds]
    print(f"1. pruning-aware step vs plain step, same model (blocks of {EVERY} steps, {rounds} rounds)")
    print(f"   events run: {len(events)} (every {EVERY} steps, 5% each, compacted after each);")
    print(f"   parameters {source:,} -> {n_params(model):,} over the run (each pair at the same width)")
    print(f"   plain step (ms)             : {spread(t_plain)}  (spread: widths shrink by round)")
    print(f"   pruning-aware step (ms)     : {spread(t_prune)}  (event cost averaged in)")
    print(f"   per-event cost (ms)         : {spread(events)}  (after_step on a due step, incl. compaction)")
    print(
        f"   event / plain step          : {statistics.median(events) / statistics.median(t_plain):.2f} steps"
    )
    print(f"   ratio without events        : {spread(between)}  (saliency + mask hooks only)")
    print(f"   ratio pruning-aware / plain : {spread(ratios)} {verdict(statistics.median(ratios), 1.15)}")


def bench_after_compaction(rounds: int, steps: int = 5) -> None:
    model = build_source(seed=1)
    source = n_params(model)
    config = PruneConfig(every=1, budget_fraction=0.15, target_ratio=0.4, compact_every=0)
    pruner = Pruner(model, config)
    trainer = Trainer(model, pruner, seed=1)
    while not pruner.done and trainer.pruned_steps < 60:
        trainer.step(hooks=True)
    prune_steps = trainer.pruned_steps
    run_pruned = trainer.block(1, hooks=True)
    params_b, state_b = persistent_bytes(model, trainer.optimizer)
    peak_b = step_peak_bytes(run_pruned)
    pruner.compact(trainer.optimizer)
    params_a, state_a = persistent_bytes(model, trainer.optimizer)
    run_pruned()  # first step after compaction: fresh Parameters
    peak_a = step_peak_bytes(run_pruned)

    scratch = Trainer(from_scratch_like(model).train(), None, seed=1)
    scratch.block(1, hooks=False)()  # creates its AdamW state
    params_s, state_s = persistent_bytes(scratch.model, scratch.optimizer)
    peak_s = step_peak_bytes(scratch.block(1, hooks=False))

    pairs = paired_rounds(scratch.block(steps, hooks=False), trainer.block(steps, hooks=True), rounds)
    ratios = [b / a for a, b in pairs]
    widths = pruner.state.widths()
    print(f"2. compacted model vs a fresh model of the same shape (blocks of {steps} steps, {rounds} rounds)")
    print(
        f"   pruned in {prune_steps} steps ({pruner.stop_reason}): "
        f"{source:,} -> {n_params(model):,} parameters ({n_params(model) / source:.0%}); "
        f"hidden {widths['hidden']}, heads {widths['heads']}, ffn {widths['ffn']}"
    )
    ms_fresh = spread([a / steps * 1e3 for a, _ in pairs])
    ms_compact = spread([b / steps * 1e3 for _, b in pairs])
    print(f"   fresh model, step (ms)     : {ms_fresh}  ({type(scratch.model).__name__})")
    print(f"   compacted model, step (ms) : {ms_compact}  ({type(model).__name__})")
    print(f"   ratio compacted / fresh    : {spread(ratios)} {verdict(statistics.median(ratios), 1.10)}")

    print("3. memory before / after compaction (float32)")
    before, after = params_b + state_b, params_a + state_a
    print(f"   parameters + AdamW state, MB : {_change(before, after)}")
    print(f"     parameters                 : {_change(params_b, params_a)}")
    print(f"     AdamW state                : {_change(state_b, state_a)}")
    print(f"     fresh model of that shape  : {(params_s + state_s) / MB:.2f}")
    print(f"   peak allocated by a step, MB : {_change(peak_b, peak_a)}  (activations, gradients)")
    print(f"     fresh model of that shape  : {peak_s / MB:.2f}")
    print(f"   the two together, MB         : {_change(before + peak_b, after + peak_a)}")


def _change(before: int, after: int) -> str:
    return f"{before / MB:.2f} -> {after / MB:.2f} (ratio {after / before:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds per comparison")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} thread(s); load average {load:.2f} on {os.cpu_count()} CPUs")
    t0 = time.perf_counter()
    bench_pruning_step(args.rounds)
    bench_after_compaction(args.rounds)
    print(f"total {time.perf_counter() - t0:.0f} s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
