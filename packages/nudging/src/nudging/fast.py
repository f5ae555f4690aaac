"""The fast implementation: one KV cache per model, kept across rounds, cropped on rollback.

Each model keeps the token ids its cache holds. Before a model is asked anything, the text it must
condition on is tokenized canonically (the whole prompt + answer, a cheap tokenizer call) and compared
with the cached ids: the cache is cropped to the longest common prefix and only the remaining tokens
are run through the model. So each model only processes text it has not seen, a word boundary that
re-tokenizes differently (another tokenizer's words, merged tokens) is healed by cropping, and the
result is exactly the reference implementation's (`nudging.reference`) for greedy decoding.

The algorithm is written once, as `nudging_program`: a coroutine that yields `Query`s ("logits of this
model after these ids") and never calls a model. `nudge_fast` answers the queries of one question with
a `CachedLM` per model; `nudging.lockstep.nudge_batch` answers many questions' queries in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nudging._cache import growable_cache
from nudging._checks import Setup, prepare
from nudging._lm import choose, encode, input_device, token_texts
from nudging.config import NudgingConfig
from nudging.prompts import NudgingPrompt
from nudging.result import NudgeResult, Segment, StopReason, finalize
from nudging.words import count_words, is_repeated_nudge, join_words, split_words, strip_trailing_repetitions

logger = logging.getLogger(__name__)

Logits = dict[int, torch.Tensor]  # position p -> next-token logits after ids[: p + 1]


def _lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan_sync(
    ids: list[int], memo: Logits, target: list[int], need: Iterable[int]
) -> tuple[set[int], int | None]:
    """(positions whose logits are wanted, first position to recompute or None if all are at hand).

    Shared by `CachedLM` and the batched cache: the cache holds `ids` and the logits in `memo`; what it
    must recompute starts where `target` leaves the cached ids or at the first wanted position missing.
    """
    if not target:
        raise ValueError("cannot sync a model to an empty token sequence")
    wanted = {*need, len(target) - 1}
    n = _lcp(ids, target)
    missing = [p for p in wanted if p >= n or p not in memo]
    return wanted, (min(n, *missing) if missing else None)


def answer_from(memo: Logits, wanted: set[int]) -> tuple[Logits, Logits]:
    """(the logits at `wanted`, the memo without logits no later call can ask for once it is large)."""
    if len(memo) > 4 * len(wanted) + 32:
        low = min(wanted)
        memo = {p: v for p, v in memo.items() if p >= low}
    return {p: memo[p] for p in wanted}, memo


class CachedLM:
    """A causal LM plus a KV cache of the token ids it has seen, synced to target ids by LCP + crop.

    A sync that asks for a prefix of what the cache holds computes nothing and drops nothing: the
    tokens past it (e.g. the rest of a nudging look-ahead) stay cached with their logits, and are reused
    when the text later continues the same way (the base model writing what the nudger had drafted).
    """

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.device = input_device(model)
        self.ids: list[int] = []
        self.cache = growable_cache(model)
        self.logits: Logits = {}
        self.forward_calls = 0
        self.forward_tokens = 0

    def _crop(self, n: int) -> None:
        if n < len(self.ids):
            if n == 0 or self.cache is None:
                self.cache = growable_cache(self.model)
            else:
                self.cache.crop(n - len(self.ids))  # a negative count removes that many positions
            del self.ids[n:]
            self.logits = {p: v for p, v in self.logits.items() if p < n}

    @torch.no_grad()
    def sync(self, target: list[int], need: Iterable[int] = ()) -> dict[int, torch.Tensor]:
        """Make the cache start with `target`; return next-token logits at `need` and the last position."""
        wanted, start = plan_sync(self.ids, self.logits, target, need)
        if start is not None:
            self._crop(start)
            new = target[start:]
            keep = len(target) - min(p for p in wanted if p >= start)
            out = self.model(
                input_ids=torch.tensor([new], device=self.device),
                cache=self.cache,
                use_cache=True,
                logits_to_keep=keep,
            )
            self.forward_calls += 1
            self.forward_tokens += len(new)
            self.cache = out.cache
            self.ids.extend(new)
            first, rows = len(target) - keep, out.logits[0]
            for p in wanted:
                if p >= start:
                    self.logits[p] = rows[p - first]
        answer, self.logits = answer_from(self.logits, wanted)
        return answer

    def next_logits(self, target: list[int]) -> torch.Tensor:
        """Logits of the next token after `target` (computed only for what the cache lacks)."""
        return self.sync(target)[len(target) - 1]


@dataclass(frozen=True)
class Query:
    """A request from the nudging program to one model: next-token logits after `ids[: p + 1]`.

    `need` are positions whose logits are wanted besides the last one (a Stage-1 block read in one pass).
    The answer sent back is `{position: logits}` for `need` and `len(ids) - 1`.
    """

    model: Literal["base", "nudger"]
    ids: list[int]
    need: tuple[int, ...] = ()


Program = Generator[Query, Logits, NudgeResult]


def nudging_program(
    setup: Setup, base_tokenizer: PreTrainedTokenizerBase, nudging_tokenizer: PreTrainedTokenizerBase
) -> Program:
    """The official algorithm for one question, as a coroutine that yields model `Query`s.

    It never calls a model itself: a driver answers each query, either one stream with a `CachedLM`
    per model (`nudge_fast`) or many streams in lock-step with batched caches (`nudging.lockstep`).
    Returns the `NudgeResult` (its `info` is filled in by the driver).
    """
    config, prompts, gen = setup.config, setup.prompts, setup.generator
    base_eos, nudge_eos = setup.base_eos, setup.nudge_eos
    gamma, chunk = config.gamma, config.base_chunk_tokens

    def ask(model: Literal["base", "nudger"], ids: list[int], need: Iterable[int] = ()) -> Program:
        return (yield Query(model, ids, tuple(need)))

    def next_logits(model: Literal["base", "nudger"], ids: list[int]) -> Program:
        return (yield from ask(model, ids))[len(ids) - 1]

    def base_ids(t: str) -> list[int]:
        return encode(base_tokenizer, prompts.base + t, add_special_tokens=True)

    length_memo: dict[str, int] = {}

    def base_len(t: str) -> int:
        if t not in length_memo:
            length_memo.clear()
            length_memo[t] = len(encode(base_tokenizer, t, add_special_tokens=False))
        return length_memo[t]

    def verdict(target: list[int], logits: torch.Tensor, word: str) -> tuple[bool, tuple[int, str] | None]:
        """Stage-1 test at one boundary: (takeover, base's first token or None for EOS)."""
        token, p1 = choose(logits, config, gen)
        if token in base_eos:
            return True, None
        piece = token_texts(base_tokenizer, target, [token])[0]
        if (piece and (" " + word).startswith(piece)) or p1 >= gamma:
            return True, (token, piece)
        return False, None

    text, segments, rounds, recent = "", [], 0, []
    stop: StopReason
    while True:
        if rounds >= config.max_rounds:
            stop = "round"
            break
        if base_len(text) >= config.max_new_tokens:
            stop = "length"
            break
        rounds += 1
        # The nudging model's look-ahead (its cache catches up on the base model's text first; tokens
        # it drafted last round and the base model then wrote are reused, not recomputed).
        context = encode(nudging_tokenizer, prompts.nudger + text, add_special_tokens=False)
        la_ids: list[int] = []
        la_stopped = False

        def draft(min_words: int | None, context: list[int] = context, la_ids: list[int] = la_ids) -> Program:
            """Extend the look-ahead to `min_words` words (None: the full length); True at an EOS."""
            while len(la_ids) < config.lookahead_tokens:
                if min_words is not None and la_ids:
                    words_now = split_words("".join(token_texts(nudging_tokenizer, context, la_ids)))[1]
                    if len(words_now) >= min_words:
                        return False
                token, _ = choose((yield from next_logits("nudger", context + la_ids)), config, gen)
                if token in nudge_eos:
                    return True
                la_ids.append(token)
            return False

        takeover, first = False, None
        if not config.lazy_lookahead:
            la_stopped = yield from draft(None)
            lead, words = split_words("".join(token_texts(nudging_tokenizer, context, la_ids)))
            k = max(1, len(words) - 1)
        if config.lazy_lookahead:
            # Optional (not official): draft only as far as the next candidate word needs.
            kc = 1
            while True:
                la_stopped = yield from draft(kc + 2)
                lead, words = split_words("".join(token_texts(nudging_tokenizer, context, la_ids)))
                if la_stopped or kc >= len(words):
                    k = max(1, len(words) - 1)
                    break
                if words[kc] != "":
                    target = base_ids(text + join_words(lead, words[:kc]))
                    logits = yield from next_logits("base", target)
                    takeover, first = verdict(target, logits, words[kc])
                    if takeover:
                        k = kc
                        base_ctx = target
                        break
                kc += 1
        if la_stopped:
            la_text = join_words(lead, words)  # the whole look-ahead, up to its EOS
            text += la_text
            segments.append(Segment(la_text, "nudger"))
            stop = "nudging_model_stop"
            break
        if not config.lazy_lookahead:
            # Stage 1: the base model reads candidate boundaries, the first alone, the rest in one pass
            # (candidate texts are tokenized only when reached: the first one usually takes over).
            cands = [kc for kc in range(1, len(words)) if words[kc] != ""]
            targets: dict[int, list[int]] = {}
            for block in (cands[:1], cands[1:]):
                if not block or takeover:
                    continue
                for kc in block:
                    targets[kc] = base_ids(text + join_words(lead, words[:kc]))
                longest = targets[block[-1]]
                chained = all(longest[: len(targets[kc])] == targets[kc] for kc in block)
                rows: Logits = {}
                if chained:
                    rows = yield from ask("base", longest, [len(targets[kc]) - 1 for kc in block])
                for kc in block:
                    pos = len(targets[kc]) - 1
                    logits = rows[pos] if chained else (yield from next_logits("base", targets[kc]))
                    takeover, first = verdict(targets[kc], logits, words[kc])
                    if takeover:
                        k, base_ctx = kc, targets[kc]
                        break
        nudge = join_words(lead, words[:k])
        if is_repeated_nudge(recent, nudge, config.repeat_nudge_limit):
            stop = "repeated_nudging_words"
            break
        recent.append(nudge)
        text += nudge
        segments.append(Segment(nudge, "nudger"))
        if not takeover:
            continue
        if first is None:
            if config.base_eos_hands_back:
                continue
            stop = "base_model_stop"
            break
        # Stage 2: the base model writes while its top-1 probability stays >= gamma, in chunks that
        # re-synchronise with the canonical tokenization (as the reference's separate calls do).
        # Speculation: the rest of the look-ahead, in base tokens, is read in one pass; its logits are
        # used for as long as the base model writes the same tokens (the output does not change).
        spec: list[int] | None = None
        if config.verify_lookahead:
            rest = join_words(lead, words)[len(nudge) :]  # the look-ahead after the nudge
            if rest:
                spec = base_ids(text + rest)
        budget = max(1, config.max_new_tokens - base_len(text))
        accepted, chunk_no, base_stop, pending = 0, 0, False, first
        while True:
            chunk_ids: list[int] = []
            context = base_ctx  # the base model's ids at the start of this chunk
            ended = eos = False
            for i in range(chunk):
                if pending is not None:
                    token, p1 = pending[0], 1.0
                    pending = None
                else:
                    ctx = context + chunk_ids
                    if spec is not None and len(spec) > len(ctx) and spec[: len(ctx)] == ctx:
                        logits = (yield from ask("base", spec, range(len(ctx) - 1, len(spec))))[len(ctx) - 1]
                    else:
                        spec = None
                        logits = yield from next_logits("base", ctx)
                    token, p1 = choose(logits, config, gen)
                    if token in base_eos:
                        eos = True
                        break
                if accepted >= budget or (not (chunk_no == 0 and i == 0) and p1 < gamma):
                    ended = True
                    break
                chunk_ids.append(token)
                accepted += 1
            piece = "".join(token_texts(base_tokenizer, context, chunk_ids))
            if config.min_repeat_words and count_words(piece) >= config.min_repeat_words and piece in text:
                piece, ended = "", True
            text += piece
            segments.append(Segment(piece, "base"))
            if ended:
                break
            if eos:
                base_stop = not config.base_eos_hands_back
                break
            chunk_no += 1
            base_ctx = base_ids(text)
        if base_stop:
            stop = "base_model_stop"
            break
    final = (
        strip_trailing_repetitions(text, config.min_repetition_chars) if config.strip_repetitions else text
    )
    return finalize(segments, stop, rounds, base_tokenizer, strip_to=final)


def nudge_fast(
    base_model: PreTrainedModel,
    base_tokenizer: PreTrainedTokenizerBase,
    nudging_model: PreTrainedModel,
    nudging_tokenizer: PreTrainedTokenizerBase,
    prompt: str | NudgingPrompt,
    config: NudgingConfig | None = None,
    *,
    plain_nudger_prompt: bool = False,
    allow_mixed_devices: bool = False,
) -> NudgeResult:
    """Nudge `base_model` with `nudging_model` on one question, with a KV cache per model."""
    setup = prepare(
        base_model,
        base_tokenizer,
        nudging_model,
        nudging_tokenizer,
        prompt,
        config,
        plain_nudger_prompt=plain_nudger_prompt,
        allow_mixed_devices=allow_mixed_devices,
    )
    lms = {"base": CachedLM(base_model), "nudger": CachedLM(nudging_model)}
    program = nudging_program(setup, base_tokenizer, nudging_tokenizer)
    answer: Logits | None = None
    try:
        while True:
            query = program.send(answer)  # type: ignore[arg-type]
            answer = lms[query.model].sync(query.ids, query.need)
    except StopIteration as done:
        result: NudgeResult = done.value
    result.info.update(
        base_forward_calls=lms["base"].forward_calls,
        base_forward_tokens=lms["base"].forward_tokens,
        nudger_forward_calls=lms["nudger"].forward_calls,
        nudger_forward_tokens=lms["nudger"].forward_tokens,
    )
    return result
