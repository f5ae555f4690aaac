"""The language-model handle: loading, every refusal, the pad and EOS rules, batched generation."""

from __future__ import annotations

import copy
import json
import re
import shutil

import numpy as np
import pytest
import torch

from reprokit import zoo
from reprokit.errors import ConfigError, ModelLoadError, UserError
from reprokit.generation import generate
from reprokit.lm import (
    DeviceUnavailableError,
    LanguageModel,
    ModelNotFoundError,
    UnsafeCheckpointError,
    load_lm,
    require_lm,
    resolve_device,
    resolve_dtype,
)
from reprokit.scoring import score_texts, score_token_ids
from reprokit.tokenizer import train_tokenizer

PROMPTS = ["Item 3 is", "Item 44 is blue and weighs 9 kg. It was made in", "Item", "Item 7 is red and"]


# ------------------------------------------------------------------------------------------ folders
@pytest.fixture(scope="module")
def saved(tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    zoo.build_model("gpt_neox-0.3m", tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _variant(saved, tmp_path, name, **config_changes):
    """A copy of the saved model with config.json keys changed (None removes a key)."""
    folder = tmp_path / name
    shutil.copytree(saved, folder)
    config = json.loads((folder / "config.json").read_text())
    for key, value in config_changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _sharp_lm(arch: str, tokenizer) -> LanguageModel:
    """A random model with large weights, so batching mistakes would change its predictions."""
    model = zoo.build_model(f"{arch}-0.3m", tokenizer, seed=0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.15)
    return LanguageModel(model.eval(), tokenizer)


# ------------------------------------------------------------------------------------------ loading
def test_loads_a_local_folder_with_its_properties(saved, tokenizer):
    lm = load_lm(saved, device="cpu")
    assert lm.dtype == torch.float32 and not lm.model.training
    assert lm.device == torch.device("cpu") and lm.name == str(saved)
    assert lm.encode("Item 3") == tokenizer("Item 3").input_ids
    assert lm.decode(lm.encode("Item 3")) == "Item 3"
    assert lm.pad_id == tokenizer.pad_token_id
    assert tokenizer.eos_token_id in lm.eos_ids
    assert lm.chat_template == tokenizer.chat_template
    assert "model=" not in repr(lm) and str(saved) in repr(lm)
    assert load_lm(str(saved), dtype="bfloat16", device="cpu").dtype == torch.bfloat16


@pytest.mark.parametrize("arch", zoo.ARCHITECTURES)
def test_every_zoo_architecture_loads_with_the_tokenizer_it_was_saved_with(tokenizer, tmp_path, arch):
    """A saved `reprokit.tokenizer` BPE stays itself (AutoTokenizer swaps in Qwen2Tokenizer for qwen2)."""
    zoo.build_model(f"{arch}-0.3m", tokenizer).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lm = load_lm(tmp_path, device="cpu")
    assert len(lm.tokenizer) == len(tokenizer)
    assert lm.encode("Item 44 is blue.") == tokenizer("Item 44 is blue.").input_ids
    assert lm.chat_template == tokenizer.chat_template


def test_tokenizer_from_another_folder(saved, tokenizer, tmp_path):
    bare = tmp_path / "weights-only"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(saved / name, bare / name)
    with pytest.raises(ModelLoadError, match=rf"{bare} has no tokenizer files.*tokenizer=PATH_OR_ID") as err:
        load_lm(bare, device="cpu")
    assert "sentencepiece" not in str(err.value) and "tiktoken" not in str(err.value)
    lm = load_lm(bare, device="cpu", tokenizer=saved)
    assert lm.encode("Item 3") == tokenizer("Item 3").input_ids
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_lm(saved, device="cpu", tokenizer=tmp_path / "nowhere")


def test_missing_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_lm(tmp_path / "nope")


def test_folder_without_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="holds no model"):
        load_lm(tmp_path)


def test_pickle_checkpoint_is_refused_without_unpickling(tmp_path, saved):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((saved / "config.json").read_text())
    (folder / "pytorch_model.bin").write_bytes(b"not even a valid pickle: never opened")
    with pytest.raises(UnsafeCheckpointError, match="safetensors"):
        load_lm(folder)
    with pytest.raises(UnsafeCheckpointError, match="pickle"):
        load_lm(folder / "pytorch_model.bin")


def test_hub_id_not_available_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="not found locally; pass a local path or set HF_HOME"):
        load_lm("EleutherAI/pythia-70m-this-is-not-cached")


def test_error_classes_are_user_errors_with_builtin_bases():
    assert issubclass(ModelNotFoundError, ModelLoadError) and issubclass(
        ModelNotFoundError, FileNotFoundError
    )
    assert issubclass(UnsafeCheckpointError, ModelLoadError) and issubclass(UnsafeCheckpointError, ValueError)
    assert issubclass(ModelLoadError, UserError)
    assert issubclass(DeviceUnavailableError, ConfigError) and issubclass(
        DeviceUnavailableError, RuntimeError
    )


# ---------------------------------------------------------------------------------------- refusals
def test_encoder_only_model_is_refused(tmp_path, tokenizer):
    from transformers import BertConfig, BertForMaskedLM

    folder = tmp_path / "bert"
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with pytest.raises(ModelLoadError, match=r"model type 'bert'.*encoder-only.*decoder-only causal LM"):
        load_lm(folder, device="cpu")


def test_encoder_decoder_model_is_refused(tmp_path, tokenizer):
    from transformers import T5Config, T5ForConditionalGeneration

    folder = tmp_path / "t5"
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with pytest.raises(ModelLoadError, match=r"model type 't5'.*encoder-decoder.*decoder-only causal LM"):
        load_lm(folder, device="cpu")


def test_task_head_checkpoint_is_refused(saved, tmp_path):
    folder = _variant(saved, tmp_path, "classifier", architectures=["GPTNeoXForSequenceClassification"])
    with pytest.raises(ModelLoadError, match="task head, not a language-model head"):
        load_lm(folder, device="cpu")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_or_truncated_safetensors_is_refused(saved, tmp_path, damage):
    folder = _variant(saved, tmp_path, damage)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(b"not a safetensors file at all" if damage == "garbage" else data[:-100])
    with pytest.raises(ModelLoadError, match=rf"{weights} is corrupt or truncated.*save the model again"):
        load_lm(folder, device="cpu")


def test_missing_shard_is_refused(saved, tmp_path):
    folder = _variant(saved, tmp_path, "sharded")
    index = {"metadata": {}, "weight_map": {"embed_out.weight": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match=r"lacks weight shard.*model-00002-of-00002\.safetensors"):
        load_lm(folder, device="cpu")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"hidden_size": 128}, r"tensors have other shapes than config.json implies \(e.g. .*: \(.*64.*\)"),
        ({"vocab_size": 999}, r"other shapes"),
        ({"num_hidden_layers": 3}, r"tensors are missing from the weights \(e.g. gpt_neox.layers.2"),
        (
            {"num_hidden_layers": 1},
            r"tensors are not in the model but in the weights \(e.g. gpt_neox.layers.1",
        ),
    ],
)
def test_weights_that_do_not_fit_the_config_are_refused(saved, tmp_path, changes, expected):
    folder = _variant(saved, tmp_path, "mismatch", **changes)
    with pytest.raises(ModelLoadError, match=rf"do not fit its config.json: .*{expected}"):
        load_lm(folder, device="cpu")


def test_custom_code_is_refused_without_suggesting_it(saved, tmp_path):
    folder = _variant(
        saved,
        tmp_path,
        "custom",
        model_type="my_custom_lm",
        auto_map={"AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XForCausalLM"},
    )
    with pytest.raises(ModelLoadError, match="never runs code from a model repository") as err:
        load_lm(folder, device="cpu")
    message = str(err.value)
    assert "my_custom_lm" in message and "modeling_x.XForCausalLM" in message
    assert "trust_remote_code=True" not in message and "hf.co" not in message


def test_custom_code_on_a_known_architecture_loads_the_builtin_class(saved, tmp_path):
    folder = _variant(saved, tmp_path, "known", auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    assert type(load_lm(folder, device="cpu").model).__name__ == "GPTNeoXForCausalLM"


def test_unknown_model_type_and_bad_config(saved, tmp_path):
    with pytest.raises(ModelLoadError, match="does not know this model type"):
        load_lm(_variant(saved, tmp_path, "unknown", model_type="no_such_type"), device="cpu")
    with pytest.raises(ModelLoadError, match="has no model_type"):
        load_lm(_variant(saved, tmp_path, "untyped", model_type=None), device="cpu")
    broken = _variant(saved, tmp_path, "broken")
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json is not valid JSON"):
        load_lm(broken, device="cpu")


def test_tokenizer_of_another_model_is_refused(saved, tmp_path, corpus):
    big = train_tokenizer(corpus * 3 + [f"word{i} token{i}" for i in range(400)], vocab_size=600)
    assert len(big) > 320
    big.save_pretrained(tmp_path / "big-tok")
    with pytest.raises(ModelLoadError, match="is not this model's tokenizer"):
        load_lm(saved, device="cpu", tokenizer=tmp_path / "big-tok")


def test_device_and_dtype_resolution(saved):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16
    with pytest.raises(ConfigError, match="unknown dtype"):
        resolve_dtype("float8")
    with pytest.raises(ConfigError, match="unknown device 'gpu'; use auto, cpu, cuda"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match=r"CUDA is not available.*--device cpu"):
            resolve_device("cuda")
        with pytest.raises(DeviceUnavailableError, match="--device cpu"):
            load_lm(saved, device="cuda")


# ------------------------------------------------------------------------------ handle and rules
def test_pad_rule_and_eos_ids(tokenizer):
    model = zoo.build_model("llama-0.3m", tokenizer)
    lm = LanguageModel(model, tokenizer)
    assert lm.pad_id == tokenizer.pad_token_id != tokenizer.eos_token_id
    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    assert no_pad.pad_token_id is None
    assert tokenizer.eos_token_id > 1
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, 7, 1]
    lm = LanguageModel(model, no_pad)
    assert lm.eos_ids == {tokenizer.eos_token_id, 7, 1}
    assert lm.pad_id == 1  # no pad token: the smallest EOS id
    model.generation_config.eos_token_id = None
    no_eos = copy.deepcopy(no_pad)
    no_eos.eos_token = None
    with pytest.raises(ModelLoadError, match=r"end-of-sequence token; set tokenizer\.eos_token"):
        _ = LanguageModel(model, no_eos).pad_id


def test_handle_checks_its_parts(tokenizer):
    model = zoo.build_model("llama-0.3m", tokenizer)
    with pytest.raises(TypeError, match="a torch module"):
        LanguageModel("a/path", tokenizer)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Hugging Face tokenizer"):
        LanguageModel(model, "a/path")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\(model, tokenizer\) pair.*LanguageModel\(model, tokenizer\)"):
        require_lm((model, tokenizer), "suspect")
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    assert LanguageModel(model, plain).chat_template is None
    assert LanguageModel(model, tokenizer, name="mine").name == "mine"


# -------------------------------------------------------------------------------------- generation
@pytest.mark.parametrize("arch", zoo.ARCHITECTURES)
def test_batched_greedy_equals_one_by_one(tokenizer, arch):
    lm = _sharp_lm(arch, tokenizer)
    batched = generate(lm, PROMPTS, max_new_tokens=12, batch_size=4)
    single = [generate(lm, [p], max_new_tokens=12)[0] for p in PROMPTS]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    assert [g.text for g in batched] == [g.text for g in single]
    assert batched[0].prompt_ids == tuple(lm.encode(PROMPTS[0]))
    assert any(len(g.token_ids) > 0 for g in batched)


def test_left_padding_matters(tokenizer):
    """Guards the test above: without the mask and positions, the padded short prompt would change."""
    lm = _sharp_lm("llama", tokenizer)
    short, long = lm.encode(PROMPTS[0]), lm.encode(PROMPTS[1])
    padded = torch.tensor([[lm.pad_id] * (len(long) - len(short)) + short])
    with torch.no_grad():
        unmasked = lm.model(input_ids=padded).logits[0, -1]
        alone = lm.model(input_ids=torch.tensor([short])).logits[0, -1]
    assert (unmasked - alone).abs().max() > 1e-2


class _EosBias(torch.nn.Module):
    """A causal LM whose EOS logit is raised by `bias` (to script when generation ends)."""

    def __init__(self, inner: torch.nn.Module, eos: int, bias: float) -> None:
        super().__init__()
        self.inner, self.eos, self.bias = inner, eos, bias
        self.generation_config = inner.generation_config

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.inner.get_input_embeddings()

    def forward(self, **kwargs):
        out = self.inner(**kwargs)
        out.logits[..., self.eos] += self.bias
        return out


def test_generation_stops_at_eos(tokenizer):
    lm = _sharp_lm("llama", tokenizer)
    eager = LanguageModel(_EosBias(lm.model, tokenizer.eos_token_id, 1e4), tokenizer)
    gens = generate(eager, PROMPTS, max_new_tokens=8, batch_size=2)
    assert all(g.token_ids == () and g.eos_id == tokenizer.eos_token_id and g.stopped for g in gens)
    assert all(g.text == "" for g in gens)
    full = generate(eager, PROMPTS[:2], max_new_tokens=5, stop_at_eos=False)
    assert all(len(g.token_ids) == 5 and not g.stopped for g in full)
    never = LanguageModel(_EosBias(lm.model, tokenizer.eos_token_id, -1e4), tokenizer)
    assert all(len(g.token_ids) == 6 and g.eos_id is None for g in generate(never, PROMPTS, max_new_tokens=6))


def test_sampling_draws_what_transformers_generate_draws(tokenizer):
    """The oracle: `model.generate` with the same seed, left padding and settings samples the same tokens."""
    lm = _sharp_lm("llama", tokenizer)
    prompts = [lm.encode(p) for p in PROMPTS] + [[tokenizer.bos_token_id]] * 3
    for temperature, top_p in ((1.0, 1.0), (0.7, 0.9)):
        ours = generate(
            lm, prompts, max_new_tokens=10, do_sample=True, temperature=temperature, top_p=top_p, seed=5,
            batch_size=4,
        )  # fmt: skip
        theirs = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(5)
            for start in range(0, len(prompts), 4):
                chunk = prompts[start : start + 4]
                width = max(len(p) for p in chunk)
                ids = torch.tensor([[lm.pad_id] * (width - len(p)) + p for p in chunk])
                mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
                out = lm.model.generate(
                    input_ids=ids, attention_mask=mask, do_sample=True, temperature=temperature, top_p=top_p,
                    top_k=0, max_new_tokens=10, pad_token_id=lm.pad_id, eos_token_id=tokenizer.eos_token_id,
                )  # fmt: skip
                for row in out[:, width:].tolist():
                    theirs.append(
                        row[: row.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in row else row
                    )
        assert [list(g.token_ids) for g in ours] == theirs
        assert len({g.token_ids for g in ours}) > 2  # the samples differ from each other


def test_sampling_is_seeded_and_leaves_the_global_state_alone(tokenizer):
    lm = _sharp_lm("llama", tokenizer)
    state = torch.random.get_rng_state()
    a = generate(lm, PROMPTS, max_new_tokens=8, do_sample=True, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    b = generate(lm, PROMPTS, max_new_tokens=8, do_sample=True, seed=1)
    c = generate(lm, PROMPTS, max_new_tokens=8, do_sample=True, seed=2)
    assert [g.token_ids for g in a] == [g.token_ids for g in b] != [g.token_ids for g in c]


def test_generate_bad_arguments(tokenizer):
    lm = _sharp_lm("llama", tokenizer)
    with pytest.raises(TypeError, match="not a single string"):
        generate(lm, "one prompt")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="prompt 1 is empty"):
        generate(lm, ["fine", ""])
    with pytest.raises(ConfigError, match="prompt 0 is empty"):
        generate(lm, [[]])
    for bad in ({"max_new_tokens": 0}, {"batch_size": 0}, {"temperature": 0.0}, {"top_p": 0.0}):
        with pytest.raises(ConfigError):
            generate(lm, ["fine"], **bad)
    with pytest.raises(TypeError, match="LanguageModel"):
        generate(lm.model, ["fine"])  # type: ignore[arg-type]
    assert generate(lm, []) == []


def test_scoring_takes_the_handle_and_equals_the_model_level_scores(tokenizer):
    lm = _sharp_lm("qwen2", tokenizer)
    texts = [p + " red." for p in PROMPTS]
    via_handle = score_texts(lm, texts, batch_size=4, padding_side="left")
    ids = [lm.encode(t) for t in texts]
    via_model = score_token_ids(lm.model, ids, batch_size=4, padding_side="left", pad_token_id=5)
    for a, b in zip(via_handle.token_logprobs, via_model.token_logprobs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(score_token_ids(lm, ids).sum_logprob, via_handle.sum_logprob, atol=1e-4)


def test_every_bad_model_folder_of_the_test_helper_is_refused_by_name(tokenizer, tmp_path):
    from reprokit.testing import BAD_MODELS, write_bad_models

    folders = write_bad_models(tmp_path, tokenizer)
    assert set(folders) == {*BAD_MODELS, "good"}
    assert load_lm(folders["good"], device="cpu").name == str(folders["good"])
    for kind, fragment in BAD_MODELS.items():
        with pytest.raises(ModelLoadError, match=re.escape(fragment)):
            load_lm(folders[kind], device="cpu")


def test_launched_ranks_get_their_own_gpu(monkeypatch) -> None:
    """Under accelerate launch / torchrun a bare 'cuda' (or 'auto') is the rank's own GPU, not GPU 0."""
    import torch

    from reprokit.lm import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("cuda") == torch.device("cuda")
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("cuda") == resolve_device("auto") == torch.device("cuda", 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # an explicit index is kept
