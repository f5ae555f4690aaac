"""Batched log-likelihoods of texts or token sequences under a causal LM.

Per-token and per-example scores, an optional prompt part excluded from the score, left or right
padding with correct position ids, no grad, dtype and device aware. Batched results equal scoring
each example alone (to float tolerance), which the tests check for every zoo architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from reprokit.lm import LanguageModel, check_token_ids, input_device, require_lm
from reprokit.progress import progress

PaddingSide = Literal["left", "right"]


@dataclass(frozen=True)
class SequenceScores:
    """Scores of a list of sequences: log p of each scored token, and per-example sums."""

    token_logprobs: tuple[np.ndarray, ...]

    @property
    def n_tokens(self) -> np.ndarray:
        """Number of scored tokens per example."""
        return np.array([len(t) for t in self.token_logprobs], dtype=np.int64)

    @property
    def sum_logprob(self) -> np.ndarray:
        """Total log-likelihood of the scored part of each example."""
        return np.array([float(t.sum()) for t in self.token_logprobs], dtype=np.float64)

    @property
    def mean_nll(self) -> np.ndarray:
        """Mean negative log-likelihood per scored token (NaN where nothing was scored)."""
        n = self.n_tokens
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, -self.sum_logprob / np.maximum(n, 1), np.nan)

    def __len__(self) -> int:
        return len(self.token_logprobs)


@torch.no_grad()
def score_token_ids(
    model: LanguageModel | torch.nn.Module,
    sequences: Sequence[Sequence[int]],
    *,
    prompt_lengths: Sequence[int] | None = None,
    batch_size: int = 16,
    padding_side: PaddingSide = "right",
    pad_token_id: int | None = None,
    show_progress: bool = False,
) -> SequenceScores:
    """Log p of every token after the first `prompt_lengths[i]` tokens of each sequence.

    The first token of a sequence is never scored (it has no context); a prompt length of 0 or 1
    scores everything after it. Sequences are batched in their given order and padded on
    `padding_side`; position ids follow the attention mask so left padding gives the same numbers.
    `model` is a `LanguageModel` (padding with its pad id) or a bare causal LM module (padding with
    `pad_token_id`, else 0: padded positions are masked out, so any valid id gives the same scores).
    """
    n = len(sequences)
    if n == 0:
        return SequenceScores(())
    if prompt_lengths is None:
        prompt_lengths = [0] * n
    if len(prompt_lengths) != n:
        raise ValueError(f"score_token_ids: {len(prompt_lengths)} prompt lengths for {n} sequences.")
    if batch_size < 1:
        raise ValueError("score_token_ids: batch_size must be >= 1.")
    if padding_side not in ("left", "right"):
        raise ValueError(f"score_token_ids: padding_side must be 'left' or 'right', got {padding_side!r}.")
    for i, seq in enumerate(sequences):
        if len(seq) == 0:
            raise ValueError(
                f"score_token_ids: sequence {i} is empty; every sequence needs at least one token."
            )
    if isinstance(model, LanguageModel):
        pad = model.pad_id if pad_token_id is None else pad_token_id
        model = model.model
    else:
        pad = 0 if pad_token_id is None else pad_token_id
    check_token_ids(model, sequences, "score_token_ids: sequence")
    device = input_device(model)
    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    starts = range(0, n, batch_size)
    for start in progress(starts, total=len(starts), desc="scoring") if show_progress else starts:
        chunk = sequences[start : start + batch_size]
        lengths = [len(s) for s in chunk]
        width = max(lengths)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, seq in enumerate(chunk):
            offset = width - len(seq) if padding_side == "left" else 0
            ids[row, offset : offset + len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
            mask[row, offset : offset + len(seq)] = 1
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, position_ids = ids.to(device), mask.to(device), position_ids.to(device)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits
        # log p(token t+1 | ..t) = logit[target] - logsumexp(logits), in float32 for stability
        logits = logits[:, :-1].float()
        targets = ids[:, 1:]
        token_lp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        token_lp = token_lp.cpu().numpy()
        for row, length in enumerate(lengths):
            offset = width - length if padding_side == "left" else 0
            first = max(int(prompt_lengths[start + row]), 1)  # first scored token index
            out.append(token_lp[row, offset + first - 1 : offset + length - 1].astype(np.float64))
    if was_training:
        model.train()
    return SequenceScores(tuple(out))


def score_texts(
    lm: LanguageModel,
    texts: Sequence[str],
    *,
    prompts: Sequence[str] | None = None,
    batch_size: int = 16,
    padding_side: PaddingSide | None = None,
    add_special_tokens: bool = True,
    max_length: int | None = None,
    show_progress: bool = False,
) -> SequenceScores:
    """Log-likelihood of each text, or of each text as a continuation of `prompts[i]`.

    Prompt and continuation are tokenized separately and concatenated, so the boundary is exact and
    only continuation tokens are scored. Without prompts, every token after the first is scored (the
    tokenizer's bos, if it adds one, makes the first real token count too). `max_length` truncates
    from the left, keeping the end of the text.
    """
    lm = require_lm(lm, "score_texts: lm")
    if prompts is not None and len(prompts) != len(texts):
        raise ValueError(f"score_texts: {len(prompts)} prompts for {len(texts)} texts.")
    sequences: list[list[int]] = []
    prompt_lengths: list[int] = []
    for i, text in enumerate(texts):
        if prompts is None:
            if not text:
                raise ValueError(f"score_texts: text {i} is empty.")
            ids = lm.encode(text, add_special_tokens=add_special_tokens)
            p = 0
        else:
            if not text:
                raise ValueError(f"score_texts: continuation {i} is empty; there is nothing to score.")
            p_ids = lm.encode(prompts[i], add_special_tokens=add_special_tokens)
            c_ids = lm.encode(text, add_special_tokens=False)
            ids, p = [*p_ids, *c_ids], len(p_ids)
        if max_length is not None and len(ids) > max_length:
            cut = len(ids) - max_length
            ids, p = ids[cut:], max(0, p - cut)
        sequences.append(ids)
        prompt_lengths.append(p)
    return score_token_ids(
        lm,
        sequences,
        prompt_lengths=prompt_lengths,
        batch_size=batch_size,
        padding_side=padding_side or getattr(lm.tokenizer, "padding_side", "right"),
        show_progress=show_progress,
    )
