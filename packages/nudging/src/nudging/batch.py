"""Batched greedy generation with a single model: the base-only and aligned-only baselines."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nudging._lm import eos_ids, input_device, pad_id

logger = logging.getLogger(__name__)


@torch.no_grad()
def generate_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 512,
    batch_size: int = 16,
    add_special_tokens: bool = True,
    stop_at_eos: bool = True,
) -> list[str]:
    """Greedy continuations of `prompts` (left-padded batches, KV cache), stopping at EOS.

    Use `add_special_tokens=False` for prompts rendered by a chat template (they hold their own bos);
    `stop_at_eos=False` always decodes `max_new_tokens` tokens (for speed measurements).
    """
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not a single string")
    if any(not p for p in prompts):
        raise ValueError("generate_texts: a prompt is empty; pass non-empty prompts.")
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be >= 1")
    eos = sorted(eos_ids(model, tokenizer))
    pad = pad_id(model, tokenizer)
    device = input_device(model)
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = [
            tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"]
            for p in prompts[start : start + batch_size]
        ]
        width = max(len(ids) for ids in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, seq in enumerate(chunk):
            ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, position_ids = ids.to(device), mask.to(device), position_ids.to(device)
        done = torch.zeros(len(chunk), dtype=torch.bool, device=device)
        generated: list[list[int]] = [[] for _ in chunk]
        eos_t = torch.tensor(eos, device=device)
        res = model(
            input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True, logits_to_keep=1
        )
        cache = res.cache
        for _ in range(max_new_tokens):
            nxt = res.logits[:, -1].float().argmax(-1)
            is_eos = torch.isin(nxt, eos_t) if stop_at_eos else torch.zeros_like(done)
            for row in range(len(chunk)):
                if not done[row] and not is_eos[row]:
                    generated[row].append(int(nxt[row]))
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
        out.extend(tokenizer.decode(g, skip_special_tokens=True) for g in generated)
    return out
