"""Pieces of the reproduction: the cached tiny source, pruned shares and first-removal tokens, and the
registration of the per-layer model type when transformers loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from efficientllm.experiments import _first_prune_tokens, _shares
from efficientllm.tiny import TinyConfig, TinySetup
from efficientllm.training import PruneTrainConfig
from efficientllm.world import TinyWorldConfig

SMALL = TinyConfig(
    world=TinyWorldConfig(
        n_people=12, n_places=6, n_countries=4, fact_repeats=1, n_sum_docs=20, n_count_docs=20,
        n_grammar_docs=20, n_category_docs=10, items_per_task=4,
    ),
    vocab_size=300,
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    num_key_value_heads=2,
    intermediate_size=64,
    pretrain=PruneTrainConfig(steps=3, batch_size=2, seq_len=32, lr=1e-3),
)  # fmt: skip


def test_the_tiny_source_is_trained_once_and_cached(tmp_path):
    first = TinySetup(SMALL, seed=1, cache_dir=tmp_path)
    folder = first.source_folder
    assert (folder / "model.safetensors").is_file() and (folder / "pretrain.json").is_file()
    assert not any(p.name.endswith(".work") for p in folder.parent.iterdir())  # checkpoint folder removed
    summary = json.loads((folder / "pretrain.json").read_text())
    assert summary["step"] == 3 and summary["complete"]
    model = first.source()
    assert model.config.tie_word_embeddings and model.config.num_key_value_heads == 2

    again = TinySetup(SMALL, seed=1, cache_dir=tmp_path)
    assert again.source_folder == folder  # same key: loaded, not retrained
    for (name, a), (_, b) in zip(
        model.state_dict().items(), again.source().state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    other = TinySetup(SMALL, seed=2, cache_dir=tmp_path)
    assert other.source_folder != folder  # another seed: another world and source


def test_calibration_blocks_come_from_the_training_stream(tmp_path):
    setup = TinySetup(SMALL, seed=0, cache_dir=tmp_path)
    blocks = setup.calibration(3, 16)
    assert len(blocks) == 3 and all(b.shape == (1, 16) for b in blocks)
    stream = setup.stream.tolist()
    text = " ".join(map(str, stream))
    for b in blocks:
        assert " ".join(map(str, b[0].tolist())) in text


def test_shares_and_first_removals():
    source = {"kv_heads": [2, 2], "ffn": [64, 64], "hidden": 32}
    widths = {"kv_heads": [1, 2], "ffn": [16, 48], "hidden": 24}
    assert _shares(widths, source) == pytest.approx({"head": 0.25, "ffn": 0.5, "hidden": 0.25})
    events = [
        {"step": 2, "removed": {"head": 0, "ffn": 3, "hidden": 0}},
        {"step": 4, "removed": {"head": 1, "ffn": 2, "hidden": 0}},
        {"step": 6, "removed": {"head": 0, "ffn": 0, "hidden": 0}},
    ]
    first = _first_prune_tokens(events, tokens_per_step=100)
    assert first["ffn"] == 200 and first["head"] == 400
    assert first["hidden"] != first["hidden"]  # never pruned: NaN


def _probe(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_is_light_and_registers_when_transformers_loads():
    out = _probe(
        "import json, sys, efficientllm\n"
        "light = 'transformers' not in sys.modules and 'torch' not in sys.modules\n"
        "from transformers import AutoConfig, AutoModelForCausalLM\n"
        "cfg = AutoConfig.for_model('efficientllm', hidden_size=8, num_attention_heads=2,"
        " num_hidden_layers=1,"
        " layer_num_attention_heads=[2], layer_num_key_value_heads=[2], layer_intermediate_size=[4],"
        " vocab_size=10)\n"
        "model = AutoModelForCausalLM.from_config(cfg)\n"
        "print(json.dumps({'light': light, 'type': type(model).__name__}))"
    )
    assert out == {"light": True, "type": "EfficientLlamaForCausalLM"}
    # transformers imported first: registered at once
    out = _probe(
        "import json, transformers, efficientllm\n"
        "from transformers import AutoConfig\n"
        "print(json.dumps({'type': AutoConfig.for_model('efficientllm').model_type}))"
    )
    assert out == {"type": "efficientllm"}
