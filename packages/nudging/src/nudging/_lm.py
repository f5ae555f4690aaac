"""Small helpers shared by the reference and fast implementations: top-1 choice, detokenization.

Device, pad id, EOS ids and encoding come from the model handle (`reprokit.lm.LanguageModel`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from nudging.config import NudgingConfig

_CONTEXT = 6  # tokens of left context used to detokenize a new token with its leading space


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
    from reprokit.generation import sample_next

    token = sample_next(logits[None].cpu(), config.temperature, config.top_p, generator)
    return int(token), float(p1)
