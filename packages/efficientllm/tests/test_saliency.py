"""Saliency equals a direct computation on a toy batch; the global ranking picks the minimum."""

from __future__ import annotations

import pytest
import torch

from efficientllm import (
    GroupScores,
    PruningState,
    SaliencyAccumulator,
    find_groups,
    group_saliency,
    rank_groups,
)
from reprokit.errors import ConfigError

from .conftest import build_tiny


def _backward(model, seed=0, scale=1.0):
    ids = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(seed))
    model.zero_grad()
    (scale * model(input_ids=ids, labels=ids).loss).backward()


def _direct(model, kind, layer, index, element):
    """Sum of `element(param)` over the weights of one group, indexed by hand from the module layout."""
    cfg = model.config
    hd = cfg.hidden_size // cfg.num_attention_heads
    r = cfg.num_attention_heads // cfg.num_key_value_heads
    with torch.no_grad():
        e = {n: element(p) for n, p in model.named_parameters()}
    if kind == "head":
        p = f"model.layers.{layer}.self_attn."
        q = slice(index * r * hd, (index + 1) * r * hd)
        kv = slice(index * hd, (index + 1) * hd)
        total = e[p + "q_proj.weight"][q].sum() + e[p + "o_proj.weight"][:, q].sum()
        total += e[p + "k_proj.weight"][kv].sum() + e[p + "v_proj.weight"][kv].sum()
        for b, rows in (("q_proj.bias", q), ("k_proj.bias", kv), ("v_proj.bias", kv)):
            total += e[p + b][rows].sum() if p + b in e else 0.0
        return float(total)
    if kind == "ffn":
        p = f"model.layers.{layer}.mlp."
        return float(
            e[p + "gate_proj.weight"][index].sum()
            + e[p + "up_proj.weight"][index].sum()
            + e[p + "down_proj.weight"][:, index].sum()
        )
    total = 0.0
    for name, value in e.items():
        if name.endswith(
            ("q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight", "up_proj.weight")
        ):
            total += float(value[:, index].sum())
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            total += float(value[index].sum())
        elif "norm" in name or name == "model.embed_tokens.weight" or name == "lm_head.weight":
            total += float(value[index].sum() if value.dim() == 1 else value[:, index].sum())
    return total


CONSUMERS = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight", "up_proj.weight")
GROUPS = [("head", 0, 1), ("head", 1, 0), ("ffn", 1, 7), ("hidden", None, 5)]


@pytest.mark.parametrize("tied", [False, True])
def test_first_order_saliency_equals_direct_sum(tied):
    model = build_tiny("qwen2", tied=tied)  # q/k/v biases, GQA
    space = find_groups(model)
    state = PruningState.full(space)
    _backward(model)
    scores = group_saliency(space, state, order="first")
    for kind, layer, index in GROUPS:
        want = _direct(model, kind, layer, index, lambda p: (p.grad * p).abs())
        assert float(scores.get(kind, layer)[index]) == pytest.approx(want, rel=1e-5), (kind, layer, index)


def test_second_order_saliency_uses_adam_second_moment():
    model = build_tiny("llama")
    space = find_groups(model)
    state = PruningState.full(space)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    _backward(model, seed=0, scale=100.0)  # large gradients: the curvature term matters
    opt.step()
    _backward(model, seed=1, scale=100.0)
    with_opt = group_saliency(space, state, order="second", optimizer=opt)
    without = group_saliency(space, state, order="second")

    def fisher(p):
        return opt.state[p]["exp_avg_sq"] / (1 - 0.95)  # bias-corrected after one step

    for kind, layer, index in GROUPS:
        want = _direct(model, kind, layer, index, lambda p: (p.grad * p - 0.5 * fisher(p) * p * p).abs())
        assert float(with_opt.get(kind, layer)[index]) == pytest.approx(want, rel=1e-5)
        plain = _direct(model, kind, layer, index, lambda p: (p.grad * p - 0.5 * p.grad**2 * p * p).abs())
        assert float(without.get(kind, layer)[index]) == pytest.approx(plain, rel=1e-5)
        first = _direct(model, kind, layer, index, lambda p: (p.grad * p).abs())
        assert abs(want - plain) > 1e-3 * want and abs(want - first) > 1e-3 * want  # the terms matter


@pytest.mark.parametrize("accumulate", ["sum", "ema"])
def test_accumulation_over_steps(accumulate):
    model = build_tiny("smollm")
    space = find_groups(model)
    state = PruningState.full(space)
    acc = SaliencyAccumulator(space, state, accumulate=accumulate, ema_beta=0.75)
    steps = []
    for seed in range(3):
        _backward(model, seed)
        acc.update()
        steps.append(group_saliency(space, state).hidden)
    want = steps[0] + steps[1] + steps[2]
    if accumulate == "ema":
        want = 0.75 * (0.75 * steps[0] + 0.25 * steps[1]) + 0.25 * steps[2]
    torch.testing.assert_close(acc.scores.hidden, want)
    acc.after_event()
    if accumulate == "sum":
        assert acc.scores.hidden.abs().max() == 0 and acc.steps == 0
    else:
        torch.testing.assert_close(acc.scores.hidden, want)


def _scores(state, head, ffn, hidden):
    s = GroupScores.zeros(state)
    for t, v in zip(s.head, head, strict=True):
        t.copy_(torch.as_tensor(v, dtype=torch.float32))
    for t, v in zip(s.ffn, ffn, strict=True):
        t.copy_(torch.as_tensor(v, dtype=torch.float32))
    s.hidden.copy_(torch.as_tensor(hidden, dtype=torch.float32))
    return s


def test_ranking_is_global_and_picks_the_minimum():
    model = build_tiny("smollm")  # 2 layers, 4 heads (MHA), ffn 64, hidden 32
    space = find_groups(model)
    state = PruningState.full(space)
    gen = torch.Generator().manual_seed(0)
    head = [torch.rand(4, generator=gen) + 1 for _ in range(2)]
    ffn = [torch.rand(64, generator=gen) + 1 for _ in range(2)]
    hidden = torch.rand(32, generator=gen) + 1
    p = {k: space.unit_params(k, 0 if k != "hidden" else None) for k in ("head", "ffn", "hidden")}
    # make hidden channel 9 the cheapest per parameter, and FFN channel (1, 3) the cheapest in raw sum
    hidden[9] = 0.01 * p["hidden"] / p["ffn"]
    ffn[1][3] = 0.05
    ranked = rank_groups(space, state, _scores(state, head, ffn, hidden), normalize="param")
    assert (ranked[0].kind, ranked[0].units) == ("hidden", ((None, 9),))
    assert ranked[0].score == pytest.approx(float(hidden[9]) / p["hidden"])
    assert [c.score for c in ranked] == sorted(c.score for c in ranked)
    by_raw = rank_groups(space, state, _scores(state, head, ffn, hidden), normalize="none")
    assert (by_raw[0].kind, by_raw[0].units) == ("ffn", ((1, 3),))
    # the last unit of every layer / of the model is never a candidate
    assert len([c for c in ranked if c.kind == "head"]) == 2 * 3
    assert len([c for c in ranked if c.kind == "ffn"]) == 2 * 63
    assert len([c for c in ranked if c.kind == "hidden"]) == 31
    only = rank_groups(space, state, _scores(state, head, ffn, hidden), kinds=("head",))
    assert {c.kind for c in only} == {"head"}


def test_type_normalisation_ranks_each_type_against_its_median():
    model = build_tiny("smollm")
    space = find_groups(model)
    state = PruningState.full(space)
    head = [torch.full((4,), 100.0) for _ in range(2)]
    ffn = [torch.full((64,), 100.0) for _ in range(2)]
    hidden = torch.full((32,), 1e6)
    hidden[4] = 0.5e6  # half its type's median: lowest relative to its own type
    ranked = rank_groups(space, state, _scores(state, head, ffn, hidden), normalize="type")
    assert (ranked[0].kind, ranked[0].units, ranked[0].score) == ("hidden", ((None, 4),), pytest.approx(0.5))
    assert rank_groups(space, state, _scores(state, head, ffn, hidden))[0].kind != "hidden"


def test_round_to_bundles_and_uniform_head_slots():
    model = build_tiny("llama")  # 3 layers, 2 KV groups of 2 heads, ffn 96, hidden 48
    space = find_groups(model)
    state = PruningState.full(space)
    state.remove("ffn", 0, [0, 1, 2])  # 93 left: the first bundle takes the remainder 93 % 8 = 5
    gen = torch.Generator().manual_seed(1)
    head = [torch.rand(2, generator=gen) for _ in range(3)]
    ffn = [torch.rand(96, generator=gen) for _ in range(3)]
    scores = _scores(state, head, ffn, torch.rand(48, generator=gen))
    ranked = rank_groups(space, state, scores, round_to=8, heads="uniform")
    layer0 = sorted((c for c in ranked if c.kind == "ffn" and c.source == ("ffn", 0)), key=lambda c: c.order)
    assert [len(c.units) for c in layer0] == [5] + [8] * 10  # never the last 8
    kept = state.kept_indices("ffn", 0)
    lowest = sorted(kept, key=lambda i: float(ffn[0][i]))[:5]
    assert sorted(i for _, i in layer0[0].units) == sorted(lowest)
    assert {len(c.units) for c in ranked if c.kind == "hidden"} == {8}
    heads = [c for c in ranked if c.kind == "head"]
    assert len(heads) == 1  # 2 KV groups per layer: one slot can go, one must stay
    assert heads[0].units == tuple((layer, int(torch.argmin(head[layer]))) for layer in range(3))
    assert heads[0].params == 3 * space.unit_params("head", 0, state)
    with pytest.raises(ConfigError, match="normalize"):
        rank_groups(space, state, scores, normalize="mean")
