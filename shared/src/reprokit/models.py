"""Former home of model loading, kept so old imports work; everything lives in `reprokit.lm` now.

Use `reprokit.lm.load_lm`, which returns a `LanguageModel` handle (model, tokenizer, device, dtype,
pad id, EOS ids, chat template) instead of a (model, tokenizer) pair.
"""

from __future__ import annotations

import os
import warnings

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reprokit.lm import (
    PICKLE_SUFFIXES,
    ModelNotFoundError,
    UnsafeCheckpointError,
    load_lm,
    resolve_device,
    resolve_dtype,
)

__all__ = [
    "PICKLE_SUFFIXES",
    "ModelNotFoundError",
    "UnsafeCheckpointError",
    "load_causal_lm",
    "resolve_device",
    "resolve_dtype",
]


def load_causal_lm(
    name_or_path: str | os.PathLike[str],
    *,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device = "auto",
    revision: str | None = None,
    tokenizer: str | os.PathLike[str] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Deprecated: `reprokit.lm.load_lm(...)`, returned as a (model, tokenizer) pair."""
    warnings.warn(
        "reprokit.models.load_causal_lm is deprecated; use reprokit.lm.load_lm, which returns a "
        "LanguageModel handle (lm.model, lm.tokenizer).",
        DeprecationWarning,
        stacklevel=2,
    )
    lm = load_lm(name_or_path, dtype=dtype, device=device, revision=revision, tokenizer=tokenizer)
    return lm.model, lm.tokenizer
