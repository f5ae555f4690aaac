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
from nudging.words import count_words, is_repeated_nudge, join_words, split_words, strip_trailing_repetitions
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
    stopped = False
    while len(ids) < max_tokens:
        token, p1 = choose(logits, config, generator)
        if token in eos:
            stopped = True
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
    return Completion(tuple(ids), tuple(texts), tuple(p1s), stopped, processed)


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
            if (piece and (" " + words[kc]).startswith(piece)) or b.p1[0] >= gamma:
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
        # Stage 2: the base model writes while its top-1 probability stays >= gamma.
        budget = max(1, config.max_new_tokens - base_len(text))
        accepted, b, chunk_no, base_stop = 0, first, 0, False
        while True:
            n_acc, ended = 0, False
            for i, p1 in enumerate(b.p1):
                if accepted >= budget or (not (chunk_no == 0 and i == 0) and p1 < gamma):
                    ended = True
                    break
                n_acc += 1
                accepted += 1
            piece = "".join(b.texts[:n_acc])
            if config.min_repeat_words and count_words(piece) >= config.min_repeat_words and piece in text:
                piece, ended = "", True
            text += piece
            segments.append(Segment(piece, "base"))
            if ended:
                break
            if b.stopped:
                base_stop = not config.base_eos_hands_back
                break
            chunk_no += 1
            b = base_call(text)
        if base_stop:
            stop = "base_model_stop"
            break
    final = (
        strip_trailing_repetitions(text, config.min_repetition_chars) if config.strip_repetitions else text
    )
    result = finalize(segments, stop, rounds, base.tokenizer, strip_to=final)
    result.info.update(work)
    return result
