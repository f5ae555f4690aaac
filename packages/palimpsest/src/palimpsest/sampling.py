"""Sample suspect texts from a model (Bob's published text in the observational setting)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reprokit.progress import progress

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


@torch.no_grad()
def sample_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[int]] | int,
    *,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    show_progress: bool = False,
) -> Samples:
    """Ancestral sampling (no top-k / top-p); `prompts` are token-id lists or a number of bos-only prompts.

    Generation stops at eos; the seed fixes the samples.
    """
    if isinstance(prompts, int):
        if tokenizer.bos_token_id is None:
            raise ValueError("the tokenizer has no bos token; pass explicit prompts.")
        prompts = [[tokenizer.bos_token_id]] * prompts
    if len(prompts) == 0:
        raise ValueError("no prompts given; pass at least one prompt.")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("a prompt is empty; every prompt needs at least one token (e.g. bos).")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = tokenizer.eos_token_id
    device = next(model.parameters()).device
    model.eval()
    completions: list[tuple[int, ...]] = []
    starts = range(0, len(prompts), batch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in progress(starts, total=len(starts), desc="sampling") if show_progress else starts:
            chunk = [list(p) for p in prompts[start : start + batch_size]]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, p in enumerate(chunk):  # left padding
                ids[i, width - len(p) :] = torch.tensor(p)
                mask[i, width - len(p) :] = 1
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                do_sample=True,
                temperature=temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_new_tokens,
                pad_token_id=pad,
                eos_token_id=eos,
            )
            for row in out[:, width:].tolist():
                if eos is not None and eos in row:
                    row = row[: row.index(eos) + 1]
                completions.append(tuple(row))
    texts = tuple(tokenizer.decode(c, skip_special_tokens=True) for c in completions)
    keep = [i for i, c in enumerate(completions) if len(c) > 0]
    return Samples(
        tuple(tuple(prompts[i]) for i in keep),
        tuple(completions[i] for i in keep),
        tuple(texts[i] for i in keep),
    )
