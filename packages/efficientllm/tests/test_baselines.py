"""Baselines: one-shot Taylor pruning, uniform shapes, fresh models of a pruned model's shape."""

from __future__ import annotations

import copy

import pytest
import torch

from efficientllm.baselines import (
    build_from_shape,
    from_scratch_like,
    one_shot_prune,
    shape_of,
    uniform_shape,
)
from efficientllm.groups import find_groups
from efficientllm.modeling import EfficientLlamaConfig

from .conftest import VOCAB, build_tiny


def _calib() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return [torch.randint(0, VOCAB, (2, 12), generator=gen) for _ in range(3)]


def _params(model) -> int:
    return find_groups(model).live_params()


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_one_shot_reaches_target_within_one_group(arch):
    model = build_tiny(arch)
    before = _params(model)
    target = int(0.6 * before)
    state = one_shot_prune(model, _calib(), target_params=target)
    space = find_groups(model)
    after = space.live_params()
    assert after == space.live_params(state)  # compacted: tensors hold exactly the kept units
    smallest = min(
        space.unit_params(k, layer)
        for k in ("head", "ffn", "hidden")
        for layer in space.layer_keys(k)
        if state.kept_count(k, layer) > 1
    )
    assert target <= after < target + smallest
    assert sum(state.removed_counts().values()) > 0


def test_one_shot_removes_lowest_direct_taylor_scores():
    """FFN-only, unnormalised: the removed channels are the globally lowest sum |g*w| over gate/up/down."""
    model = build_tiny("llama")
    ref = copy.deepcopy(model)
    batches = _calib()
    for ids in batches:
        ref(input_ids=ids, labels=ids).loss.backward()
    scores = []
    for i, layer in enumerate(ref.model.layers):
        mlp = layer.mlp
        g = lambda m: (m.weight.grad / len(batches) * m.weight.detach()).abs()  # noqa: E731
        s = g(mlp.gate_proj).sum(1) + g(mlp.up_proj).sum(1) + g(mlp.down_proj).sum(0)
        scores += [(float(v), i, j) for j, v in enumerate(s)]
    target = _params(model) - 10 * find_groups(model).unit_params("ffn", 0)
    state = one_shot_prune(model, batches, target_params=target, kinds=("ffn",), normalize="none")
    removed = {(i, j) for i in range(3) for j in range(96) if j not in state.kept_indices("ffn", i)}
    assert len(removed) == 10
    lowest = {(i, j) for _, i, j in sorted(scores)[:10]}
    assert removed == lowest


@pytest.mark.parametrize("order", ["first", "second"])
def test_compacted_logits_equal_masked(order, tokens):
    model = build_tiny("llama")
    masked, compacted = copy.deepcopy(model), copy.deepcopy(model)
    kwargs = {"target_ratio": 0.5, "order": order, "round_to": 2}
    s1 = one_shot_prune(masked, _calib(), compact_model=False, **kwargs)
    s2 = one_shot_prune(compacted, _calib(), **kwargs)
    assert s1.kept == s2.kept
    assert not s1.is_compact and s2.is_compact
    with torch.no_grad():
        a, b = masked(tokens).logits, compacted(tokens).logits
        full = model(tokens).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(a, full, atol=1e-3)
    assert compacted.model.embed_tokens.weight.shape[1] == len(s2.kept.hidden)


def test_one_shot_from_texts_with_tokenizer():
    from reprokit.tokenizer import train_tokenizer

    texts = ["the cat sees the dog.", "one plus two is three.", "a red lamp and a blue cup."] * 4
    tok = train_tokenizer(texts, vocab_size=300)
    model = build_tiny("smollm", vocab_size=len(tok))
    target = round(0.7 * _params(model))
    state = one_shot_prune(model, texts, tokenizer=tok, target_ratio=0.7, batch_size=4)
    assert target <= _params(model) < target + 2 * 64 * 32  # below one hidden channel's weights above it
    assert state.is_compact


@pytest.mark.parametrize("keep_hidden", [True, False])
def test_uniform_shape_hits_target(keep_hidden):
    source = build_tiny("llama").config
    src_params = _params(build_tiny("llama"))
    target = int(0.5 * src_params)
    shape = uniform_shape(source, target, keep_hidden=keep_hidden)
    model = build_from_shape(source, shape, seed=0)
    n = _params(model)
    assert n == shape["params"]
    ffn_step = source.num_hidden_layers * 3 * shape["hidden_size"]
    assert abs(n - target) <= ffn_step
    assert (shape["hidden_size"] == source.hidden_size) == keep_hidden
    assert shape["num_key_value_heads"] < source.num_key_value_heads
    if keep_hidden:  # a hidden size that is no multiple of the heads falls back to EfficientLlamaConfig
        assert type(model.config).__name__ == "LlamaConfig"


def test_from_scratch_like_same_shapes_new_values():
    model = build_tiny("llama")
    one_shot_prune(model, _calib(), target_ratio=0.5)
    shape = shape_of(model)
    fresh = from_scratch_like(model, seed=1)
    got = {n: p.shape for n, p in fresh.named_parameters()}
    want = {n: p.shape for n, p in model.named_parameters()}
    assert got == want
    assert any(not torch.equal(p, q) for p, q in zip(fresh.parameters(), model.parameters(), strict=True))
    if len(set(shape["intermediate_size"])) > 1 or len(set(shape["num_attention_heads"])) > 1:
        assert isinstance(fresh.config, EfficientLlamaConfig)
    again = from_scratch_like(model, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), again.parameters(), strict=True))
