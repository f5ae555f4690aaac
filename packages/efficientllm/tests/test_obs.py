"""OBS compensation: lower output error than plain removal, the closed form, and consumers in a model."""

from __future__ import annotations

import pytest
import torch

from efficientllm import PruningState, compensate, find_groups, layer_hessian, obs_remove_columns_

from .conftest import build_tiny


def _correlated_inputs(n_tokens=512, n_in=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(n_in, n_in, generator=gen)
    return torch.randn(n_tokens, n_in, generator=gen) @ mix  # strongly correlated columns


@pytest.mark.parametrize("drop", [[3], [0, 5, 6, 17]])
def test_compensation_beats_plain_removal(drop):
    x = _correlated_inputs()
    w = torch.randn(16, 24, generator=torch.Generator().manual_seed(1))
    drop_t = torch.tensor(drop)
    plain = w.clone()
    plain[:, drop_t] = 0
    comp = w.clone()
    obs_remove_columns_(comp, layer_hessian(x), drop_t, damp=1e-4)
    assert comp[:, drop_t].abs().max() == 0
    err_plain = (x @ (w - plain).T).pow(2).mean()
    err_comp = (x @ (w - comp).T).pow(2).mean()
    assert err_comp < 0.5 * err_plain


def test_single_column_matches_closed_form():
    x = _correlated_inputs(seed=2).double()
    w = torch.randn(5, 24, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    h = layer_hessian(x)
    damp = 0.01
    hinv = torch.linalg.inv(h + damp * h.diagonal().mean() * torch.eye(24, dtype=torch.float64))
    p = 7
    want = w - torch.outer(w[:, p], hinv[p]) / hinv[p, p]
    got = w.clone()
    obs_remove_columns_(got, h, torch.tensor([p]), damp=damp)
    torch.testing.assert_close(got, want)


def test_masked_columns_are_left_alone():
    x = _correlated_inputs(seed=4)
    x[:, 2] = 0  # a column already masked: zero input and zero weight
    w = torch.randn(6, 24, generator=torch.Generator().manual_seed(5))
    w[:, 2] = 0
    live = torch.tensor([i for i in range(24) if i != 2])
    got = w.clone()
    obs_remove_columns_(got, layer_hessian(x), torch.tensor([9]), live)
    assert got[:, 2].abs().max() == 0 and got[:, 9].abs().max() == 0
    assert (got - w).abs().max() > 0


def test_compensate_updates_each_consumer_and_lowers_its_error():
    model = build_tiny("llama")
    space = find_groups(model)
    before = PruningState.full(space)
    after = before.copy()
    after.remove("head", 1, [0])
    after.remove("ffn", 2, [3, 8, 11])
    after.remove("hidden", None, [4])
    ids = torch.randint(0, 100, (4, 16), generator=torch.Generator().manual_seed(0))
    lm = space.layers[2]
    x_down = {}

    def grab(module, args):
        x_down["x"] = args[0].reshape(-1, 96)

    handle = lm.down.register_forward_pre_hook(grab)
    with torch.no_grad():
        model(input_ids=ids)
    handle.remove()
    w_before = {m: m.weight.detach().clone() for m in (space.layers[1].o, lm.down, space.layers[0].q, lm.up)}
    counts = compensate(model, space, before, after, ids, tokens=64, damp=0.01)
    assert counts == {"head": 1, "ffn": 1, "hidden": 5 * 3}
    for module, w in w_before.items():
        assert (module.weight - w).abs().max() > 0
    plain = w_before[lm.down].clone()
    plain[:, [3, 8, 11]] = 0
    x = x_down["x"]
    err_plain = (x @ (w_before[lm.down] - plain).T).pow(2).mean()
    err_comp = (x @ (w_before[lm.down] - lm.down.weight.detach()).T).pow(2).mean()
    assert err_comp < err_plain
    assert space.layers[0].o.weight.equal(model.model.layers[0].self_attn.o_proj.weight)  # untouched layer
