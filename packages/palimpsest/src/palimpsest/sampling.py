"""Sample suspect texts from a model (Bob's published text in the observational setting)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from reprokit.generation import generate
from reprokit.lm import LanguageModel, require_lm

logger = logging.getLogger(__name__)

__all__ = ["Samples", "sample_texts"]


@dataclass(frozen=True)
class Samples:
    """Prompts and sampled continuations as token ids (prompt first), plus the decoded continuations."""

    prompt_ids: tuple[tuple[int, ...], ...]
    completion_ids: tuple[tuple[int, ...], ...]
    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.completion_ids)

    def __getitem__(self, index: slice) -> Samples:
        """The samples in `index` (a slice), e.g. ``samples[:100]`` for the first hundred."""
        if not isinstance(index, slice):
            raise TypeError(f"Samples are indexed by a slice, e.g. samples[:100]; got {index!r}.")
        return Samples(self.prompt_ids[index], self.completion_ids[index], self.texts[index])

    @property
    def sequences(self) -> list[list[int]]:
        """prompt + completion ids of each sample (what the reshuffle test scores)."""
        return [[*p, *c] for p, c in zip(self.prompt_ids, self.completion_ids, strict=True)]

    @property
    def prompt_lengths(self) -> list[int]:
        """Prompt length of each sample (its continuation is scored)."""
        return [len(p) for p in self.prompt_ids]

    @property
    def n_tokens(self) -> int:
        """Total sampled (continuation) tokens."""
        return sum(len(c) for c in self.completion_ids)


def sample_texts(
    lm: LanguageModel,
    prompts: Sequence[Sequence[int]] | int,
    *,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    show_progress: bool = False,
) -> Samples:
    """Ancestral sampling (no top-k / top-p); `prompts` are token-id lists or a number of bos-only prompts.

    Generation stops at EOS, which ends the completion's ids; the seed fixes the samples
    (`reprokit.generation.generate`, which draws what transformers' `generate` draws).
    """
    lm = require_lm(lm, "sample_texts: lm")
    if isinstance(prompts, int):
        if lm.tokenizer.bos_token_id is None:
            raise ValueError("the tokenizer has no bos token; pass explicit prompts.")
        prompts = [[lm.tokenizer.bos_token_id]] * prompts
    if len(prompts) == 0:
        raise ValueError("no prompts given; pass at least one prompt.")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("a prompt is empty; every prompt needs at least one token (e.g. bos).")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    gens = generate(
        lm,
        prompts,
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=temperature,
        seed=seed,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    completions = [(*g.token_ids, *(() if g.eos_id is None else (g.eos_id,))) for g in gens]
    keep = [i for i, c in enumerate(completions) if len(c) > 0]
    return Samples(
        tuple(tuple(prompts[i]) for i in keep),
        tuple(completions[i] for i in keep),
        tuple(gens[i].text for i in keep),
    )
