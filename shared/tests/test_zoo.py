from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reprokit import zoo
from reprokit.zoo import Example, TrainConfig

CFG = TrainConfig(epochs=2, batch_size=16, lr=3e-3, warmup_steps=2, seed=3)


@pytest.fixture(scope="module")
def examples(tokenizer, corpus):
    return zoo.encode_texts(tokenizer, corpus)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_diff(a, b) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize("arch", zoo.ARCHITECTURES)
def test_every_architecture_builds_at_every_size(tokenizer, arch):
    counts = [zoo.count_parameters(zoo.build_model(f"{arch}-{s}", tokenizer)) for s in ("0.3m", "1m", "3m")]
    assert counts == sorted(counts)
    assert 0.1e6 < counts[0] < 0.5e6
    assert 2.0e6 < counts[2] < 4.5e6


def test_unknown_recipe_suggests_close_names(tokenizer):
    with pytest.raises(KeyError, match="llama-3m"):
        zoo.get_recipe("lama-3m")


def test_same_seed_same_weights_and_different_seed_differs(tokenizer, examples):
    runs = []
    for init_seed in (0, 0, 1):
        model = zoo.build_model("llama-0.3m", tokenizer, seed=init_seed)
        zoo.train(model, examples, CFG)
        runs.append(_weights(model))
    assert _max_diff(runs[0], runs[1]) == 0.0
    assert _max_diff(runs[0], runs[2]) > 1e-3


def test_training_reduces_loss_and_records_the_order(tokenizer, examples):
    model = zoo.build_model("gpt_neox-0.3m", tokenizer)
    result = zoo.train(model, examples, CFG)
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5]) - 1.0
    n = len(examples)
    assert len(result.order) == 2 * n
    for epoch in range(2):  # each epoch is a permutation of all examples
        assert sorted(result.order[epoch * n : (epoch + 1) * n]) == list(range(n))
    assert result.steps[0] == 0 and result.steps[-1] == len(result.losses) - 1


def test_explicit_order_is_used(tokenizer, examples):
    order = np.arange(len(examples))[::-1].copy()
    model = zoo.build_model("llama-0.3m", tokenizer)
    result = zoo.train(model, examples, CFG, order=order)
    np.testing.assert_array_equal(result.order, order)
    with pytest.raises(ValueError, match="outside"):
        zoo.train(model, examples, CFG, order=np.array([0, len(examples)]))


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_resume_from_checkpoint_reaches_identical_weights(tokenizer, examples, tmp_path, arch):
    full = zoo.build_model(f"{arch}-0.3m", tokenizer, seed=5)
    zoo.train(full, examples, CFG, checkpoint_dir=tmp_path, checkpoint_steps=[7])
    resumed = zoo.build_model(f"{arch}-0.3m", tokenizer, seed=123)  # different init, overwritten by resume
    result = zoo.train(resumed, examples, CFG, resume_from=tmp_path / "step-7")
    assert _max_diff(_weights(full), _weights(resumed)) == 0.0
    assert len(result.losses) == int(np.ceil(2 * len(examples) / CFG.batch_size))
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "step-7" / "model")
    assert saved.config.model_type == full.config.model_type


def test_resume_with_a_new_order_for_the_remaining_steps(tokenizer, examples, tmp_path):
    model = zoo.build_model("llama-0.3m", tokenizer)
    first = zoo.train(model, examples, CFG, checkpoint_dir=tmp_path, checkpoint_steps=[10])
    cut = 10 * CFG.batch_size
    rng = np.random.default_rng(0)
    new_order = np.concatenate([first.order[:cut], rng.permutation(first.order[cut:])])
    other = zoo.build_model("llama-0.3m", tokenizer)
    again = zoo.train(other, examples, CFG, order=new_order, resume_from=tmp_path / "step-10")
    assert again.losses[:10] == first.losses[:10]
    assert _max_diff(_weights(model), _weights(other)) > 0


def test_train_cached_hits_the_cache_and_loads_with_from_pretrained(
    tokenizer, examples, tmp_path, monkeypatch
):
    first = zoo.train_cached("llama-0.3m", tokenizer, examples, CFG, cache_dir=tmp_path, checkpoint_steps=[4])
    assert (first.path / "model.safetensors").exists()
    assert not list(first.path.glob("*.bin"))
    assert first.checkpoint(4).exists()
    with pytest.raises(FileNotFoundError, match="saved"):
        first.checkpoint(5)

    def boom(*args, **kwargs):
        raise AssertionError("the cache should have been hit")

    monkeypatch.setattr(zoo, "train", boom)
    second = zoo.train_cached(
        "llama-0.3m", tokenizer, examples, CFG, cache_dir=tmp_path, checkpoint_steps=[4]
    )
    assert second.path == first.path
    np.testing.assert_array_equal(second.order, first.order)
    assert second.losses == first.losses
    model = AutoModelForCausalLM.from_pretrained(first.path)
    tok = AutoTokenizer.from_pretrained(first.path)
    assert tok("Item 1").input_ids == tokenizer("Item 1").input_ids
    assert model.config.vocab_size == len(tokenizer)
    info = json.loads((first.path / "training.json").read_text())
    assert info["key"] == first.key and info["n_examples"] == len(examples)
    # a different config is a different cache entry
    monkeypatch.undo()
    other = zoo.train_cached("llama-0.3m", tokenizer, examples[:20], CFG, cache_dir=tmp_path)
    assert other.key != first.key


def test_failed_training_leaves_no_partial_folder(tokenizer, examples, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(zoo, "train", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        zoo.train_cached("llama-0.3m", tokenizer, examples, CFG, cache_dir=tmp_path)
    assert list((tmp_path / "zoo").iterdir()) == []


def test_finetune_full_and_lora_from_a_cached_model(tokenizer, examples, tmp_path):
    base = zoo.train_cached("llama-0.3m", tokenizer, examples, CFG, cache_dir=tmp_path)
    chats = zoo.encode_chats(
        tokenizer,
        [[{"role": "user", "content": "Item 1?"}, {"role": "assistant", "content": "It is red."}]] * 8,
    )
    ft_cfg = TrainConfig(epochs=1, batch_size=4, lr=1e-3, warmup_steps=0)
    full = zoo.train_cached(base, tokenizer, chats, ft_cfg, cache_dir=tmp_path, name="ft")
    lora = zoo.train_cached(
        base,
        tokenizer,
        chats,
        TrainConfig(epochs=1, batch_size=4, lr=1e-2, lora_r=4),
        cache_dir=tmp_path,
        name="lora",
    )
    base_w = _weights(base.load().model)
    for trained in (full, lora):
        w = _weights(trained.load().model)
        assert set(w) == set(base_w)  # LoRA is merged: a plain model of the same shape
        assert _max_diff(w, base_w) > 0
    assert full.info["key_inputs"]["init"] == {"model": base.key}


def test_encode_chats_masks_the_prompt(tokenizer):
    (ex,) = zoo.encode_chats(
        tokenizer, [[{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]]
    )
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q?"}], add_generation_prompt=True, tokenize=False
    )
    assert tokenizer.decode(ex.input_ids[: ex.prompt_length]) == prompt
    assert tokenizer.decode(ex.input_ids[ex.prompt_length :]) == "A.</s>\n"
    batch = zoo._collate([ex, Example((1, 5, 6), 0)], pad_id=0)
    assert (batch["labels"][0, : ex.prompt_length] == -100).all()
    assert batch["labels"][1, 3:].eq(-100).all()
    assert batch["attention_mask"][1].tolist()[:3] == [1, 1, 1]


def test_encode_stream_packs_texts_without_eos(tokenizer):
    texts = ["Ada Lee lives in Brenton.", "Question: Where does Ada Lee live?\nThe answer is Brenton."]
    blocks = zoo.encode_stream(tokenizer, texts * 10, block_size=16)
    assert all(b.input_ids[0] == tokenizer.bos_token_id and len(b.input_ids) <= 16 for b in blocks)
    assert all(len(b.input_ids) == 16 and b.prompt_length == 0 for b in blocks[:-1])
    stream = [t for b in blocks for t in b.input_ids[1:]]
    assert tokenizer.eos_token_id not in stream
    text = tokenizer.decode(stream)
    assert text.count("Brenton.\n\nQuestion:") == 10 and text.count("Brenton.\n\nAda Lee") == 9
    with pytest.raises(ValueError, match="no texts"):
        zoo.encode_stream(tokenizer, [])
    with pytest.raises(ValueError, match="block_size must be at least 2"):
        zoo.encode_stream(tokenizer, texts, block_size=1)


def test_bad_inputs_are_clear_errors(tokenizer, examples):
    with pytest.raises(ValueError, match="no training examples"):
        zoo.train(zoo.build_model("llama-0.3m", tokenizer), [], CFG)
    with pytest.raises(ValueError, match="no texts"):
        zoo.encode_texts(tokenizer, [])
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    plain = zoo.encode_texts(tokenizer, ["x"])
    assert plain[0].prompt_length == 0
    no_template = type(tokenizer)(tokenizer_object=tokenizer.backend_tokenizer)
    with pytest.raises(ValueError, match="no chat template"):
        zoo.encode_chats(no_template, [[{"role": "assistant", "content": "A."}]])


def test_nan_loss_is_a_clear_error(tokenizer, examples):
    model = zoo.build_model("llama-0.3m", tokenizer)

    class NaNLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model
            self.config = model.config

        def forward(self, **batch):
            out = self.inner(**batch)
            out.loss = out.loss * float("nan")
            return out

    with pytest.raises(FloatingPointError, match=r"lower TrainConfig\.lr"):
        zoo.train(NaNLoss(), examples, CFG)


def test_training_logs_each_epoch_with_loss_and_throughput(caplog) -> None:
    import logging

    from reprokit.tokenizer import train_tokenizer

    texts = [f"document {i} about the number {i * 7}" for i in range(24)]
    tok = train_tokenizer(texts, vocab_size=300)
    model = zoo.build_model("llama-0.3m", tok)
    with caplog.at_level(logging.INFO, logger="reprokit.zoo"):
        zoo.train(model, zoo.encode_texts(tok, texts), zoo.TrainConfig(epochs=2, batch_size=8), desc="demo")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("demo: epoch")]
    assert len(lines) == 2 and "epoch 1 of 2 (step 3/6)" in lines[0] and "tokens/s" in lines[1]
