"""Batched text generation with a `LanguageModel`: greedy or sampled, left-padded, stopping at EOS.

One loop with a KV cache: prompts are left-padded with explicit position ids, so a batched continuation
equals the prompt's continuation alone (up to float rounding of batched matrix products). Sampling
follows `transformers`' `generate` step for step (float32 logits, temperature, top-p, one multinomial
draw per step for the whole batch), so with the same seed it draws the same tokens, without touching
the global random state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from reprokit.errors import ConfigError
from reprokit.lm import LanguageModel, check_token_ids, require_lm
from reprokit.progress import progress

__all__ = [
    "Generation",
    "generate",
    "generate_texts",
    "sample_next",
]


@dataclass(frozen=True)
class Generation:
    """One prompt's continuation: the new token ids (a final EOS excluded) and their text."""

    prompt_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    eos_id: int | None  # the EOS token that ended generation; None when it ran to max_new_tokens
    text: str

    @property
    def stopped(self) -> bool:
        """Whether the model ended the continuation with an EOS token."""
        return self.eos_id is not None


def _check(prompts: object, max_new_tokens: int, batch_size: int, temperature: float, top_p: float) -> None:
    if isinstance(prompts, str):
        raise TypeError(
            "generate: prompts must be a list of strings (or token-id lists), not a single string."
        )
    for name, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"generate: {name} must be a positive int, got {value!r}.")
    if not temperature > 0:
        raise ConfigError(
            f"generate: temperature must be > 0, got {temperature!r}; use do_sample=False for greedy."
        )
    if not 0 < top_p <= 1:
        raise ConfigError(f"generate: top_p must be in (0, 1], got {top_p!r}.")


def sample_next(
    logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator | None
) -> torch.Tensor:
    """One token per row of ``(rows, vocab)`` logits, as transformers' sampling step computes it (same ops,
    same random draws): temperature, then nucleus (top-p) filtering keeping at least the top token."""
    if temperature != 1.0:
        logits = logits / temperature
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=False)
        remove = sorted_logits.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
        remove[..., -1:] = False  # keep at least the most likely token
        logits = logits.masked_fill(remove.scatter(1, order, remove), -float("inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=gen).squeeze(1)


@torch.no_grad()
def generate(
    lm: LanguageModel,
    prompts: Sequence[str] | Sequence[Sequence[int]],
    *,
    max_new_tokens: int = 256,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    add_special_tokens: bool = True,
    stop_at_eos: bool = True,
    show_progress: bool = False,
) -> list[Generation]:
    """Continue each prompt (text, or token ids used as given) by up to `max_new_tokens` tokens.

    Greedy by default; `do_sample=True` samples with `temperature` and `top_p` (no top-k), the draws
    fixed by `seed`. A continuation ends at any of `lm.eos_ids` (`stop_at_eos=False` always decodes
    `max_new_tokens` tokens, for speed measurements). Use `add_special_tokens=False` for text rendered by
    a chat template, which holds its own bos. Results come back in the order of `prompts`.
    """
    lm = require_lm(lm, "generate: lm")
    _check(prompts, max_new_tokens, batch_size, temperature, top_p)
    encoded: list[list[int]] = []
    for i, p in enumerate(prompts):
        ids = (
            lm.encode(p, add_special_tokens=add_special_tokens) if isinstance(p, str) else [int(t) for t in p]
        )
        if not ids or (isinstance(p, str) and not p):
            raise ConfigError(f"generate: prompt {i} is empty; every prompt needs at least one token.")
        encoded.append(ids)
    check_token_ids(lm.model, encoded, "generate: prompt")
    model, device = lm.model, lm.device
    eos = torch.tensor(sorted(lm.eos_ids), device=device)
    pad = lm.pad_id
    gen = torch.Generator(device=device).manual_seed(seed) if do_sample else None
    was_training = model.training
    model.eval()
    out: list[Generation] = []
    starts = range(0, len(encoded), batch_size)
    for start in progress(starts, total=len(starts), desc="generating") if show_progress else starts:
        chunk = encoded[start : start + batch_size]
        width = max(len(ids) for ids in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, seq in enumerate(chunk):  # left padding
            ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, position_ids = ids.to(device), mask.to(device), position_ids.to(device)
        done = torch.zeros(len(chunk), dtype=torch.bool, device=device)
        new: list[list[int]] = [[] for _ in chunk]
        ended: list[int | None] = [None] * len(chunk)
        res = model(
            input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True, logits_to_keep=1
        )
        cache = res.cache
        for _ in range(max_new_tokens):
            logits = res.logits[:, -1].float()
            nxt = sample_next(logits, temperature, top_p, gen) if gen is not None else logits.argmax(-1)
            is_eos = torch.isin(nxt, eos) if stop_at_eos else torch.zeros_like(done)
            rows = zip(nxt.tolist(), is_eos.tolist(), done.tolist(), strict=True)
            for row, (token, stop, finished) in enumerate(rows):
                if finished:
                    continue
                if stop:
                    ended[row] = token
                else:
                    new[row].append(token)
            done |= is_eos
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones((len(chunk), 1), dtype=mask.dtype, device=device)], dim=1)
            position_ids = position_ids[:, -1:] + 1
            nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
            res = model(
                input_ids=nxt[:, None],
                attention_mask=mask,
                position_ids=position_ids,
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            cache = res.cache
        out.extend(
            Generation(tuple(p), tuple(g), e, lm.decode(g)) for p, g, e in zip(chunk, new, ended, strict=True)
        )
    if was_training:
        model.train()
    return out


def generate_texts(
    lm: LanguageModel, prompts: Sequence[str] | Sequence[Sequence[int]], **kwargs: Any
) -> list[str]:
    """The continuations' texts only: `[g.text for g in generate(lm, prompts, **kwargs)]`."""
    return [g.text for g in generate(lm, prompts, **kwargs)]
