"""Compaction: the sliced model computes what the masked model did; the optimizer follows and still steps."""

from __future__ import annotations

import pytest
import torch

from efficientllm import PruningState, apply_masks, compact, find_groups

from .conftest import ARCHS, build_tiny

IDS = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(7))


def _remove(state: PruningState, what: str) -> None:
    n_layers = state.num_layers
    if what in ("head", "mixed"):
        state.remove("head", n_layers - 1, [0])  # a whole KV group (2 query heads under GQA)
    if what in ("ffn", "mixed"):
        state.remove("ffn", 0, [1, 2, 30, 63])
    if what in ("hidden", "mixed"):
        state.remove("hidden", None, [0, 9, 31])


def _logits(model):
    with torch.no_grad():
        return model(input_ids=IDS).logits


@pytest.mark.parametrize("what", ["head", "ffn", "hidden", "mixed"])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("arch", ARCHS)
def test_compacted_model_equals_masked_model(arch, tied, what):
    model = build_tiny(arch, tied=tied)
    space = find_groups(model)
    state = PruningState.full(space)
    before = _logits(model)
    _remove(state, what)
    apply_masks(space, state)
    masked = _logits(model)
    assert (masked - before).abs().max() > 1e-2  # the removal matters
    live = space.live_params(state)
    compact(model, state, space=space)
    torch.testing.assert_close(_logits(model), masked, atol=1e-5, rtol=0)
    assert sum(p.numel() for p in model.parameters()) == live == space.live_params()
    assert state.is_compact
    assert find_groups(model).live_params() == live  # the compacted model is again a valid space
    assert (model.lm_head.weight is model.model.embed_tokens.weight) is tied


def test_repeated_compaction_and_uneven_layers_keep_equality():
    model = build_tiny("llama")
    space = find_groups(model)
    state = PruningState.full(space)
    _remove(state, "mixed")
    apply_masks(space, state)
    compact(model, state, space=space)
    state.remove("head", 0, [1])
    state.remove("ffn", 2, [5, 6])
    state.remove("hidden", None, [1, 2, 3, 4])
    apply_masks(space, state)
    masked = _logits(model)
    compact(model, state, space=space)
    torch.testing.assert_close(_logits(model), masked, atol=1e-5, rtol=0)
    cfg, attn = model.config, model.model.layers[0].self_attn
    assert (cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads, cfg.intermediate_size) == (41, 12, 4, 96)
    assert attn.q_proj.weight.shape == (2 * 12, 41) and attn.o_proj.in_features == 24
    assert model.model.layers[0].mlp.intermediate_size == 92
    assert cfg.rms_norm_eps == pytest.approx(1e-6 * 48 / 41)
    assert [len(k) for k in state.kept.heads] == [1, 2, 1]


def test_uniform_compaction_updates_config_counts():
    model = build_tiny("smollm")
    space = find_groups(model)
    state = PruningState.full(space)
    for layer in range(2):
        state.remove("head", layer, [layer])
        state.remove("ffn", layer, list(range(16)))
    compact(model, state, space=space)
    cfg = model.config
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.intermediate_size) == (3, 3, 48)
    assert model.generate(IDS[:1, :4], max_new_tokens=3, do_sample=False).shape == (1, 7)


def test_optimizer_moments_follow_kept_entries_and_training_continues():
    model = build_tiny("qwen2", tied=False).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = None
    for _ in range(2):
        loss = model(input_ids=IDS, labels=IDS).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    space = find_groups(model)
    state = PruningState.full(space)
    _remove(state, "mixed")  # head: layer 1 KV group 0; ffn layer 0; hidden 0, 9, 31
    apply_masks(space, state, opt)
    attn, mlp, norm = model.model.layers[1].self_attn, model.model.layers[0].mlp, model.model.norm
    old = {
        name: (p, {k: v.clone() for k, v in opt.state[p].items()})
        for name, p in (
            ("q", attn.q_proj.weight),
            ("q_bias", attn.q_proj.bias),
            ("down", mlp.down_proj.weight),
            ("norm", norm.weight),
        )
    }
    compact(model, state, opt, space=space)  # `loss` still holds the old graph: compaction must not care
    keep_hidden = torch.tensor([i for i in range(32) if i not in (0, 9, 31)])
    keep_q = torch.arange(16, 32)  # KV group 1 owns query heads 2-3: rows 16..31 (head_dim 8)
    keep_ffn = torch.tensor([i for i in range(64) if i not in (1, 2, 30, 63)])
    expected = {
        "q": lambda t: t[keep_q][:, keep_hidden],
        "q_bias": lambda t: t[keep_q],
        "down": lambda t: t[keep_hidden][:, keep_ffn],
        "norm": lambda t: t[keep_hidden],
    }
    new_params = {
        "q": attn.q_proj.weight,
        "q_bias": attn.q_proj.bias,
        "down": mlp.down_proj.weight,
        "norm": norm.weight,
    }
    scale = (32 / 29) ** 0.5
    for name, (old_param, moments) in old.items():
        param = new_params[name]
        assert param is not old_param
        assert any(p is param for g in opt.param_groups for p in g["params"])
        assert old_param not in opt.state
        s = scale if name == "norm" else 1.0
        torch.testing.assert_close(opt.state[param]["exp_avg"], expected[name](moments["exp_avg"]) / s)
        torch.testing.assert_close(
            opt.state[param]["exp_avg_sq"], expected[name](moments["exp_avg_sq"]) / s**2
        )
    n_opt = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(input_ids=IDS, labels=IDS).loss
    loss.backward()
    opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
