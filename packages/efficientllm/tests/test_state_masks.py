"""Pruning state (JSON round trip, checks) and masks (removed weights are zero and stay zero in training)."""

from __future__ import annotations

import json

import pytest
import torch

from efficientllm import PruningState, apply_masks, compact, find_groups, mask_plan
from reprokit.errors import DataError

from .conftest import build_tiny


def _pruned_state(space):
    state = PruningState.full(space)
    state.remove("head", 0, [1])
    state.remove("ffn", 2, [0, 4, 9])
    state.remove("hidden", None, [2, 3, 40])
    return state


def test_state_json_round_trip(tmp_path):
    model = build_tiny("llama")
    space = find_groups(model)
    state = _pruned_state(space)
    compact(model, state, space=space)
    state.remove("ffn", 0, [7])  # masked again after compaction: kept != physical
    again = PruningState.from_json(state.to_json())
    assert again == state
    assert json.loads(state.to_json())["kept"]["ffn"][0] == [i for i in range(96) if i != 7]
    path = state.save(tmp_path / "state.json")
    assert PruningState.load(path) == state
    assert again.widths() == {"heads": [2, 4, 4], "kv_heads": [1, 2, 2], "ffn": [95, 96, 93], "hidden": 45}
    assert again.removed_counts() == {"head": 1, "ffn": 4, "hidden": 3}
    # positions are into the compacted tensors: ffn 7 of layer 0 sits at position 7, hidden is compact
    assert again.positions("ffn", 0, removed=True).tolist() == [7]
    assert again.positions("hidden", None, removed=True).tolist() == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "not valid JSON"),
        ('{"version": 99}', "version 1"),
        ('{"version": 1, "kept": {}}', "malformed pruning state"),
    ],
)
def test_bad_state_files_are_data_errors(text, match):
    with pytest.raises(DataError, match=match):
        PruningState.from_json(text)


def test_state_that_does_not_fit_the_model_is_refused(tmp_path):
    state = PruningState.full(find_groups(build_tiny("llama")))
    with pytest.raises(DataError, match="does not fit this model"):
        state.check(find_groups(build_tiny("smollm")))
    with pytest.raises(DataError, match="does not exist"):
        PruningState.load(tmp_path / "missing.json")


def test_masks_zero_exactly_the_removed_groups():
    model = build_tiny("qwen2")
    space = find_groups(model)
    state = PruningState.full(space)
    state.remove("head", 1, [0])
    state.remove("ffn", 0, [5])
    state.remove("hidden", None, [3])
    apply_masks(space, state)
    attn, mlp = model.model.layers[1].self_attn, model.model.layers[0].mlp
    rows = slice(0, 2 * space.head_dim)  # KV group 0 owns query heads 0-1
    assert attn.q_proj.weight[rows].abs().sum() == 0 and attn.q_proj.bias[rows].abs().sum() == 0
    assert attn.k_proj.weight[: space.head_dim].abs().sum() == 0
    assert attn.o_proj.weight[:, rows].abs().sum() == 0
    assert attn.q_proj.weight[2 * space.head_dim :, :3].abs().min() > 0  # the other head is untouched
    assert mlp.gate_proj.weight[5].abs().sum() == 0 and mlp.down_proj.weight[:, 5].abs().sum() == 0
    assert model.model.embed_tokens.weight[:, 3].abs().sum() == 0
    assert model.model.norm.weight[3] == 0 and model.model.layers[0].input_layernorm.weight[3] == 0
    n_zero = sum(int((p == 0).sum()) for p in model.parameters())
    assert n_zero == space.live_params() - space.live_params(state)


def _train(model, optimizer, plan, steps):
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        ids = torch.randint(0, 100, (2, 10), generator=gen)
        model(input_ids=ids, labels=ids).loss.backward()
        plan.zero_grads()
        optimizer.step()
        optimizer.zero_grad()


@pytest.mark.parametrize("zero_moments", [True, False])
def test_removed_weights_stay_zero_under_adamw(zero_moments):
    model = build_tiny("llama").train()
    space = find_groups(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    _train(model, optimizer, mask_plan(space, PruningState.full(space)), 2)  # moments are non-zero now
    state = _pruned_state(space)
    plan = apply_masks(space, state, optimizer if zero_moments else None)
    _train(model, optimizer, plan, 3)
    values = torch.cat([p.detach()[tuple([slice(None)] * d + [i])].reshape(-1) for p, d, i in plan.entries])
    if zero_moments:
        assert values.abs().max() == 0.0
    else:  # the control: with stale moments AdamW moves them, so the check above can fail
        assert values.abs().max() > 1e-4


def test_a_fully_masked_group_gets_exactly_zero_gradient():
    model = build_tiny("olmo2").train()
    space = find_groups(model)
    plan = apply_masks(space, _pruned_state_small(space))
    ids = torch.randint(0, 100, (2, 10), generator=torch.Generator().manual_seed(0))
    model(input_ids=ids, labels=ids).loss.backward()
    grads = torch.cat([p.grad[tuple([slice(None)] * d + [i])].reshape(-1) for p, d, i in plan.entries])
    assert grads.abs().max() == 0.0
    assert model.model.layers[0].mlp.down_proj.weight.grad.abs().max() > 0


def _pruned_state_small(space):
    state = PruningState.full(space)
    state.remove("head", 1, [0])
    state.remove("ffn", 0, [3])
    state.remove("hidden", None, [7])
    return state
