"""The stateless reference implementation: every model call re-encodes the whole text from scratch.

A direct transcription of the official API client (`utils.completion_with_nudging`): each call is an
independent "completion request" of at most 16 tokens on `prompt + answer so far`, exactly what an
OpenAI-compatible server without prefix caching computes. Slow by design; the fast implementation
(`nudging.fast`) must give exactly the same greedy output.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import torch

from nudging._checks import Setup, check_and_prepare
from nudging._lm import choose, token_texts
from nudging.config import NudgingConfig
from nudging.prompts import NudgingPrompt
from nudging.result import NudgeResult, Segment, StopReason, finalize
from nudging.words import is_repeated_chunk, is_repeated_nudge, join_words, repetition_span, split_words
from reprokit.lm import LanguageModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    """One completion request's answer: tokens (EOS excluded), their texts and top-1 probabilities."""

    ids: tuple[int, ...]
    texts: tuple[str, ...]
    p1: tuple[float, ...]
    stopped: bool  # the model emitted EOS (finish_reason "stop")
    processed: int = 0  # tokens run through the model by this call (prompt + fed tokens)
    eos_p1: float = 1.0  # the top-1 probability where the EOS was chosen (when `stopped`)

    @property
    def text(self) -> str:
        return "".join(self.texts)


@torch.no_grad()
def complete(
    lm: LanguageModel,
    prompt_ids: list[int],
    max_tokens: int,
    eos: frozenset[int],
    config: NudgingConfig,
    generator: torch.Generator | None = None,
) -> Completion:
    """A stateless completion call: encode nothing is reused; decode up to `max_tokens` tokens."""
    model, device = lm.model, lm.device
    out = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True, logits_to_keep=1)
    cache, logits = out.cache, out.logits[0, -1]
    ids: list[int] = []
    p1s: list[float] = []
    stopped, eos_p1 = False, 1.0
    while len(ids) < max_tokens:
        token, p1 = choose(logits, config, generator)
        if token in eos:
            stopped, eos_p1 = True, p1
            break
        ids.append(token)
        p1s.append(p1)
        if len(ids) == max_tokens:
            break
        out = model(
            input_ids=torch.tensor([[token]], device=device), cache=cache, use_cache=True, logits_to_keep=1
        )
        cache, logits = out.cache, out.logits[0, -1]
    texts = token_texts(lm.tokenizer, prompt_ids, ids)
    processed = len(prompt_ids) + max(0, len(ids) - (0 if stopped else 1))
    return Completion(tuple(ids), tuple(texts), tuple(p1s), stopped, processed, eos_p1)


def nudge_reference(
    base: LanguageModel,
    nudger: LanguageModel,
    prompt: str | NudgingPrompt,
    config: NudgingConfig | None = None,
    *,
    plain_nudger_prompt: bool = False,
    allow_mixed_devices: bool = False,
) -> NudgeResult:
    """Nudge the `base` model with the `nudger` model on one question, re-encoding everything every call."""
    (setup,) = check_and_prepare(
        base,
        nudger,
        [prompt],
        config,
        plain_nudger_prompt=plain_nudger_prompt,
        allow_mixed_devices=allow_mixed_devices,
    )
    return run_reference(setup, base, nudger)


def run_reference(setup: Setup, base: LanguageModel, nudger: LanguageModel) -> NudgeResult:
    """One question by the stateless algorithm (the pair was checked where it entered)."""
    config, prompts, gen = setup.config, setup.prompts, setup.generator
    base_eos, nudge_eos = setup.base_eos, setup.nudge_eos
    gamma, chunk = config.gamma, config.base_chunk_tokens

    def base_ids(t: str) -> list[int]:
        return base.encode(prompts.base + t, add_special_tokens=True)

    def base_len(t: str) -> int:
        return len(base.encode(t, add_special_tokens=False))

    work = {"base_forward_tokens": 0, "nudger_forward_tokens": 0}

    def base_call(t: str) -> Completion:
        c = complete(base, base_ids(t), chunk, base_eos, config, gen)
        work["base_forward_tokens"] += c.processed
        return c

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
        nudger_ids = nudger.encode(prompts.nudger + text, add_special_tokens=False)
        la = complete(nudger, nudger_ids, config.lookahead_tokens, nudge_eos, config, gen)
        work["nudger_forward_tokens"] += la.processed
        lazy = config.lazy_lookahead
        if la.stopped and not lazy:
            text += la.text
            segments.append(Segment(la.text, "nudger"))
            stop = "nudging_model_stop"
            break
        # Stage 1: how many nudging words to inject before the base model takes over.
        lead, words = split_words(la.text)
        takeover, k, first, eos_reached = False, max(1, len(words) - 1), None, False
        for kc in itertools.count(1):
            # lazy_lookahead: candidate kc is tested once words[kc] is complete; a look-ahead that ends
            # at EOS before that point is committed whole, as in the official code.
            if lazy and la.stopped and len(words) < kc + 2:
                eos_reached = True
                break
            if kc >= len(words):
                break
            if words[kc] == "":
                continue
            b = base_call(text + join_words(lead, words[:kc]))
            if not b.ids:  # the base model's next token is EOS
                takeover, k = True, kc
                break
            piece = b.texts[0]
            if (" " + words[kc]).startswith(piece) or b.p1[0] >= gamma:  # an empty piece agrees
                takeover, k, first = True, kc, b
                break
        if eos_reached:
            text += la.text
            segments.append(Segment(la.text, "nudger"))
            stop = "nudging_model_stop"
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
        # stays >= gamma, one completion call of `chunk` tokens after another; the first chunk is the rest
        # of the Stage-1 call, whose first token is accepted.
        left = config.max_new_tokens - base_len(text)  # official `max_completion_token`
        budget = max(1, left)  # exact_length: the first token is always accepted
        text += first.texts[0]
        segments.append(Segment(first.texts[0], "base"))
        written, accepted = first.texts[0], 1  # this round's base text (official `completion_base`)
        b, skip, chunk_no, base_stop = first, 1, 0, False
        while (accepted < budget) if config.exact_length else (base_len(written) < left):
            if chunk_no > 0:
                b, skip = base_call(text), 0
            texts, p1s = b.texts[skip:], b.p1[skip:]
            cut = None  # how many of the chunk's tokens are accepted (None: all)
            for i, p1 in enumerate(p1s):
                if p1 < gamma or (config.exact_length and accepted + i + 1 > budget):
                    cut = i
                    break
            if cut is None and b.stopped and b.eos_p1 < gamma:
                cut = len(texts)
            eos_hit = b.stopped and cut in (None, len(texts))
            n_acc = len(texts) if cut is None else cut
            piece = "".join(texts[:n_acc])
            ended = True
            if config.stop_on_repeated_chunk and "".join(texts) in written:
                pass  # the chunk repeats this round's base text: it adds nothing, the base run ends
            elif not is_repeated_chunk(piece, text, config.min_repeat_words):
                text += piece
                written += piece
                accepted += n_acc
                segments.append(Segment(piece, "base"))
                # The official code checks the finish reason only of the chunks it requested in this
                # loop, so an EOS in the Stage-1 chunk does not end the run.
                # A later chunk that adds no text would be asked again unchanged: end (only reachable
                # with stop_on_repeated_chunk off, where "" is not caught as a repeat).
                ended = cut is not None or (eos_hit and chunk_no > 0) or (chunk_no > 0 and not piece)
            if eos_hit and not config.base_eos_hands_back:
                base_stop = True
                break
            if ended:
                break
            chunk_no += 1
        if base_stop:
            stop = "base_model_stop"
            break
    keep = (
        repetition_span(text, config.repetition_search, config.min_repetition_chars)
        if config.strip_repetitions
        else None
    )
    result = finalize(segments, stop, rounds, base.tokenizer, keep=keep)
    result.info.update(work)
    return result
