"""The pruning space: group counts and parameter counts equal a hand computation, for every family."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from efficientllm import PruningState, find_groups
from reprokit.errors import ConfigError, ModelLoadError

from .conftest import ARCHS, SHAPES, VOCAB, build_tiny, build_unsupported


def _hand(arch: str, tied: bool) -> dict[str, int]:
    """Per-group parameter counts of a fresh tiny model, from its config numbers only."""
    _, shape, _ = SHAPES[arch]
    d, n_layers, f, kv = (
        shape["hidden_size"],
        shape["num_hidden_layers"],
        shape["intermediate_size"],
        shape["num_key_value_heads"],
    )
    heads, hd = 4, shape["hidden_size"] // 4
    r = heads // kv
    head = (r + 2) * hd * d + r * hd * d  # q, k, v rows and o columns of one KV group
    if arch == "qwen2":
        head += (r + 2) * hd  # q/k/v biases
    if arch == "olmo2":
        head += (r + 1) * hd  # full-width q_norm and k_norm entries
    ffn = 3 * d
    norms = 2 * n_layers + 1
    hidden = VOCAB * (1 if tied else 2) + norms + n_layers * (heads * hd + 2 * kv * hd + heads * hd + 3 * f)
    return {"head": head, "ffn": ffn, "hidden": hidden, "layers": n_layers, "kv": kv, "f": f, "d": d}


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("arch", ARCHS)
def test_group_counts_and_params_match_hand_computation(arch, tied):
    model = build_tiny(arch, tied=tied)
    space = find_groups(model)
    hand = _hand(arch, tied)
    groups = space.groups()
    by_kind = {k: [g for g in groups if g.kind == k] for k in ("head", "ffn", "hidden")}
    assert len(by_kind["head"]) == hand["layers"] * hand["kv"]
    assert len(by_kind["ffn"]) == hand["layers"] * hand["f"]
    assert len(by_kind["hidden"]) == hand["d"]
    for kind in ("head", "ffn", "hidden"):
        assert {g.params for g in by_kind[kind]} == {hand[kind]}, kind
    assert space.tied is tied
    # the live count is the model's own parameter count (a tied embedding once)
    assert space.live_params() == sum(p.numel() for p in model.parameters())
    assert space.live_params(embeddings=False) == space.live_params() - VOCAB * hand["d"] * (1 if tied else 2)


def test_uniform_heads_are_slots_spanning_every_layer():
    model = build_tiny("llama")
    hand = _hand("llama", False)
    heads = [g for g in find_groups(model, heads="uniform").groups() if g.kind == "head"]
    assert [(g.layer, g.index) for g in heads] == [(None, j) for j in range(hand["kv"])]
    assert {g.params for g in heads} == {hand["layers"] * hand["head"]}


def test_group_params_follow_the_state():
    model = build_tiny("llama")
    space = find_groups(model)
    state = PruningState.full(space)
    d = space.hidden_size
    state.remove("hidden", None, [0, 5, 7])
    state.remove("ffn", 1, [3])
    state.remove("head", 2, [0])
    assert space.unit_params("ffn", 0, state) == 3 * (d - 3)
    hd, r = space.head_dim, space.heads_per_group
    assert space.unit_params("head", 1, state) == (2 * r + 2) * hd * (d - 3)
    full_hidden = space.unit_params("hidden")
    # a hidden channel loses one FFN channel of layer 1 (3 weights) and one KV group of layer 2
    assert space.unit_params("hidden", None, state) == full_hidden - 3 - (2 * r + 2) * hd
    # live count = full count minus what each removal took, in order
    expected = space.live_params()
    expected -= 3 * space.unit_params("hidden")
    after_hidden = PruningState.full(space)
    after_hidden.remove("hidden", None, [0, 5, 7])
    expected -= space.unit_params("ffn", 1, after_hidden)
    after_hidden.remove("ffn", 1, [3])
    expected -= space.unit_params("head", 2, after_hidden)
    assert space.live_params(state) == expected
    assert len([g for g in space.groups(state) if g.kind == "head"]) == 3 * 2 - 1


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox"])
def test_unsupported_layouts_name_what_is_missing(arch):
    with pytest.raises(ModelLoadError, match=r"missing model\.embed_tokens, model\.layers"):
        find_groups(build_unsupported(arch))


def test_layernorm_in_a_layer_is_refused_by_name():
    model = build_tiny("smollm")
    model.model.layers[1].post_attention_layernorm = nn.LayerNorm(32)
    with pytest.raises(ModelLoadError, match=r"model\.layers\[1\]\.post_attention_layernorm \(LayerNorm\)"):
        find_groups(model)


def test_fused_projection_is_refused_by_name():
    model = build_tiny("smollm")
    attn = model.model.layers[0].self_attn
    del attn.q_proj
    attn.qkv_proj = nn.Linear(32, 96)
    with pytest.raises(
        ModelLoadError, match=r"self_attn\.q_proj as nn\.Linear \(found k_proj, v_proj, o_proj, qkv_proj\)"
    ):
        find_groups(model)


def test_parameter_outside_every_group_is_refused():
    model = build_tiny("smollm")
    model.model.register_parameter("extra_scale", nn.Parameter(torch.ones(3)))
    with pytest.raises(ModelLoadError, match=r"model\.extra_scale belong to no pruning group"):
        find_groups(model)


def test_bad_heads_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="per_layer, uniform"):
        find_groups(build_tiny("smollm"), heads="global")


def test_olmo2_qk_norms_are_head_axes():
    space = find_groups(build_tiny("olmo2"))
    names = {s.name: s for s in space.params}
    q_norm = names["model.layers.0.self_attn.q_norm.weight"]
    k_norm = names["model.layers.0.self_attn.k_norm.weight"]
    assert q_norm.norm == "head" and q_norm.axes[0].unit == 2 * space.head_dim
    assert k_norm.norm == "head" and k_norm.axes[0].unit == space.head_dim
