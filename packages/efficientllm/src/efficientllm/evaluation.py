"""Evaluate a (pruned) causal LM: perplexity, and zero-shot multiple choice by log-likelihood.

`multiple_choice` scores items the way lm-evaluation-harness scores ``output_type: multiple_choice``
tasks with its HF model, so numbers are comparable: each choice is the continuation
``target_delimiter + choice`` of the context; context and continuation are tokenized jointly and split
where the context's own tokens end (trailing spaces of the context move to the continuation), without
special tokens, and an empty context is replaced by the BOS (else EOS) token. ``acc`` takes the choice of
highest summed log-likelihood, ``acc_norm`` the highest after dividing by the choice's length in
characters (the choice text without the delimiter); ties go to the first choice, as ``np.argmax`` does.

At paper scale, `lm_eval_tasks` runs the paper's tasks through lm-evaluation-harness itself (an optional
dependency: ``pip install lm-eval``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reprokit.errors import ConfigError, DataError
from reprokit.lm import LanguageModel, require_lm
from reprokit.scoring import score_token_ids

__all__ = [
    "PAPER_TASKS",
    "MCItem",
    "MCItemScore",
    "MCResult",
    "encode_pair",
    "lm_eval_tasks",
    "multiple_choice",
    "perplexity",
]

#: The zero-shot tasks of the paper's Table 2, as lm-evaluation-harness names them (MMLU, then the
#: seven common-sense tasks whose mean is the table's "Avg.").
PAPER_TASKS = (
    "mmlu",
    "arc_challenge",
    "arc_easy",
    "boolq",
    "hellaswag",
    "openbookqa",
    "piqa",
    "winogrande",
)


# ------------------------------------------------------------------------------------- perplexity
def perplexity(
    lm: LanguageModel, texts: Sequence[str], *, batch_size: int = 16, max_length: int | None = None
) -> float:
    """Token-weighted perplexity of `texts`: exp(total NLL / total scored tokens).

    Each text is tokenized with the tokenizer's special tokens (a BOS makes its first real token count).
    A text longer than `max_length` tokens is cut into windows of `max_length` that overlap by one token,
    so every token after the first is scored exactly once (with the context of its own window).
    """
    lm = require_lm(lm, "perplexity: lm")
    if not texts:
        raise DataError("perplexity: no texts given; pass at least one non-empty text.")
    if max_length is not None and max_length < 2:
        raise ConfigError(f"perplexity: max_length must be at least 2 tokens, got {max_length}.")
    windows: list[list[int]] = []
    for i, text in enumerate(texts):
        if not text:
            raise DataError(f"perplexity: text {i} is empty; drop empty texts before scoring.")
        ids = lm.encode(text)
        if max_length is None or len(ids) <= max_length:
            windows.append(ids)
            continue
        for start in range(0, len(ids) - 1, max_length - 1):
            windows.append(ids[start : start + max_length])
    windows = [w for w in windows if len(w) > 1]
    if not windows:
        raise DataError(
            "perplexity: every text is a single token, so nothing can be scored; pass longer texts (or a "
            "tokenizer that adds a BOS token)."
        )
    scores = score_token_ids(lm, windows, batch_size=batch_size)
    total = float(scores.sum_logprob.sum())
    count = int(scores.n_tokens.sum())
    return math.exp(-total / count)


# -------------------------------------------------------------------------------- multiple choice
@dataclass(frozen=True)
class MCItem:
    """One multiple-choice question: the context, the choice texts (without delimiter), the gold index."""

    context: str
    choices: tuple[str, ...]
    answer: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if len(self.choices) < 2:
            raise DataError(f"MCItem needs at least two choices, got {len(self.choices)}: {self.context!r}.")
        if any(not c for c in self.choices):
            raise DataError(f"MCItem has an empty choice: {self.context!r} {self.choices!r}.")
        if not 0 <= self.answer < len(self.choices):
            raise DataError(
                f"MCItem answer {self.answer} is not an index into its {len(self.choices)} choices: "
                f"{self.context!r}."
            )


@dataclass(frozen=True)
class MCItemScore:
    """The log-likelihood of each choice of one item, and the predictions made from them."""

    loglikelihoods: tuple[float, ...]
    pred: int
    pred_norm: int
    answer: int

    @property
    def correct(self) -> bool:
        """Whether the highest-likelihood choice is the gold one (lm-eval ``acc``)."""
        return self.pred == self.answer

    @property
    def correct_norm(self) -> bool:
        """Whether the highest per-character likelihood choice is the gold one (lm-eval ``acc_norm``)."""
        return self.pred_norm == self.answer


@dataclass(frozen=True)
class MCResult:
    """Accuracy over items, as lm-evaluation-harness reports ``acc`` and ``acc_norm``."""

    acc: float
    acc_norm: float
    n: int
    per_item: tuple[MCItemScore, ...]


def encode_pair(
    lm: LanguageModel, context: str, continuation: str, *, add_special_tokens: bool = False
) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) as lm-evaluation-harness splits them.

    Trailing whitespace of the context moves to the continuation; ``context + continuation`` is encoded
    whole and split after the context's own token count. An empty context becomes the BOS (else EOS) id.
    """
    if context == "":
        prefix = lm.tokenizer.bos_token_id
        prefix = min(lm.eos_ids) if prefix is None else int(prefix)
        return [prefix], lm.encode(continuation, add_special_tokens=add_special_tokens)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = lm.encode(context + continuation, add_special_tokens=add_special_tokens)
    context_ids = lm.encode(context, add_special_tokens=add_special_tokens)
    return context_ids, whole[len(context_ids) :]


def multiple_choice(
    lm: LanguageModel,
    items: Sequence[MCItem],
    *,
    batch_size: int = 16,
    target_delimiter: str = " ",
    add_special_tokens: bool = False,
    max_length: int | None = None,
) -> MCResult:
    """Zero-shot multiple choice by log-likelihood: lm-eval's ``acc`` and ``acc_norm`` over `items`.

    Scores ``target_delimiter + choice`` after each context (see the module docstring for the exact
    tokenization). `add_special_tokens=True` prepends BOS as lm-eval's ``add_bos_token=True`` does (Gemma);
    `max_length` keeps only the last ``max_length + 1`` tokens of a long request, as lm-eval does.
    """
    lm = require_lm(lm, "multiple_choice: lm")
    if not items:
        raise DataError("multiple_choice: no items given.")
    sequences: list[list[int]] = []
    prompt_lengths: list[int] = []
    for i, item in enumerate(items):
        if not isinstance(item, MCItem):
            raise TypeError(f"multiple_choice: item {i} is a {type(item).__name__}, not an MCItem.")
        for choice in item.choices:
            ctx, cont = encode_pair(
                lm, item.context, target_delimiter + choice, add_special_tokens=add_special_tokens
            )
            if not cont:
                raise DataError(
                    f"multiple_choice: item {i}, choice {choice!r} adds no token after the context once "
                    "tokenized jointly; check the context and choices (e.g. a choice merged into the "
                    "context)."
                )
            ids = ctx + cont
            if max_length is not None and len(ids) > max_length + 1:
                if len(cont) > max_length:
                    raise DataError(
                        f"multiple_choice: item {i}, choice {choice!r} is {len(cont)} tokens, longer than "
                        f"max_length={max_length}; raise max_length."
                    )
                ids = ids[-(max_length + 1) :]
            sequences.append(ids)
            prompt_lengths.append(len(ids) - len(cont))
    scores = score_token_ids(lm, sequences, prompt_lengths=prompt_lengths, batch_size=batch_size)
    lls = scores.sum_logprob
    per_item: list[MCItemScore] = []
    offset = 0
    for item in items:
        k = len(item.choices)
        item_lls = lls[offset : offset + k]
        offset += k
        lengths = np.array([float(len(c)) for c in item.choices])
        per_item.append(
            MCItemScore(
                loglikelihoods=tuple(float(x) for x in item_lls),
                pred=int(np.argmax(item_lls)),
                pred_norm=int(np.argmax(item_lls / lengths)),
                answer=item.answer,
            )
        )
    n = len(per_item)
    return MCResult(
        acc=sum(s.correct for s in per_item) / n,
        acc_norm=sum(s.correct_norm for s in per_item) / n,
        n=n,
        per_item=tuple(per_item),
    )


# ----------------------------------------------------------------------------------- lm-eval tasks
def lm_eval_tasks(
    model_path: str | os.PathLike[str],
    tasks: Sequence[str] = PAPER_TASKS,
    *,
    batch_size: int | str = 16,
    device: str = "cuda",
    num_fewshot: int = 0,
    dtype: str = "auto",
    limit: int | float | None = None,
) -> dict[str, dict[str, float]]:
    """Run `tasks` on an exported model through lm-evaluation-harness's Python API (`simple_evaluate`).

    Returns ``{task: {metric: value}}`` with lm-eval's filter suffix dropped (``"acc,none"`` -> ``"acc"``,
    stderrs as ``"acc_stderr"``). Per-layer exports load because ``import efficientllm`` registered their
    classes; remote code is never trusted. Needs ``pip install lm-eval`` (and the task datasets).
    """
    try:
        import lm_eval
    except ImportError as err:
        raise ConfigError(
            "lm_eval_tasks needs lm-evaluation-harness, which is not installed; run `pip install lm-eval` "
            "(or install efficientllm with the eval extra), or score items with efficientllm.evaluation."
            "multiple_choice instead."
        ) from err
    import efficientllm.modeling  # noqa: F401  registers the per-layer model with the Auto classes

    tasks = list(tasks)
    if not tasks:
        raise ConfigError("lm_eval_tasks: no tasks given; e.g. efficientllm.evaluation.PAPER_TASKS.")
    model_args: dict[str, Any] = {"pretrained": str(model_path), "dtype": dtype, "trust_remote_code": False}
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=model_args,
        tasks=tasks,
        num_fewshot=num_fewshot,
        batch_size=batch_size,
        device=device,
        limit=limit,
    )
    if not out or "results" not in out:
        raise ConfigError("lm_eval.simple_evaluate returned no results (was this a non-zero rank?).")
    return {
        task: {
            key.split(",")[0]: float(value)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        for task, metrics in out["results"].items()
    }
