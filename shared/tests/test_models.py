from __future__ import annotations

import pytest
import torch

from reprokit import zoo
from reprokit.models import (
    ModelNotFoundError,
    UnsafeCheckpointError,
    load_causal_lm,
    resolve_device,
    resolve_dtype,
)


@pytest.fixture(scope="module")
def saved(tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    zoo.build_model("gpt_neox-0.3m", tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_loads_a_local_folder_on_cpu_in_float32(saved, tokenizer):
    model, tok = load_causal_lm(saved, device="cpu")
    assert model.dtype == torch.float32 and not model.training
    assert tok("Item 3").input_ids == tokenizer("Item 3").input_ids
    model16, _ = load_causal_lm(str(saved), dtype="bfloat16", device="cpu")
    assert model16.dtype == torch.bfloat16


def test_missing_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_causal_lm(tmp_path / "nope")


def test_folder_without_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="holds no model"):
        load_causal_lm(tmp_path)


def test_pickle_checkpoint_is_refused_without_unpickling(tmp_path, saved):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((saved / "config.json").read_text())
    (folder / "pytorch_model.bin").write_bytes(b"not even a valid pickle: never opened")
    with pytest.raises(UnsafeCheckpointError, match="safetensors"):
        load_causal_lm(folder)
    with pytest.raises(UnsafeCheckpointError, match="pickle"):
        load_causal_lm(folder / "pytorch_model.bin")


def test_hub_id_not_available_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="not found locally; pass a local path or set HF_HOME"):
        load_causal_lm("EleutherAI/pythia-70m-this-is-not-cached")


def test_device_and_dtype_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float8")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")
