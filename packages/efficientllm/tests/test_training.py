"""prune_train: the accelerate loop with the Pruner hooks, checkpoints, exact resume, errors."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from efficientllm.schedule import PruneConfig
from efficientllm.state import PruningState
from efficientllm.training import (
    CHECKPOINT_DIR,
    PruneTrainConfig,
    _next_blocks,
    lr_at,
    pack_blocks,
    prune_train,
)
from reprokit.errors import ConfigError, DataError


def _stream(n: int = 2000, seed: int = 0) -> np.ndarray:
    """A learnable token stream: noisy counting modulo 50 (ids < 100, the tiny models' vocabulary)."""
    rng = np.random.default_rng(seed)
    base = np.arange(n) % 50
    noise = rng.integers(0, 100, n)
    return np.where(rng.random(n) < 0.1, noise, base).astype(np.int64)


CFG = PruneTrainConfig(
    steps=24, batch_size=4, seq_len=16, lr=3e-3, warmup_steps=2, log_every=1, checkpoint_every=5, seed=3
)
PRUNE = PruneConfig(every=4, compact_every=2, target_ratio=0.4, budget_fraction=0.08)


class CharTokenizer:
    """A stand-in tokenizer: one id per character (ord % 90 + 2), eos = 1."""

    eos_token_id = 1

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        return {"input_ids": [ord(c) % 90 + 2 for c in text]}


HIDDEN_ONLY = dataclasses.replace(PRUNE, enable_heads=False, enable_ffn=False)


# smollm: tied embeddings (saved once), hidden channels pruned (RMSNorm eps rescaled at each compaction);
# log_every 4: a partly filled log window is checkpointed at step 14
@pytest.mark.parametrize(("arch", "log_every", "prune"), [("llama", 1, PRUNE), ("smollm", 4, HIDDEN_ONLY)])
def test_resume_equals_uninterrupted_run(tiny, tmp_path, arch, log_every, prune):
    cfg = dataclasses.replace(CFG, log_every=log_every)
    straight = prune_train(tiny(arch), None, _stream(), cfg, prune=prune, output_dir=tmp_path / "a")
    first = prune_train(tiny(arch), None, _stream(), cfg, prune=prune, output_dir=tmp_path / "b", stop_at=14)
    assert not first.complete and first.step == 14
    saved = PruningState.load(tmp_path / "b" / CHECKPOINT_DIR / "pruning_state.json")
    assert saved.kept != saved.physical  # the checkpoint holds masked units (event at 12 not compacted)
    assert saved.physical != saved.source_state().physical  # and compacted shapes (event at 8)
    # a new model object with other weights: everything must come from the checkpoint
    resumed = prune_train(tiny(arch, seed=7), None, _stream(), cfg, prune=prune, output_dir=tmp_path / "b")
    assert resumed.complete and resumed.resumed_from == 14
    after = [e for e in resumed.events if e["step"] > 14]
    assert after and any(e["compacted"] for e in after)
    assert any(sum(e["removed"].values()) > 0 for e in after)
    assert resumed.events == straight.events
    assert [h["step"] for h in resumed.history] == list(range(log_every, 25, log_every))
    np.testing.assert_allclose(
        [h["loss"] for h in resumed.history], [h["loss"] for h in straight.history], rtol=0, atol=1e-6
    )
    assert [h["params"] for h in resumed.history] == [h["params"] for h in straight.history]
    want, got = straight.model.state_dict(), resumed.model.state_dict()
    assert want.keys() == got.keys()
    for key in want:
        assert want[key].shape == got[key].shape, key
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=1e-6)
    assert resumed.final_params == straight.final_params < sum(p.numel() for p in tiny(arch).parameters())
    assert resumed.tokens_seen == straight.tokens_seen == 24 * 4 * 16
    if resumed.model.config.tie_word_embeddings:
        assert resumed.model.lm_head.weight is resumed.model.model.embed_tokens.weight
    if prune is HIDDEN_ONLY:
        assert resumed.widths["hidden"] < 32 and resumed.widths["ffn"] == [64, 64]
    eps = [m.input_layernorm.variance_epsilon for r in (straight, resumed) for m in r.model.model.layers[:1]]
    assert eps[0] == pytest.approx(eps[1], rel=1e-12)


def test_pruned_run_result_and_files(tiny, tmp_path):
    model = tiny("smollm")  # tied embeddings
    source = sum(p.numel() for p in model.parameters())
    res = prune_train(model, None, _stream(), CFG, prune=PRUNE, output_dir=tmp_path)
    assert res.model is model and res.complete
    assert res.final_params == sum(p.numel() for p in model.parameters()) < source
    params = [h["params"] for h in res.history]
    assert params[0] == source and all(a >= b for a, b in itertools.pairwise(params))
    assert len(res.events) == 6 and res.events[-1]["compacted"]
    # the model in memory is compacted to the pruner's widths
    assert model.model.embed_tokens.weight.shape[1] == res.widths["hidden"]
    assert [m.mlp.up_proj.out_features for m in model.model.layers] == res.widths["ffn"]
    assert model.lm_head.weight is model.model.embed_tokens.weight
    # train.json mirrors the result
    data = json.loads((tmp_path / "train.json").read_text())
    assert data["final_params"] == res.final_params and data["history"] == res.history
    assert data["events"] == res.events and data["prune"] == PRUNE.to_dict()
    # checkpoint at step 20: safetensors of the compacted shapes, optimizer readable with weights_only
    ckpt = tmp_path / CHECKPOINT_DIR
    meta = json.loads((ckpt / "state.json").read_text())
    assert meta["step"] == 20 and meta["position"] == [0, 80]
    weights = load_file(str(ckpt / "model" / "model.safetensors"))
    state = PruningState.load(ckpt / "pruning_state.json")
    embed = weights.get("model.embed_tokens.weight", weights.get("lm_head.weight"))  # tied: stored once
    assert embed is not None and embed.shape[1] == len(state.physical.hidden)
    blob = torch.load(ckpt / "training_state.pt", weights_only=True)
    assert blob["torch_rng"].dtype == torch.uint8 and len(blob["optimizer"]["param_groups"]) == 2
    assert not list(tmp_path.glob("*.tmp-*"))


def test_plain_training_learns_and_follows_the_schedule(tiny, tmp_path):
    cfg = PruneTrainConfig(steps=30, batch_size=4, seq_len=16, lr=3e-3, warmup_steps=5, log_every=10)
    res = prune_train(tiny("qwen2"), None, _stream(), cfg, prune=None, output_dir=tmp_path)
    assert [h["step"] for h in res.history] == [10, 20, 30]
    assert res.history[-1]["loss"] < res.history[0]["loss"] - 0.3
    assert res.events == [] and res.widths is None
    assert res.history[0]["params"] == res.final_params
    assert res.history[-1]["lr"] == pytest.approx(lr_at(cfg, 30)) == pytest.approx(3e-4)
    assert lr_at(cfg, 1) == pytest.approx(6e-4) and lr_at(cfg, 5) == pytest.approx(3e-3)
    const = PruneTrainConfig(steps=30, lr=1e-3, schedule="constant", warmup_steps=0)
    assert lr_at(const, 1) == lr_at(const, 30) == 1e-3
    assert not (tmp_path / CHECKPOINT_DIR).exists()  # checkpoint_every=0


def test_packing_and_data_order():
    blocks = pack_blocks(CharTokenizer(), ["abc", "", "defgh"], 3)
    # a=97 -> 9; each text followed by eos 1, the empty one skipped, the tail dropped
    assert blocks.tolist() == [[9, 10, 11], [1, 12, 13], [14, 15, 16]]
    blocks = pack_blocks(CharTokenizer(), ["abc", "de"], 2)
    assert blocks.shape == (3, 2)
    blocks = pack_blocks(None, np.arange(10), 3)
    assert blocks.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    pos = [0, 0]
    seen = _next_blocks(np.arange(5)[:, None], 0, pos, 7)[:, 0].tolist()
    assert sorted(seen[:5]) == [0, 1, 2, 3, 4] and pos == [1, 2]
    again = _next_blocks(np.arange(5)[:, None], 0, [0, 0], 7)[:, 0].tolist()
    assert again == seen  # seeded by (seed, epoch)


def test_clear_errors(tiny, tmp_path):
    kw = {"prune": None, "output_dir": tmp_path}
    with pytest.raises(DataError, match="no training data"):
        prune_train(tiny("llama"), CharTokenizer(), [], CFG, **kw)
    with pytest.raises(DataError, match="empty"):
        prune_train(tiny("llama"), CharTokenizer(), ["", "  "], CFG, **kw)
    with pytest.raises(DataError, match="fewer than one block"):
        prune_train(tiny("llama"), None, np.arange(10), CFG, **kw)
    with pytest.raises(ConfigError, match="max_position_embeddings=64"):
        prune_train(tiny("llama"), None, _stream(), PruneTrainConfig(steps=2, seq_len=128), **kw)
    with pytest.raises(ConfigError, match="larger than the model"):
        prune_train(
            tiny("llama"), None, _stream(), CFG, prune=PruneConfig(target_params=10**9), output_dir=tmp_path
        )
    with pytest.raises(ConfigError, match=r"steps must be an integer >= 1.*schedule"):
        PruneTrainConfig(steps=0, schedule="linear")
    with pytest.raises(DataError, match="vocabulary"):
        prune_train(tiny("llama"), None, np.arange(200) + 50, PruneTrainConfig(steps=1, seq_len=16), **kw)


def test_resume_refuses_another_config(tiny, tmp_path):
    cfg = PruneTrainConfig(steps=4, batch_size=2, seq_len=16, checkpoint_every=2)
    prune_train(tiny("llama"), None, _stream(), cfg, prune=None, output_dir=tmp_path, stop_at=2)
    other = PruneTrainConfig(steps=4, batch_size=2, seq_len=16, checkpoint_every=2, lr=1e-3)
    with pytest.raises(ConfigError, match="another configuration"):
        prune_train(tiny("llama"), None, _stream(), other, prune=None, output_dir=tmp_path)
    res = prune_train(tiny("llama"), None, _stream(), other, prune=None, output_dir=tmp_path, resume=False)
    assert res.resumed_from is None and res.step == 4
