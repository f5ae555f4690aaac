"""The nudging algorithm, written once: a coroutine that asks for model logits and never calls a model.

`nudging_program` runs the official algorithm (as in `nudging.reference`) for one question. Each time it
needs a model it yields a `Query` ("next-token logits of this model after these ids") and is sent the
answer back. Drivers answer the queries: `nudging.fast.nudge_fast` one question with a KV cache per
model, `nudging.lockstep.nudge_batch` many questions in batched forward passes. The drivers differ only
in how they compute logits, never in what the algorithm does with them.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from nudging._cache import Logits
from nudging._checks import Setup
from nudging._lm import choose, token_texts
from nudging.result import NudgeResult, Segment, StopReason, finalize
from nudging.words import is_repeated_chunk, is_repeated_nudge, join_words, repetition_span, split_words
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


def lookup_guess(ids: Sequence[int], max_tokens: int, ngram: int = 3) -> list[int]:
    """Prompt-lookup draft: the tokens that followed the last earlier occurrence of the final `ngram`
    (else a shorter) suffix of `ids`, at most `max_tokens` of them ([] when there is none)."""
    if max_tokens < 1:
        return []
    for n in range(min(ngram, len(ids) - 1), 0, -1):
        tail = ids[-n:]
        for start in range(len(ids) - n - 1, -1, -1):
            if ids[start : start + n] == tail:
                return list(ids[start + n : start + n + max_tokens])
    return []


def nudging_program(
    setup: Setup, base: LanguageModel, nudger: LanguageModel, *, batched: bool = False
) -> Program:
    """The official algorithm for one question, as a coroutine that yields model `Query`s.

    It never calls a model itself: a driver answers each query, either one stream with a `CachedLM`
    per model (`nudging.fast`) or many streams in lock-step with batched caches (`nudging.lockstep`,
    `batched=True` when several rows share a pass: it decides the default of `verify_lookahead`).
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
        if (" " + word).startswith(piece) or p1 >= gamma:  # an empty piece agrees, as in the official code
            return True, (token, piece)
        return False, None

    lookup = 0 if config.do_sample else config.lookup_draft_tokens
    verify = not batched if config.verify_lookahead is None else config.verify_lookahead

    text, segments, rounds = "", [], 0
    recent = [""]  # the official repeated-nudge counter starts from an empty previous nudge
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
            checked: list[int] = []  # ids whose logits a lookup guess's pass computed (reused by the cache)
            while len(la_ids) < config.lookahead_tokens:
                if min_words is not None and la_ids:
                    words_now = split_words("".join(token_texts(nudging_tokenizer, context, la_ids)))[1]
                    if len(words_now) >= min_words:
                        return False
                ids = context + la_ids
                if lookup and not (len(checked) > len(ids) and checked[: len(ids)] == ids):
                    guess = lookup_guess(ids, min(lookup, config.lookahead_tokens - len(la_ids) - 1))
                    if guess:  # one pass over the guess; the loop below reads its logits from the cache
                        checked = ids + guess
                        yield from ask("nudger", checked, range(len(ids) - 1, len(checked)))
                token, _ = choose((yield from next_logits("nudger", ids)), config, gen)
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
        # Stage 2 (the official `complete_with_base`): the base model writes while its top-1 probability
        # stays >= gamma, in chunks of `chunk` tokens that re-synchronise with the canonical tokenization
        # (as the reference's separate calls do). The first chunk is the Stage-1 call's: its first token
        # is accepted, the rest is read as a chunk of `chunk - 1` tokens.
        # Speculation: the rest of the look-ahead, in base tokens, is read in one pass; its logits are
        # used for as long as the base model writes the same tokens (the output does not change).
        spec: list[list[int]] = []
        if verify:
            rest = join_words(lead, words)[len(nudge) :]  # the look-ahead after the nudge
            if rest:
                spec.append(base_ids(text + rest))

        def base_step(ids: list[int], spec: list[list[int]] = spec) -> Program:
            if spec and len(spec[0]) > len(ids) and spec[0][: len(ids)] == ids:
                return (yield from ask("base", spec[0], range(len(ids) - 1, len(spec[0]))))[len(ids) - 1]
            spec.clear()
            return (yield from next_logits("base", ids))

        left = config.max_new_tokens - base_len(text)  # official `max_completion_token`
        budget = max(1, left)  # exact_length: the first token is always accepted
        token, piece = first
        text += piece
        segments.append(Segment(piece, "base"))
        written, accepted = piece, 1  # this round's base text (official `completion_base`)
        context, size, chunk_no, base_stop = [*base_ctx, token], chunk - 1, 0, False
        while (accepted < budget) if config.exact_length else (base_len(written) < left):
            # One chunk: `size` tokens (an EOS ends it early), `cut` = how many are accepted. Tokens past
            # the cut are read only while they could still make the chunk a repeat of `written`.
            new: list[int] = []
            cut: int | None = None
            eos = False
            while len(new) < size:
                token, p1 = choose((yield from base_step(context + new)), config, gen)
                if token in base_eos:
                    eos = True
                    if cut is None and p1 < gamma:
                        cut = len(new)
                    break
                new.append(token)
                if cut is None and (p1 < gamma or (config.exact_length and accepted + len(new) > budget)):
                    cut = len(new) - 1
                if cut is not None and (
                    not config.stop_on_repeated_chunk
                    or "".join(token_texts(base_tokenizer, context, new)) not in written
                ):
                    break
            pieces = token_texts(base_tokenizer, context, new)
            eos_hit = eos and cut in (None, len(new))
            ended = True
            if config.stop_on_repeated_chunk and (eos or len(new) == size) and "".join(pieces) in written:
                pass  # the chunk repeats this round's base text: it adds nothing, the base run ends
            else:
                n_acc = len(new) if cut is None else cut
                piece = "".join(pieces[:n_acc])
                if not is_repeated_chunk(piece, text, config.min_repeat_words):
                    text += piece
                    written += piece
                    accepted += n_acc
                    segments.append(Segment(piece, "base"))
                    # An EOS in the Stage-1 chunk does not end the run (the official code only checks
                    # the finish reason of chunks it requested itself): the next chunk is requested.
                    # A later chunk that adds no text would be asked again unchanged: end (only
                    # reachable with stop_on_repeated_chunk off, where "" is not caught as a repeat).
                    ended = cut is not None or (eos_hit and chunk_no > 0) or (chunk_no > 0 and not piece)
            if eos_hit and not config.base_eos_hands_back:
                base_stop = True
                break
            if ended:
                break
            chunk_no += 1
            context, size = base_ids(text), chunk
        if base_stop:
            stop = "base_model_stop"
            break
    keep = (
        repetition_span(text, config.repetition_search, config.min_repetition_chars)
        if config.strip_repetitions
        else None
    )
    return finalize(segments, stop, rounds, base_tokenizer, keep=keep)
