"""The single-stream driver: one question, one KV cache per model, kept across rounds, cropped on rollback.

Each model keeps the token ids its cache holds. Before a model is asked anything, the text it must
condition on is tokenized canonically (the whole prompt + answer, a cheap tokenizer call) and compared
with the cached ids: the cache is cropped to the longest common prefix and only the remaining tokens
are run through the model. So each model only processes text it has not seen, a word boundary that
re-tokenizes differently (another tokenizer's words, merged tokens) is healed by cropping, and the
result is exactly the reference implementation's (`nudging.reference`) for greedy decoding.

The algorithm itself is `nudging.program.nudging_program`; this module answers its queries for one
question (`nudging.lockstep` answers many questions' queries in batches).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from transformers import PreTrainedModel

from nudging._cache import Logits, answer_from, growable_cache, plan_sync
from nudging._checks import Setup, check_and_prepare
from nudging.config import NudgingConfig
from nudging.program import nudging_program
from nudging.prompts import NudgingPrompt
from nudging.result import NudgeResult
from reprokit.lm import LanguageModel, input_device

__all__ = ["CachedLM", "nudge_fast", "run_stream"]

logger = logging.getLogger(__name__)


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


def run_stream(setup: Setup, base: LanguageModel, nudger: LanguageModel) -> NudgeResult:
    """Run one question's program with a `CachedLM` per model (the pair was checked where it entered)."""
    lms = {"base": CachedLM(base.model), "nudger": CachedLM(nudger.model)}
    program = nudging_program(setup, base, nudger)
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


def nudge_fast(
    base: LanguageModel,
    nudger: LanguageModel,
    prompt: str | NudgingPrompt,
    config: NudgingConfig | None = None,
    *,
    plain_nudger_prompt: bool = False,
    allow_mixed_devices: bool = False,
) -> NudgeResult:
    """Nudge the `base` model with the `nudger` model on one question, with a KV cache per model."""
    (setup,) = check_and_prepare(
        base,
        nudger,
        [prompt],
        config,
        plain_nudger_prompt=plain_nudger_prompt,
        allow_mixed_devices=allow_mixed_devices,
    )
    return run_stream(setup, base, nudger)
