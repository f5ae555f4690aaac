"""The nudging algorithm, written once: a coroutine that asks for model logits and never calls a model.

`nudging_program` runs the official algorithm (as in `nudging.reference`) for one question. Each time it
needs a model it yields a `Query` ("next-token logits of this model after these ids") and is sent the
answer back. Drivers answer the queries: `nudging.fast.nudge_fast` one question with a KV cache per
model, `nudging.lockstep.nudge_batch` many questions in batched forward passes. The drivers differ only
in how they compute logits, never in what the algorithm does with them.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from nudging._cache import Logits
from nudging._checks import Setup
from nudging._lm import choose, token_texts
from nudging.result import NudgeResult, Segment, StopReason, finalize
from nudging.words import count_words, is_repeated_nudge, join_words, split_words, strip_trailing_repetitions
from reprokit.lm import LanguageModel

__all__ = ["Logits", "Program", "Query", "nudging_program"]


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


def nudging_program(setup: Setup, base: LanguageModel, nudger: LanguageModel) -> Program:
    """The official algorithm for one question, as a coroutine that yields model `Query`s.

    It never calls a model itself: a driver answers each query, either one stream with a `CachedLM`
    per model (`nudging.fast`) or many streams in lock-step with batched caches (`nudging.lockstep`).
    Returns the `NudgeResult` (its `info` is filled in by the driver).
    """
    config, prompts, gen = setup.config, setup.prompts, setup.generator
    base_eos, nudge_eos = setup.base_eos, setup.nudge_eos
    gamma, chunk = config.gamma, config.base_chunk_tokens
    base_tokenizer, nudging_tokenizer = base.tokenizer, nudger.tokenizer  # (texts of new tokens)

    def ask(model: Literal["base", "nudger"], ids: list[int], need: Iterable[int] = ()) -> Program:
        return (yield Query(model, ids, tuple(need)))

    def next_logits(model: Literal["base", "nudger"], ids: list[int]) -> Program:
        return (yield from ask(model, ids))[len(ids) - 1]

    def base_ids(t: str) -> list[int]:
        return base.encode(prompts.base + t, add_special_tokens=True)

    length_memo: dict[str, int] = {}

    def base_len(t: str) -> int:
        if t not in length_memo:
            length_memo.clear()
            length_memo[t] = len(base.encode(t, add_special_tokens=False))
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
        context = nudger.encode(prompts.nudger + text, add_special_tokens=False)
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
