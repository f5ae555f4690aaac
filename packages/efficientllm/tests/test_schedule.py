"""The schedule: config checks, budget and target, debt, flags, round_to, uniform heads, timing, resume."""

from __future__ import annotations

import json

import pytest
import torch

from efficientllm import (
    GroupScores,
    PruneConfig,
    Pruner,
    PruningState,
    apply_masks,
    compact,
    find_groups,
    rank_groups,
    select_groups,
)
from reprokit.errors import ConfigError

from .conftest import build_tiny


def _run(model, pruner, steps, *, lr=1e-3, obs=False, check=None):
    """A plain training loop with the pruner's hooks; returns the events."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    gen = torch.Generator().manual_seed(0)
    events = []
    for step in range(1, steps + 1):
        ids = torch.randint(0, 100, (2, 12), generator=gen)
        model(input_ids=ids, labels=ids).loss.backward()
        pruner.after_backward(model, opt)
        opt.step()
        opt.zero_grad()
        inputs = {"input_ids": ids} if obs and pruner.due(step) else None
        events += pruner.after_step(model, opt, step, inputs)
        if check is not None:
            check(step)
    return events


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of target_params and target_ratio"),
        ({"target_ratio": 0.5, "target_params": 10}, "exactly one of target_params"),
        ({"target_ratio": 1.5}, r"target_ratio must be in \(0, 1\]"),
        ({"target_ratio": 0.5, "budget_fraction": 0.1, "budget_params": 100}, "not both"),
        ({"target_ratio": 0.5, "every": 0}, "every must be >= 1"),
        ({"target_ratio": 0.5, "round_to": 0}, "round_to must be >= 1"),
        (
            {"target_ratio": 0.5, "enable_heads": False, "enable_ffn": False, "enable_hidden": False},
            "at least one",
        ),
        ({"target_ratio": 0.5, "heads": "global"}, "heads='global' is not one of per_layer, uniform"),
        ({"target_ratio": 0.5, "saliency": "third"}, "saliency='third'"),
        ({"target_ratio": 0.5, "start_step": 10, "stop_step": 5}, "stop_step"),
        ({"target_ratio": 0.5, "obs_damp": 0.0}, "obs_damp must be > 0"),
        ({"target_ratio": 0.5, "ema_beta": 1.0}, "ema_beta"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PruneConfig(**kwargs)


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(ConfigError, match=r"'round_too' \(did you mean 'round_to'\?\)"):
        PruneConfig.from_dict({"target_ratio": 0.5, "round_too": 8})
    cfg = PruneConfig(target_ratio=0.5, round_to=8)
    assert PruneConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.fraction == 0.05 and PruneConfig(target_ratio=0.5, budget_params=10).fraction is None


def test_select_groups_spends_the_budget_and_respects_the_floor():
    model = build_tiny("llama")
    space = find_groups(model)
    state = PruningState.full(space)
    scores = GroupScores.zeros(state)
    for t in scores.tensors():
        t.copy_(torch.rand(t.shape, generator=torch.Generator().manual_seed(t.numel())))
    ranked = rank_groups(space, state, scores)
    live = space.live_params()
    budget = 3000
    work = state.copy()
    taken = select_groups(space, work, ranked, budget=budget)
    removed = live - space.live_params(work)
    assert removed >= budget and removed - taken[-1].params < budget  # the last one may overshoot
    assert [c.score for c in taken] == [c.score for c in ranked[: len(taken)]]  # the cheapest first
    floor = live - 1000
    work = state.copy()
    select_groups(space, work, ranked, budget=budget, floor=floor)
    assert floor <= space.live_params(work) < floor + 3 * 48  # stops within an FFN channel of the floor


def test_pruner_reaches_target_and_compacts():
    model = build_tiny("llama").train()
    pruner = Pruner(model, PruneConfig(every=2, budget_fraction=0.1, target_ratio=0.6))
    source = sum(p.numel() for p in model.parameters())
    events = _run(model, pruner, 24)
    assert pruner.done and pruner.stop_reason.startswith("target reached")
    assert sum(events[-1].removed.values()) > 0  # it stopped as soon as nothing fitted, without an idle event
    assert pruner.target == round(0.6 * source)
    assert pruner.target <= pruner.params < pruner.target + 3 * 48
    assert sum(p.numel() for p in model.parameters()) == pruner.params  # compacted after every event
    sizes = [e.params_after for e in events]
    assert sizes == sorted(sizes, reverse=True) and events[0].params_before == source
    debt = 0
    for e in events[:-1]:  # every event but the last spends its budget net of the debt it inherited
        floor_limited = e.params_after - pruner.target < 3 * 48  # the next FFN channel would cross the target
        assert e.params_before - e.params_after >= e.budget - debt or floor_limited
        debt = e.debt
    assert all(e.step % 2 == 0 for e in events)
    assert {k for e in events for k, v in e.removed.items() if v} <= {"head", "ffn", "hidden"}
    removed_kinds = [k for e in events for k, v in e.removed.items() if v]
    assert removed_kinds and all(
        e.saliency[k]["cutoff"] >= e.saliency[k]["min"]
        for e in events
        for k in e.saliency
        if "cutoff" in e.saliency[k]
    )
    json.dumps([e.to_dict() for e in events])


def test_debt_carries_an_overshoot_into_later_events():
    model = build_tiny("smollm").train()
    space = find_groups(model)
    hidden = space.unit_params("hidden")
    cfg = PruneConfig(
        every=1, budget_params=hidden // 3, target_ratio=0.5, enable_heads=False, enable_ffn=False
    )
    pruner = Pruner(model, cfg)
    events = _run(model, pruner, 6)
    assert [e.removed["hidden"] for e in events] == [1, 0, 0, 1, 0, 0]
    assert events[0].debt == hidden - hidden // 3 and events[1].debt == events[0].debt - hidden // 3


def test_enable_flags_and_round_to():
    model = build_tiny("llama").train()
    cfg = PruneConfig(
        every=1, budget_fraction=0.05, target_ratio=0.7, round_to=8, enable_heads=False, enable_hidden=False
    )
    pruner = Pruner(model, cfg)
    events = _run(model, pruner, 8)
    assert sum(e.removed["ffn"] for e in events) > 0
    assert all(e.removed["head"] == 0 and e.removed["hidden"] == 0 for e in events)
    assert all(w % 8 == 0 for e in events for w in e.widths["ffn"])
    assert pruner.state.widths()["hidden"] == 48 and pruner.state.widths()["heads"] == [4, 4, 4]


def test_uniform_heads_keep_every_layer_equal():
    model = build_tiny("llama").train()
    from efficientllm.schedule import smallest_params

    kw = {"every": 1, "budget_fraction": 0.15, "heads": "uniform"}
    kw |= {"enable_ffn": False, "enable_hidden": False}
    probe = Pruner(build_tiny("llama"), PruneConfig(target_ratio=0.9, **kw))
    floor = smallest_params(probe.space, probe.state, probe.config)  # one KV group left in every layer
    pruner = Pruner(model, PruneConfig(target_params=floor, **kw))
    events = _run(model, pruner, 4)
    assert sum(e.removed["head"] for e in events) == 3  # one KV group from each of the 3 layers, once
    assert pruner.state.widths()["heads"] == [2, 2, 2]
    assert pruner.done and pruner.params == floor  # a second slot would empty the layers


def test_event_timing_and_masks_between_compactions():
    model = build_tiny("qwen2").train()
    cfg = PruneConfig(
        every=3, start_step=2, stop_step=11, budget_fraction=0.05, target_ratio=0.2, compact_every=0
    )
    pruner = Pruner(model, cfg)
    source = sum(p.numel() for p in model.parameters())

    def check(step):
        zeros = sum(int((p == 0).sum()) for p in model.parameters())
        assert zeros == source - pruner.params  # exactly the removed weights are zero, after every step

    events = _run(model, pruner, 14, check=check)
    assert [e.step for e in events] == [5, 8, 11]
    assert pruner.done and pruner.stop_reason == "stop_step reached"
    assert sum(p.numel() for p in model.parameters()) == source  # never compacted (compact_every=0)
    assert pruner.compact() and sum(p.numel() for p in model.parameters()) == pruner.params


def test_obs_needs_inputs_and_uses_them():
    model = build_tiny("olmo2").train()
    pruner = Pruner(model, PruneConfig(every=2, target_ratio=0.8, obs=True, obs_tokens=16))
    with pytest.raises(ConfigError, match="batch_inputs_for_obs"):
        _run(model, pruner, 2)
    model = build_tiny("olmo2").train()
    pruner = Pruner(model, PruneConfig(every=2, target_ratio=0.8, obs=True, obs_tokens=16))
    events = _run(model, pruner, 4, obs=True)
    assert events and all(
        e.obs is not None and sum(e.obs.values()) > 0 for e in events if sum(e.removed.values())
    )


def test_wrong_model_is_refused():
    model = build_tiny("smollm")
    pruner = Pruner(model, PruneConfig(target_ratio=0.5))
    with pytest.raises(ConfigError, match="another model"):
        pruner.after_backward(build_tiny("smollm"))


def test_resume_from_state_dict_continues_identically():
    def make():
        return build_tiny("mistral").train()

    cfg = PruneConfig(every=2, budget_fraction=0.1, target_ratio=0.5, compact_every=2)
    model_a = make()
    pruner_a = Pruner(model_a, cfg)
    _run(model_a, pruner_a, 6)
    saved = json.loads(json.dumps(pruner_a.state_dict()))
    # a fresh copy of the source, brought to the saved shapes the way a checkpoint would be
    model_b = make()
    state_b = PruningState.from_dict(saved["state"])
    full = PruningState.full(find_groups(model_b))
    full.kept = state_b.physical.copy()
    compact(model_b, full)
    model_b.load_state_dict(model_a.state_dict())
    pruner_b = Pruner.from_state_dict(model_b, saved)
    apply_masks(pruner_b.space, pruner_b.state)
    assert pruner_b.state == pruner_a.state and pruner_b.history == pruner_a.history
    torch.testing.assert_close(pruner_b.saliency.scores.hidden, pruner_a.saliency.scores.hidden)
    assert pruner_b.params == pruner_a.params and pruner_b.target == pruner_a.target


def test_a_target_below_the_smallest_reachable_model_is_refused():
    model = build_tiny("llama")  # 3 layers, 2 KV groups of 2 heads, FFN 96, hidden 48, vocab 100, untied
    from efficientllm.schedule import smallest_params

    pruner = Pruner(model, PruneConfig(target_ratio=0.5))
    smallest = smallest_params(pruner.space, pruner.state, pruner.config)
    head_dim = 48 // 4
    # one KV group (2 query heads) over one hidden channel: q and o 2 heads wide, k and v one head wide;
    # one FFN channel (gate, up, down); two norms of width 1
    per_layer = 2 * (2 * head_dim) + 2 * head_dim + 3 + 2
    assert smallest == 3 * per_layer + 2 * 100 * 1 + 1  # + embedding and LM head of width 1, final norm
    with pytest.raises(ConfigError, match=f"below the smallest model this config can reach \\({smallest:,}"):
        Pruner(build_tiny("llama"), PruneConfig(target_params=smallest - 1))
    Pruner(build_tiny("llama"), PruneConfig(target_params=smallest))  # reachable: accepted
    # without hidden pruning the floor keeps the full hidden width
    no_hidden = PruneConfig(target_params=10, enable_hidden=False)
    with pytest.raises(ConfigError, match="enabled kinds \\['head', 'ffn'\\]"):
        Pruner(build_tiny("llama"), no_hidden)
