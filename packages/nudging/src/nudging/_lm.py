"""Small helpers shared by the reference and fast implementations: encoding, top-1, detokenization."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nudging.config import NudgingConfig

_CONTEXT = 6  # tokens of left context used to detokenize a new token with its leading space


def input_device(model: PreTrainedModel) -> torch.device:
    """The device of the model's input embeddings (where input ids must go)."""
    try:
        return model.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        return next(model.parameters()).device


def eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """Every end-of-sequence id: the tokenizer's and the generation config's (may be a list)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen = getattr(model, "generation_config", None)
    value = getattr(gen, "eos_token_id", None) if gen is not None else None
    if isinstance(value, int):
        ids.add(value)
    elif isinstance(value, (list, tuple)):
        ids.update(int(v) for v in value)
    if not ids:
        raise ValueError(
            "the model/tokenizer defines no end-of-sequence token; set tokenizer.eos_token so that "
            "generation can end."
        )
    return frozenset(ids)


def pad_id(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    """The id that fills batch padding: the tokenizer's pad token, else the smallest EOS id."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return min(eos_ids(model, tokenizer))


def encode(tokenizer: PreTrainedTokenizerBase, text: str, *, add_special_tokens: bool) -> list[int]:
    """Token ids of `text` (the canonical tokenization every call agrees on)."""
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def token_texts(tokenizer: PreTrainedTokenizerBase, context: Sequence[int], new: Sequence[int]) -> list[str]:
    """The text each of `new` adds after `context` (leading spaces kept, as SentencePiece needs context)."""
    ctx = list(context[-_CONTEXT:])
    prev = tokenizer.decode(ctx, skip_special_tokens=True)
    out = []
    for i in range(len(new)):
        cur = tokenizer.decode([*ctx, *new[: i + 1]], skip_special_tokens=True)
        if cur.startswith(prev):
            out.append(cur[len(prev) :])
        else:  # a merge rewrote the tail (e.g. a completed UTF-8 character): keep what changed
            diff = [i for i, (a, b) in enumerate(zip(prev, cur, strict=False)) if a != b]
            out.append(cur[diff[0] if diff else min(len(prev), len(cur)) :])
        prev = cur
    return out


def choose(
    logits: torch.Tensor, config: NudgingConfig, generator: torch.Generator | None
) -> tuple[int, float]:
    """(next token, top-1 probability) from one row of logits; p1 is always untempered."""
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    p1, argmax = probs.max(dim=-1)
    if not config.do_sample:
        return int(argmax), float(p1)
    scaled = torch.softmax(logits / config.temperature, dim=-1)
    if config.top_p < 1.0:
        sorted_p, order = torch.sort(scaled, descending=True)
        keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < config.top_p
        filtered = torch.zeros_like(scaled)
        filtered[order[keep]] = sorted_p[keep]
        scaled = filtered / filtered.sum()
    token = torch.multinomial(scaled.cpu(), 1, generator=generator)
    return int(token), float(p1)
