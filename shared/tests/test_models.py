"""`reprokit.models` is kept for old imports: it re-exports `reprokit.lm` and wraps `load_lm`, warning."""

from __future__ import annotations

import pytest
import torch

from reprokit import lm, models, zoo


def test_old_names_are_the_new_ones():
    for name in ("ModelNotFoundError", "UnsafeCheckpointError", "resolve_device", "resolve_dtype"):
        assert getattr(models, name) is getattr(lm, name)


def test_load_causal_lm_warns_and_returns_the_pair(tokenizer, tmp_path):
    zoo.build_model("gpt_neox-0.3m", tokenizer).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.warns(DeprecationWarning, match="use reprokit.lm.load_lm"):
        model, tok = models.load_causal_lm(tmp_path, device="cpu")
    assert isinstance(model, torch.nn.Module) and not model.training
    assert tok("Item 3").input_ids == tokenizer("Item 3").input_ids
