from __future__ import annotations

import pytest
import torch

from reprokit import zoo
from reprokit.hooks import get_module, replace_outputs, trace


@pytest.fixture(scope="module")
def model(tokenizer):
    return zoo.build_model("llama-0.3m", tokenizer).eval()


def _n_hooks(model) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_capture_outputs_of_mlp_and_layer(model):
    x = torch.tensor([[1, 5, 6, 7]])
    with trace(model, ["model.layers.0.mlp", "model.layers.1"]) as t:
        model(input_ids=x)
    assert t["model.layers.0.mlp"].shape == (1, 4, model.config.hidden_size)
    assert t["model.layers.1"].shape == (1, 4, model.config.hidden_size)
    assert _n_hooks(model) == 0


def test_edit_changes_the_output_and_is_undone(model):
    x = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        clean = model(input_ids=x).logits
        with trace(model, ["model.layers.0.mlp"], edit=lambda name, out: out * 0):
            zeroed = model(input_ids=x).logits
        with replace_outputs(model, {"model.layers.0.mlp": torch.zeros(model.config.hidden_size)}):
            replaced = model(input_ids=x).logits
        after = model(input_ids=x).logits
    assert not torch.allclose(clean, zeroed)
    torch.testing.assert_close(zeroed, replaced)
    torch.testing.assert_close(clean, after)


def test_tuple_outputs_keep_their_tail(model):
    """Decoder layers may return tuples; editing replaces only the hidden states."""
    x = torch.tensor([[1, 5, 6]])
    with torch.no_grad(), trace(model, ["model.layers.1"], edit=lambda n, out: out + 1.0) as t:
        model(input_ids=x)
    assert t["model.layers.1"].shape[-1] == model.config.hidden_size


def test_hooks_removed_on_exception(model):
    seen = []

    def body():
        with trace(model, ["model.layers.0.mlp"]):
            seen.append(_n_hooks(model))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        body()
    assert seen == [1]
    assert _n_hooks(model) == 0


def test_unknown_module_suggests_names(model):
    with pytest.raises(KeyError, match=r"model\.layers\.0\.mlp"):
        get_module(model, "model.layers.0.mpl")
    with pytest.raises(KeyError), trace(model, ["model.layers.0.mlp", "nope"]):
        pass
    assert _n_hooks(model) == 0
