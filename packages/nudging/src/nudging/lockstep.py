"""Lock-step batched nudging: many questions decoded together, one batched forward pass per model per step.

Every stream runs the same `nudging.program.nudging_program`; at each step the driver gathers the queries
that all streams have pending for the base model and answers them in batched forward passes, then the
same for the nudging model. A query the cache can already answer (logits a speculative pass computed,
the nudger's reused draft) is answered at once, without waiting for a step.

Streams are in different phases (one drafts with the nudging model while another writes with the base
model) and need different numbers of new tokens, so each row of the batched KV cache is ragged: a row's
token at position p sits in column p, a 4D attention mask makes each row causal from its own offset,
and a rollback just shortens the row. A pass runs only a range of rows (or, when the range would be
mostly pads, the rows it needs, gathered); rows reading many tokens (a Stage-1 block, a speculative
read of the look-ahead) run in a pass of their own when padding the others would cost more. A finished
stream's row takes the next question (continuous batching); when none is left, the last stream moves
into the free row, so the active rows stay packed.

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
from transformers.cache_utils import DynamicCache, DynamicLayer

from nudging._cache import Logits, answer_from, is_full_attention, plan_sync
from nudging._checks import Setup, check_and_prepare
from nudging.config import NudgingConfig
from nudging.fast import run_stream
from nudging.program import Program, Query, nudging_program
from nudging.prompts import NudgingPrompt
from nudging.result import NudgeResult
from reprokit.lm import LanguageModel, input_device

logger = logging.getLogger(__name__)


_MASKS = ("sdpa", "eager")  # attention implementations that take a ready 4D mask from `_RaggedPass`
_PASS_OVERHEAD_TOKENS = 12  # a forward pass costs about as much as this many extra padded tokens (CPU)
_GATHER_COLUMNS_PER_TOKEN = 64  # copying this many cached columns of a row costs about one token's pass


@dataclass
class _RaggedPass:
    """Where one forward pass's new tokens go: its rows, and each new token's column per row."""

    rows: list[int]  # the cache rows in the pass, in order
    gather: torch.Tensor | None  # None: `rows` is a range, read as a view; else their index, gathered
    row_index: torch.Tensor  # (len(rows), m): the cache row of each new token
    col_index: torch.Tensor  # (len(rows), m): the cache column (= position) of each new token
    width: int  # columns the pass attends over: max over its rows of start + m


class _RaggedLayer(DynamicLayer):
    """A KV layer for rows of different lengths: a row's token at position p sits in column p.

    Rows never share a column grid, so a rollback just shortens a row (nothing to hide or compact) and
    a pass can run on a range of rows. Columns past a row's length hold stale states that its mask
    never lets it read; the owner sets `plan` before each forward pass.
    """

    def __init__(self, n_rows: int) -> None:
        super().__init__()
        self.n_rows = n_rows
        self.plan: _RaggedPass | None = None
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None

    @staticmethod
    def _grown(old: torch.Tensor | None, like: torch.Tensor, n_rows: int, capacity: int) -> torch.Tensor:
        new = like.new_empty((n_rows, like.shape[1], capacity, like.shape[3]))
        done = 0 if old is None else old.shape[2]
        if old is not None:
            new[:, :, :done] = old
        new[:, :, done:].zero_()  # never read unmasked, but a stale NaN would survive a zero weight
        return new

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        plan = self.plan
        if plan is None:
            raise RuntimeError("_RaggedLayer.update called outside a planned pass")
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if self._k is None or self._v is None or plan.width > self._k.shape[2]:
            capacity = max(128, 2 * plan.width)
            self._k = self._grown(self._k, key_states, self.n_rows, capacity)
            self._v = self._grown(self._v, value_states, self.n_rows, capacity)
        self._k[plan.row_index, :, plan.col_index] = key_states.transpose(1, 2)
        self._v[plan.row_index, :, plan.col_index] = value_states.transpose(1, 2)
        lo, hi = plan.rows[0], plan.rows[-1] + 1
        if plan.gather is None:
            self.keys, self.values = self._k[lo:hi, :, : plan.width], self._v[lo:hi, :, : plan.width]
        else:
            self.keys = self._k[:, :, : plan.width].index_select(0, plan.gather)
            self.values = self._v[:, :, : plan.width].index_select(0, plan.gather)
        return self.keys, self.values

    def move_row(self, src: int, dst: int) -> None:
        """Copy row `src`'s states into row `dst`."""
        if self._k is not None and self._v is not None:
            self._k[dst] = self._k[src]
            self._v[dst] = self._v[src]


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)  # the token ids this row's cache holds (column = position)
    logits: Logits = field(default_factory=dict)  # position -> next-token logits after ids[: p + 1]
    forward_calls: int = 0
    forward_tokens: int = 0


class BatchedCachedLM:
    """One model's KV cache for `n_rows` streams: `sync_many` is `CachedLM.sync` for many rows at once.

    Each row holds its own tokens in columns 0, 1, ... (no shared grid, no holes); a pass runs only the
    rows that need new tokens, with a 4D attention mask that is causal from each row's own offset.
    """

    def __init__(self, model: PreTrainedModel, n_rows: int, pad_id: int) -> None:
        self.model = model
        self.device = input_device(model)
        self.rows = [_Row() for _ in range(n_rows)]
        self.pad_id = pad_id
        self.cache = DynamicCache(config=model.config)
        self.cache.layers = [_RaggedLayer(n_rows) for _ in self.cache.layers]
        self.dtype = next(model.parameters()).dtype
        self.passes = 0  # forward passes run (a sync may split its rows over two)

    @staticmethod
    def supports(model: PreTrainedModel) -> bool:
        """Whether `model` can use ragged rows: plain full attention and a 4D-mask attention kernel."""
        impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
        return is_full_attention(model) and impl in _MASKS

    def reset_row(self, row: int) -> dict[str, int]:
        """Forget a finished stream's work counts (its tokens stay: the next prompt may share a prefix)."""
        r = self.rows[row]
        counts = {"forward_calls": r.forward_calls, "forward_tokens": r.forward_tokens}
        r.forward_calls = r.forward_tokens = 0
        return counts

    def move_row(self, src: int, dst: int) -> None:
        """Move a stream from row `src` to row `dst` (whose stream has ended), so active rows stay packed."""
        for layer in self.cache.layers:
            layer.move_row(src, dst)  # type: ignore[attr-defined]
        self.rows[dst], self.rows[src] = self.rows[src], _Row()

    def _hide(self, row: int, n: int) -> None:
        """Roll a row back to its first `n` tokens (its later columns are simply overwritten later)."""
        r = self.rows[row]
        if n < len(r.ids):
            del r.ids[n:]
            r.logits = {p: v for p, v in r.logits.items() if p < n}

    def ready(self, row: int, target: list[int], need: tuple[int, ...]) -> Logits | None:
        """The answer to a query if the row's cache already holds it (no pass needed), else None."""
        r = self.rows[row]
        wanted, start = plan_sync(r.ids, r.logits, target, need)
        if start is not None:
            return None
        answer, r.logits = answer_from(r.logits, wanted)
        return answer

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
        for group in _split(plans):
            self._forward({row: plans[row] for row in group})
        out: dict[int, Logits] = {}
        for row, wanted in wanted_of.items():
            r = self.rows[row]
            out[row], r.logits = answer_from(r.logits, wanted)
        return out

    def _mask(self, starts: torch.Tensor, m: int, width: int) -> torch.Tensor:
        """(k, 1, m, width): new token j of a row starting at `s` sees columns 0 .. s + j."""
        cols = torch.arange(width)
        allowed = cols[None, None, :] <= (starts[:, None, None] + torch.arange(m)[None, :, None])
        allowed = allowed[:, None].to(self.device)
        if self.model.config._attn_implementation == "sdpa":
            return allowed
        return torch.zeros(allowed.shape, dtype=self.dtype, device=self.device).masked_fill(
            ~allowed, torch.finfo(self.dtype).min
        )

    def _forward(self, plans: dict[int, tuple[int, list[int], set[int]]]) -> None:
        """One forward pass appending each planned row's new tokens at its own end.

        The pass runs the range of rows from the first planned one to the last, read as a view of the
        cache (a row in that range with nothing to do gets pads written past its end, never read), or,
        when that would compute many pads, only the planned rows, gathered from the cache.
        """
        m = max(len(plans[row][1]) for row in plans)
        lo, hi = min(plans), max(plans) + 1
        longest = max(len(self.rows[row].ids) for row in plans) + m
        gather = (hi - lo - len(plans)) * m > len(plans) * longest / _GATHER_COLUMNS_PER_TOKEN
        rows = sorted(plans) if gather else list(range(lo, hi))
        ids = torch.full((len(rows), m), self.pad_id, dtype=torch.long)
        starts = torch.tensor([plans[row][0] if row in plans else len(self.rows[row].ids) for row in rows])
        keep: set[int] = set()
        at = {row: i for i, row in enumerate(rows)}
        for row, (start, new, wanted) in plans.items():
            ids[at[row], : len(new)] = torch.tensor(new)
            keep.update(p - start for p in wanted if p >= start)
        cols = starts[:, None] + torch.arange(m)[None, :]  # pads write past the row's end: never read
        width = int(cols.max()) + 1
        index = torch.tensor(rows)
        plan = _RaggedPass(
            rows=rows,
            gather=index.to(self.device) if gather else None,
            row_index=index[:, None].expand(len(rows), m).to(self.device),
            col_index=cols.to(self.device),
            width=width,
        )
        for layer in self.cache.layers:
            layer.plan = plan  # type: ignore[attr-defined]
        offsets = sorted(keep)
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=self._mask(starts, m, width),
            position_ids=cols.to(self.device),
            cache=self.cache,
            use_cache=True,
            logits_to_keep=torch.tensor(offsets, device=self.device),
        )
        self.passes += 1
        where = {o: i for i, o in enumerate(offsets)}
        for row, (start, new, wanted) in plans.items():
            r = self.rows[row]
            r.ids.extend(new)
            r.forward_calls += 1
            r.forward_tokens += len(new)
            for p in wanted:
                if p >= start:
                    r.logits[p] = out.logits[at[row], where[p - start]].clone()


def _split(plans: dict[int, tuple[int, list[int], set[int]]]) -> list[list[int]]:
    """The rows of one sync as one pass, or two when padding short rows to the longest costs more.

    A pass computes (its range of rows) x (its longest new token count) positions: a row decoding one
    token next to a row reading a 15-token look-ahead would compute 14 pads. A second pass costs about
    `_PASS_OVERHEAD_TOKENS` positions more.
    """
    if not plans:
        return []

    def cost(rows: list[int]) -> float:  # the cheaper of a range pass and a gathered one (`_forward`)
        m = max(len(plans[row][1]) for row in rows)
        longest = max(plans[row][0] for row in rows) + m
        gathered = len(rows) * (m + longest / _GATHER_COLUMNS_PER_TOKEN)
        return min((max(rows) - min(rows) + 1) * m, gathered)

    order = sorted(plans, key=lambda row: len(plans[row][1]))
    best, cut = cost(order), len(order)
    for i in range(1, len(order)):
        if len(plans[order[i - 1]][1]) == len(plans[order[i]][1]):
            continue
        c = cost(order[:i]) + cost(order[i:]) + _PASS_OVERHEAD_TOKENS
        if c < best:
            best, cut = c, i
    return [order[:cut], order[cut:]] if cut < len(order) else [order]


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

    Each step is one batched base-model pass (two when some rows read many tokens), then batched
    nudging-model passes until no stream waits
    on the nudging model (at most `nudger_steps` of them if given): a look-ahead is drafted within one
    step, as the nudging model is much smaller, instead of holding its stream back for 16 base steps.
    Results come back in the order of `prompts`; `on_result(index, result)` is called as each finishes
    (e.g. to advance a progress bar). Models whose cache is not plain full attention (sliding windows),
    or whose attention kernel takes no 4D mask (use "sdpa" or "eager"), are decoded one stream after
    another with `nudging.fast` instead, with a log message.
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
    if not (BatchedCachedLM.supports(base.model) and BatchedCachedLM.supports(nudger.model)):
        logger.info(
            "nudge_batch: a model uses sliding-window attention or an attention kernel without 4D masks "
            "(use sdpa or eager); decoding streams one by one"
        )
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

    def new_program(index: int) -> Program:
        """The nudging program of prompt `index` (`batched`: several rows share passes, so by default no
        speculative look-ahead read)."""
        return nudging_program(items[index], base, nudger, batched=n_rows > 1)

    streams: dict[int, tuple[int, Program]] = {}  # row -> (prompt index, program)
    pending: dict[int, Query] = {}  # row -> the query it waits on

    def start(row: int, answer: Logits | None = None) -> None:
        """Advance the row's program with `answer`; on finishing, record it and start the next prompt."""
        while True:
            index, program = streams[row]
            try:
                query = program.send(answer)  # type: ignore[arg-type]
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
                streams[row] = (nxt, new_program(nxt))
                answer = None
                continue
            # A query the cache can answer already (the base model reading logits a speculative pass
            # computed, the nudger's reused draft) is answered now instead of waiting for a pass.
            answer = lms[query.model].ready(row, query.ids, query.need)
            if answer is None:
                pending[row] = query
                return

    def pack() -> None:
        """Move the last streams into rows whose streams ended, so that passes run on rows 0 .. n - 1."""
        free = sorted(set(range(n_rows)) - set(streams))
        while free and streams and free[0] < max(streams):
            src, dst = max(streams), free.pop(0)
            for lm in lms.values():
                lm.move_row(src, dst)
            streams[dst] = streams.pop(src)
            if src in pending:
                pending[dst] = pending.pop(src)

    for row in range(n_rows):
        index = next(queue)
        streams[row] = (index, new_program(index))
        start(row)
    pack()
    while pending:
        for role, lm in lms.items():
            for _ in range(1) if role == "base" else itertools.islice(itertools.count(), nudger_steps):
                asks = {row: q for row, q in pending.items() if q.model == role}
                if not asks:
                    break
                answers = lm.sync_many({row: (q.ids, q.need) for row, q in asks.items()})
                for row, answer in answers.items():
                    start(row, answer)
                pack()
    return results  # type: ignore[return-value]
