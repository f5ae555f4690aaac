"""Lock-step batched nudging: many questions decoded together, one batched forward pass per model per step.

Every stream runs the same `nudging.program.nudging_program`; at each step the driver gathers the queries
that all streams have pending for the base model and answers them in one batched forward pass, then
the same for the nudging model. Streams are in different phases (one drafts with the nudging model while
another writes with the base model) and need different numbers of new tokens, so the batched KV cache
is a grid of columns with holes: a row's tokens sit in the columns listed for it, the attention mask
hides every other column, and positions are passed explicitly. A rollback only hides columns; the grid
is compacted when holes pile up. A finished stream's row takes the next question (continuous batching).

Greedy output equals `nudge_fast`'s up to float rounding of batched matrix products (a near-tie in the
top-1 token can in principle flip); the tests check equality on trained tiny models.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel

from nudging._cache import GrowableLayer, Logits, answer_from, growable_cache, is_full_attention, plan_sync
from nudging._checks import Setup, check_and_prepare
from nudging.config import NudgingConfig
from nudging.fast import run_stream
from nudging.program import Program, Query, nudging_program
from nudging.prompts import NudgingPrompt
from nudging.result import NudgeResult
from reprokit.lm import LanguageModel, input_device

logger = logging.getLogger(__name__)


def _gather_columns(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """states[b, :, index[b, j], :] for a (batch, heads, columns, dim) cache tensor."""
    b, h, _, d = states.shape
    return states.gather(2, index[:, None, :, None].expand(b, h, index.shape[1], d))


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)  # the token ids this row's cache holds, in order
    cols: list[int] = field(default_factory=list)  # the grid column of each of them
    logits: Logits = field(default_factory=dict)  # position -> next-token logits after ids[: p + 1]
    forward_calls: int = 0
    forward_tokens: int = 0


class BatchedCachedLM:
    """One model's KV cache for `n_rows` streams: `sync_many` is `CachedLM.sync` for many rows at once."""

    def __init__(self, model: PreTrainedModel, n_rows: int, pad_id: int) -> None:
        self.model = model
        self.device = input_device(model)
        self.rows = [_Row() for _ in range(n_rows)]
        self.pad_id = pad_id
        self.cache = growable_cache(model)
        self.mask = torch.zeros((n_rows, 0), dtype=torch.long, device=self.device)

    @property
    def width(self) -> int:
        return self.mask.shape[1]

    def reset_row(self, row: int) -> dict[str, int]:
        """Forget a finished stream (its columns are hidden at the next sync); return its work counts."""
        r = self.rows[row]
        counts = {"forward_calls": r.forward_calls, "forward_tokens": r.forward_tokens}
        r.forward_calls = r.forward_tokens = 0
        return counts

    def _hide(self, row: int, n: int) -> None:
        """Roll a row back to its first `n` tokens (columns are hidden, not freed)."""
        r = self.rows[row]
        if n < len(r.ids):
            self.mask[row, r.cols[n:]] = 0
            del r.ids[n:], r.cols[n:]
            r.logits = {p: v for p, v in r.logits.items() if p < n}

    def _compact(self) -> None:
        """Move every row's live columns to the left and drop the holes (one gather per layer)."""
        live = max((len(r.cols) for r in self.rows), default=0)
        index = torch.zeros((len(self.rows), live), dtype=torch.long)
        mask = torch.zeros((len(self.rows), live), dtype=torch.long)
        for i, r in enumerate(self.rows):
            if r.cols:
                index[i, : len(r.cols)] = torch.tensor(r.cols)
                mask[i, : len(r.cols)] = 1
            r.cols = list(range(len(r.cols)))
        index = index.to(self.device)
        for layer in self.cache.layers:
            if isinstance(layer, GrowableLayer) and layer.is_initialized and layer.keys.numel():
                layer.replace(_gather_columns(layer.keys, index), _gather_columns(layer.values, index))
        self.mask = mask.to(self.device)

    @torch.no_grad()
    def sync_many(self, queries: dict[int, tuple[list[int], tuple[int, ...]]]) -> dict[int, Logits]:
        """For each row: make its cache start with the target ids; return logits at `need` and the last."""
        plans: dict[int, tuple[int, list[int], set[int]]] = {}
        wanted_of: dict[int, set[int]] = {}
        for row, (target, need) in queries.items():
            r = self.rows[row]
            wanted, start = plan_sync(r.ids, r.logits, target, need)
            wanted_of[row] = wanted
            if start is not None:
                self._hide(row, start)
                plans[row] = (start, target[start:], wanted)
        if plans:
            live = max(len(r.cols) for r in self.rows)
            if self.width > live + max(32, live // 4):
                self._compact()
            self._forward(plans)
        out: dict[int, Logits] = {}
        for row, wanted in wanted_of.items():
            r = self.rows[row]
            out[row], r.logits = answer_from(r.logits, wanted)
        return out

    def _forward(self, plans: dict[int, tuple[int, list[int], set[int]]]) -> None:
        """One batched forward pass appending each planned row's new tokens (others get hidden pads)."""
        m = max(len(new) for _, new, _ in plans.values())
        n_rows, width = len(self.rows), self.width
        ids = torch.full((n_rows, m), self.pad_id, dtype=torch.long)
        new_mask = torch.zeros((n_rows, m), dtype=torch.long)
        positions = torch.zeros((n_rows, m), dtype=torch.long)
        keep: set[int] = set()
        for row, (start, new, wanted) in plans.items():
            ids[row, : len(new)] = torch.tensor(new)
            new_mask[row, : len(new)] = 1
            positions[row, : len(new)] = torch.arange(start, start + len(new))
            keep.update(p - start for p in wanted if p >= start)
        # A row's tokens come first in the new columns and its pads after, so no query row is ever
        # fully masked (which would put NaNs into the cache).
        self.mask = torch.cat([self.mask, new_mask.to(self.device)], dim=1)
        offsets = sorted(keep)
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=self.mask,
            position_ids=positions.to(self.device),
            cache=self.cache,
            use_cache=True,
            logits_to_keep=torch.tensor(offsets, device=self.device),
        )
        self.cache = out.cache
        where = {o: i for i, o in enumerate(offsets)}
        for row, (start, new, wanted) in plans.items():
            r = self.rows[row]
            r.ids.extend(new)
            r.cols.extend(range(width, width + len(new)))
            r.forward_calls += 1
            r.forward_tokens += len(new)
            for p in wanted:
                if p >= start:
                    r.logits[p] = out.logits[row, where[p - start]].clone()


def nudge_batch(
    base: LanguageModel,
    nudger: LanguageModel,
    prompts: Sequence[str | NudgingPrompt],
    config: NudgingConfig | None = None,
    *,
    batch_size: int = 8,
    nudger_steps: int | None = None,
    plain_nudger_prompt: bool = False,
    allow_mixed_devices: bool = False,
    on_result: Callable[[int, NudgeResult], None] | None = None,
) -> list[NudgeResult]:
    """Nudge many questions in lock-step, `batch_size` streams at a time (continuous batching).

    Each step is one batched base-model pass, then batched nudging-model passes until no stream waits
    on the nudging model (at most `nudger_steps` of them if given): a look-ahead is drafted within one
    step, as the nudging model is much smaller, instead of holding its stream back for 16 base steps.
    Results come back in the order of `prompts`; `on_result(index, result)` is called as each finishes
    (e.g. to advance a progress bar). Models whose cache is not plain full attention (sliding windows)
    are decoded one stream after another with `nudging.fast` instead, with a log message.
    """
    if isinstance(prompts, (str, NudgingPrompt)):
        raise TypeError("nudge_batch takes a list of prompts; use nudge_fast() for a single one")
    check_batch_args(batch_size, nudger_steps)
    setups = check_and_prepare(  # the pair and every prompt are checked before any decoding starts
        base,
        nudger,
        list(prompts),
        config,
        plain_nudger_prompt=plain_nudger_prompt,
        allow_mixed_devices=allow_mixed_devices,
    )
    return run_lockstep(
        setups,
        base,
        nudger,
        batch_size=batch_size,
        nudger_steps=nudger_steps,
        on_result=on_result,
    )


def check_batch_args(batch_size: int, nudger_steps: int | None) -> None:
    """A positive `batch_size`, and a positive `nudger_steps` or None (until no stream waits)."""
    for name, value in (("batch_size", batch_size), ("nudger_steps", nudger_steps)):
        allowed_none = name == "nudger_steps" and value is None
        if not allowed_none and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def run_lockstep(
    setups: Sequence[Setup],
    base: LanguageModel,
    nudger: LanguageModel,
    *,
    batch_size: int,
    nudger_steps: int | None = None,
    on_result: Callable[[int, NudgeResult], None] | None = None,
) -> list[NudgeResult]:
    """Decode checked `setups` in lock-step (see `nudge_batch`; the pair was checked where it entered)."""
    items = list(setups)
    results: list[NudgeResult | None] = [None] * len(items)
    if not (is_full_attention(base.model) and is_full_attention(nudger.model)):
        logger.info("nudge_batch: a model uses sliding-window attention; decoding streams one by one")
        for i, s in enumerate(items):
            results[i] = run_stream(s, base, nudger)
            if on_result is not None:
                on_result(i, results[i])
        return results  # type: ignore[return-value]
    n_rows = min(batch_size, len(items))
    lms = {
        "base": BatchedCachedLM(base.model, n_rows, base.pad_id),
        "nudger": BatchedCachedLM(nudger.model, n_rows, nudger.pad_id),
    }
    queue = iter(range(len(items)))
    streams: dict[int, tuple[int, Program]] = {}  # row -> (prompt index, program)
    pending: dict[int, Query] = {}  # row -> the query it waits on

    def start(row: int, answer: Logits | None = None) -> None:
        """Advance the row's program with `answer`; on finishing, record it and start the next prompt."""
        while True:
            index, program = streams[row]
            try:
                pending[row] = program.send(answer)  # type: ignore[arg-type]
                return
            except StopIteration as done:
                result: NudgeResult = done.value
                for role, lm in lms.items():
                    for key, value in lm.reset_row(row).items():
                        result.info[f"{role}_{key}"] = value
                results[index] = result
                if on_result is not None:
                    on_result(index, result)
                pending.pop(row, None)
                nxt = next(queue, None)
                if nxt is None:
                    del streams[row]
                    return
                streams[row] = (nxt, nudging_program(items[nxt], base, nudger))
                answer = None

    for row in range(n_rows):
        index = next(queue)
        streams[row] = (index, nudging_program(items[index], base, nudger))
        start(row)
    while pending:
        for role, lm in lms.items():
            for _ in range(1) if role == "base" else itertools.islice(itertools.count(), nudger_steps):
                asks = {row: q for row, q in pending.items() if q.model == role}
                if not asks:
                    break
                answers = lm.sync_many({row: (q.ids, q.need) for row, q in asks.items()})
                for row, answer in answers.items():
                    start(row, answer)
    return results  # type: ignore[return-value]
