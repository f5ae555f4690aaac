"""Export of hand-compacted tiny models: stock checkpoints load without efficientllm, per-layer ones with it.

Each exported folder is reloaded in a fresh Python process (one for all stock folders, which never
imports efficientllm, and one for all per-layer folders, which does) and its logits must equal the
in-memory compacted model's.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from efficientllm.export import (
    EXPORT_REPORT_FILE,
    ExportError,
    LayerWidths,
    export_model,
    load_exported,
    model_shape,
)
from efficientllm.modeling import EfficientLlamaConfig
from reprokit.errors import OutputPathError

VOCAB = 100  # the conftest models' vocabulary
IDS = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(7))


# ------------------------------------------------------------------ hand compaction (test helper)
def _slice_linear(linear: nn.Linear, rows: Sequence[int] | None = None, cols: Sequence[int] | None = None):
    weight, bias = linear.weight.detach(), None if linear.bias is None else linear.bias.detach()
    if rows is not None:
        weight = weight[list(rows)]
        bias = None if bias is None else bias[list(rows)]
    if cols is not None:
        weight = weight[:, list(cols)]
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


def _head_rows(heads: Sequence[int], head_dim: int) -> list[int]:
    return [h * head_dim + j for h in heads for j in range(head_dim)]


def prune_heads(model, layer: int, keep_q: Sequence[int], keep_kv: Sequence[int]) -> None:
    """Keep query heads `keep_q` and KV heads `keep_kv` of `layer`; each kept query head's KV head is kept."""
    attn = model.model.layers[layer].self_attn
    groups = attn.num_key_value_groups
    assert sorted({q // groups for q in keep_q}) == sorted(keep_kv), "a kept query head lost its KV head"
    assert len(keep_q) % len(keep_kv) == 0
    new_groups = len(keep_q) // len(keep_kv)
    # query heads must stay grouped in order over the kept KV heads
    assert [keep_kv.index(q // groups) for q in keep_q] == [i // new_groups for i in range(len(keep_q))]
    q_rows, kv_rows = _head_rows(keep_q, attn.head_dim), _head_rows(keep_kv, attn.head_dim)
    attn.q_proj = _slice_linear(attn.q_proj, rows=q_rows)
    attn.k_proj = _slice_linear(attn.k_proj, rows=kv_rows)
    attn.v_proj = _slice_linear(attn.v_proj, rows=kv_rows)
    attn.o_proj = _slice_linear(attn.o_proj, cols=q_rows)
    attn.num_key_value_groups = new_groups


def prune_ffn(model, layer: int, keep: Sequence[int]) -> None:
    """Keep FFN channels `keep` of `layer`: rows of gate/up, columns of down."""
    mlp = model.model.layers[layer].mlp
    mlp.gate_proj = _slice_linear(mlp.gate_proj, rows=keep)
    mlp.up_proj = _slice_linear(mlp.up_proj, rows=keep)
    mlp.down_proj = _slice_linear(mlp.down_proj, cols=keep)


def prune_hidden(model, keep: Sequence[int]) -> None:
    """Keep hidden channels `keep` everywhere; norms rescaled so the model equals the masked one."""
    base = model.model
    full, kept = base.embed_tokens.weight.shape[1], len(keep)
    tied = model.lm_head.weight is base.embed_tokens.weight
    embed = base.embed_tokens.weight.detach()[:, list(keep)].clone()
    base.embed_tokens.weight = nn.Parameter(embed)
    if tied:
        model.lm_head.weight = base.embed_tokens.weight
    else:
        model.lm_head.weight = nn.Parameter(model.lm_head.weight.detach()[:, list(keep)].clone())
    for layer in base.layers:
        attn, mlp = layer.self_attn, layer.mlp
        for owner, name in (
            (attn, "q_proj"),
            (attn, "k_proj"),
            (attn, "v_proj"),
            (mlp, "gate_proj"),
            (mlp, "up_proj"),
        ):
            setattr(owner, name, _slice_linear(getattr(owner, name), cols=keep))
        attn.o_proj = _slice_linear(attn.o_proj, rows=keep)
        mlp.down_proj = _slice_linear(mlp.down_proj, rows=keep)
    # masked RMSNorm averages over all `full` channels: weight * sqrt(full/kept), eps * full/kept
    for norm in (
        base.norm,
        *(n for lay in base.layers for n in (lay.input_layernorm, lay.post_attention_layernorm)),
    ):
        norm.weight = nn.Parameter(norm.weight.detach()[list(keep)] * math.sqrt(full / kept))
        norm.variance_epsilon = norm.variance_epsilon * full / kept


def word_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer of exactly VOCAB tokens (fits the tiny models' embedding)."""
    vocab = {f"w{i}": i for i in range(VOCAB - 3)} | {"<unk>": VOCAB - 3, "<s>": VOCAB - 2, "</s>": VOCAB - 1}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def _every_other(n: int, drop: int) -> list[int]:
    """`n - drop` indices of range(n), dropping `drop` of them spread across the range."""
    dropped = set(range(1, n, max(1, n // drop))[:drop])
    return [i for i in range(n) if i not in dropped]


@torch.no_grad()
def _logits(model) -> torch.Tensor:
    return model(input_ids=IDS).logits.float()


# -------------------------------------------------------------------------------- models to export
def uniform_llama(tiny, tied: bool):
    """hidden 64 -> 56, heads 4 / KV 2 -> 2 / 1 (a KV group removed), FFN 128 -> 96: head_dim 16 decoupled."""
    model = tiny("llama", hidden_size=64, intermediate_size=128, tied=tied, seed=1)
    for i in range(3):
        prune_heads(model, i, keep_q=[2, 3], keep_kv=[1])
        prune_ffn(model, i, _every_other(128, 32))
    prune_hidden(model, _every_other(64, 8))
    return model


def per_layer_llama(tiny, tied: bool):
    """Layer widths (heads, KV, FFN): (4, 2, 128), (2, 2, 40), (2, 1, 77); hidden 64 -> 60."""
    model = tiny("llama", hidden_size=64, intermediate_size=128, tied=tied, seed=2)
    prune_heads(model, 1, keep_q=[0, 3], keep_kv=[0, 1])
    prune_heads(model, 2, keep_q=[0, 1], keep_kv=[0])
    prune_ffn(model, 1, _every_other(128, 88))
    prune_ffn(model, 2, _every_other(128, 51))
    prune_hidden(model, _every_other(64, 4))
    return model


def decoupled_llama(tiny, hidden_keep: int):
    """hidden 48, 4 heads of 16 (4 * 16 = 64 != 48), hidden pruned to `hidden_keep`."""
    model = tiny("llama", hidden_size=48, head_dim=16, intermediate_size=96, seed=3)
    if hidden_keep < 48:
        prune_hidden(model, _every_other(48, 48 - hidden_keep))
    return model


def per_layer_qwen2(tiny):
    """Qwen2 (q/k/v biased, o_proj not) with per-layer heads and FFN: needs attention_out_bias."""
    model = tiny("qwen2", tied=False, seed=4)
    prune_heads(model, 0, keep_q=[0, 1], keep_kv=[0])
    prune_ffn(model, 1, _every_other(64, 20))
    return model


# ------------------------------------------------------------------------------ fresh-process load
LOADER = textwrap.dedent(
    """
    import json, sys
    import torch
    from safetensors.torch import save_file
    if sys.argv[1] == "import":
        import efficientllm  # noqa: F401  registers the per-layer classes
    from transformers import AutoModelForCausalLM
    ids = torch.tensor(json.loads(sys.argv[2]))
    out = {}
    for i, folder in enumerate(sys.argv[4:]):
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        with torch.no_grad():
            out[f"logits{i}"] = model(input_ids=ids).logits.float().contiguous()
        out[f"class{i}"] = torch.tensor(list(type(model).__name__.encode()))
    save_file(out, sys.argv[3])
    print(json.dumps({"efficientllm_imported": any(m.startswith("efficientllm") for m in sys.modules)}))
    """
)


def load_in_fresh_process(
    folders: Sequence[Path], out: Path, *, import_package: bool
) -> tuple[list, list, bool]:
    """Logits and class names of each folder, loaded with stock AutoModelForCausalLM in a new interpreter."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    cmd = [
        sys.executable,
        "-c",
        LOADER,
        "import" if import_package else "stock",
        json.dumps(IDS.tolist()),
        str(out),
    ]
    proc = subprocess.run(
        cmd + [str(f) for f in folders], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tensors = load_file(str(out))
    logits = [tensors[f"logits{i}"] for i in range(len(folders))]
    names = [bytes(tensors[f"class{i}"].tolist()).decode() for i in range(len(folders))]
    imported = json.loads(proc.stdout.strip().splitlines()[-1])["efficientllm_imported"]
    return logits, names, imported


# ------------------------------------------------------------------------------------------- tests
def test_exports_reload_with_equal_logits_in_fresh_processes(tiny, tmp_path):
    tok = word_tokenizer()
    stock_cases = {
        "uniform_untied": uniform_llama(tiny, tied=False),
        "uniform_tied": uniform_llama(tiny, tied=True),
        "decoupled_48": decoupled_llama(tiny, 48),
        "decoupled_44": decoupled_llama(tiny, 44),
    }
    per_layer_cases = {
        "per_layer_untied": per_layer_llama(tiny, tied=False),
        "per_layer_tied": per_layer_llama(tiny, tied=True),
        "decoupled_45": decoupled_llama(tiny, 45),  # uniform, but 45 % 4 != 0: stock LlamaConfig refuses
        "qwen2_per_layer": per_layer_qwen2(tiny),
    }
    reports = {}
    for name, model in {**stock_cases, **per_layer_cases}.items():
        reports[name] = export_model(model, tok, tmp_path / name)
        assert reports[name].max_logit_diff is not None and reports[name].max_logit_diff < 1e-5

    for cases, import_package in ((stock_cases, False), (per_layer_cases, True)):
        folders = [tmp_path / name for name in cases]
        logits, classes, imported = load_in_fresh_process(
            folders, tmp_path / f"logits_{import_package}.safetensors", import_package=import_package
        )
        assert imported is import_package
        for (name, model), got, cls in zip(cases.items(), logits, classes, strict=True):
            torch.testing.assert_close(got, _logits(model), atol=1e-5, rtol=1e-5, msg=name)
            report = reports[name]
            assert report.stock is not import_package, name
            assert report.num_parameters == sum(p.numel() for p in model.parameters()), name
            config = json.loads((tmp_path / name / "config.json").read_text())
            assert config["hidden_size"] == model.model.embed_tokens.weight.shape[1]
            assert config["tie_word_embeddings"] is (model.lm_head.weight is model.model.embed_tokens.weight)
            assert config["model_type"] == ("efficientllm" if import_package else "llama"), name
            assert cls == ("EfficientLlamaForCausalLM" if import_package else "LlamaForCausalLM"), name

    shape = reports["uniform_tied"]
    assert (shape.uniform, shape.hidden_size, shape.head_dim, shape.config_class) == (
        True,
        56,
        16,
        "LlamaConfig",
    )
    assert shape.layers == (LayerWidths(2, 1, 96),) * 3 and shape.tied_embeddings
    config = json.loads((tmp_path / "uniform_untied" / "config.json").read_text())
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["intermediate_size"]) == (
        2,
        1,
        96,
    )
    assert config["head_dim"] == 16 and config["rms_norm_eps"] == pytest.approx(1e-6 * 64 / 56)
    per_layer = reports["per_layer_untied"]
    assert not per_layer.uniform and per_layer.config_class == "EfficientLlamaConfig"
    assert per_layer.layers == (LayerWidths(4, 2, 128), LayerWidths(2, 2, 40), LayerWidths(2, 1, 77))
    config = json.loads((tmp_path / "per_layer_untied" / "config.json").read_text())
    assert config["layer_num_attention_heads"] == [4, 2, 2] and config["layer_intermediate_size"] == [
        128,
        40,
        77,
    ]
    assert config["layer_num_key_value_heads"] == [2, 2, 1]
    fallback = reports["decoupled_45"]
    assert fallback.uniform and not fallback.stock and "not a multiple" in " ".join(fallback.notes)
    assert json.loads((tmp_path / "decoupled_45" / EXPORT_REPORT_FILE).read_text())["stock"] is False
    qwen = json.loads((tmp_path / "qwen2_per_layer" / "config.json").read_text())
    assert (qwen["attention_bias"], qwen["attention_out_bias"]) == (True, False)
    assert sorted(p.name for p in (tmp_path / "uniform_tied").iterdir()) == sorted(
        [
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            EXPORT_REPORT_FILE,
        ]
    )


def test_uniform_qwen2_exports_to_its_own_stock_class(tiny, tmp_path):
    model = tiny("qwen2", tied=True, seed=5)
    for i in range(2):
        prune_heads(model, i, keep_q=[0, 1], keep_kv=[0])
        prune_ffn(model, i, _every_other(64, 16))
    prune_hidden(model, _every_other(32, 4))
    report = export_model(model, word_tokenizer(), tmp_path / "q")
    assert (report.stock, report.config_class, report.head_dim, report.hidden_size) == (
        True,
        "Qwen2Config",
        8,
        28,
    )
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "q").eval()
    assert type(reloaded).__name__ == "Qwen2ForCausalLM"
    torch.testing.assert_close(_logits(reloaded), _logits(model), atol=1e-5, rtol=1e-5)


def test_export_casts_dtype_and_load_exported_serves_it(tiny, tmp_path):
    model = uniform_llama(tiny, tied=False)
    report = export_model(model, word_tokenizer(), tmp_path / "bf16", dtype="bfloat16")
    assert report.dtype == "bfloat16" and report.max_logit_diff is not None
    lm = load_exported(tmp_path / "bf16", dtype="float32", device="cpu")
    reference = _logits(model)
    assert 0 < float((_logits(lm.model) - reference).abs().max()) < 0.1 * float(reference.abs().max())
    with open(tmp_path / "bf16" / "model.safetensors", "rb") as fh:
        header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}


def test_load_exported_serves_per_layer_models(tiny, tmp_path):
    model = per_layer_llama(tiny, tied=False)
    export_model(model, word_tokenizer(), tmp_path / "pl")
    lm = load_exported(tmp_path / "pl", device="cpu")
    torch.testing.assert_close(_logits(lm.model), _logits(model), atol=1e-5, rtol=1e-5)


def test_refusals_name_the_problem(tiny, tmp_path):
    tok = word_tokenizer()
    model = tiny("llama", seed=6)
    attn = model.model.layers[1].self_attn
    with warnings.catch_warnings():  # torch warns that initialising a zero-element tensor is a no-op
        warnings.simplefilter("ignore", UserWarning)
        attn.q_proj = _slice_linear(attn.q_proj, rows=[])
        attn.o_proj = _slice_linear(attn.o_proj, cols=[])
    with pytest.raises(ExportError, match="layer 1 has no attention heads"):
        export_model(model, tok, tmp_path / "zero")
    assert not (tmp_path / "zero").exists()

    model = tiny("llama", seed=6)
    model.model.layers[0].self_attn.scaling *= 0.5  # forward changes, but no checkpoint field holds it
    with pytest.raises(ExportError, match="does not reproduce the model"):
        export_model(model, tok, tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob("bad*"))

    model = tiny("llama", seed=6)
    model.model.layers[2].input_layernorm.variance_epsilon = 1e-3
    with pytest.raises(ExportError, match="different epsilons"):
        export_model(model, tok, tmp_path / "eps")

    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputPathError, match="overwrite=True"):
        export_model(tiny("llama"), tok, tmp_path / "taken")
    assert export_model(tiny("llama"), tok, tmp_path / "taken", overwrite=True).stock


def test_per_layer_export_refused_for_other_architectures(tiny, tmp_path):
    model = tiny("olmo2", seed=8)
    prune_ffn(model, 0, _every_other(64, 10))
    with pytest.raises(ExportError, match="per-layer widths can be exported for"):
        export_model(model, word_tokenizer(), tmp_path / "olmo2")


def test_config_refuses_layers_without_heads_and_builds_per_layer_modules():
    with pytest.raises(Exception, match=r"layer_num_attention_heads\[1\] is 0"):
        EfficientLlamaConfig(
            num_hidden_layers=2, layer_num_attention_heads=[4, 0], layer_num_key_value_heads=[1, 1]
        )
    with pytest.raises(Exception, match="whole multiple of KV heads"):
        EfficientLlamaConfig(
            num_hidden_layers=2, layer_num_attention_heads=[4, 3], layer_num_key_value_heads=[2, 2]
        )
    config = EfficientLlamaConfig(
        vocab_size=VOCAB,
        hidden_size=45,
        num_hidden_layers=2,
        num_attention_heads=4,
        head_dim=16,
        layer_num_attention_heads=[4, 2],
        layer_num_key_value_heads=[2, 1],
        layer_intermediate_size=[30, 7],
    )
    assert (config.num_attention_heads, config.intermediate_size, config.head_dim) == (4, 30, 16)
    model = AutoModelForCausalLM.from_config(config)
    shape = model_shape(model)
    assert shape.layers == (LayerWidths(4, 2, 30), LayerWidths(2, 1, 7)) and shape.hidden_size == 45
    assert model.model.layers[1].self_attn.num_key_value_groups == 2
    assert _logits(model).shape == (2, 9, VOCAB)
