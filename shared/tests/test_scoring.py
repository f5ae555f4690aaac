from __future__ import annotations

import numpy as np
import pytest
import torch

from reprokit import zoo
from reprokit.lm import LanguageModel
from reprokit.scoring import score_texts, score_token_ids

TEXTS = ["Item 3 is red.", "Item 44 is blue and weighs 9 kg. It was made in Oslo.", "Item", "Item 7 is red."]
PROMPTS = ["Item", "Item 44 is", "", "Item 7 is red"]


def _sharp_model(arch: str, tokenizer):
    """A random model with large weights, so its predictions depend strongly on position and context."""
    model = zoo.build_model(f"{arch}-0.3m", tokenizer, seed=0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.15)
    return model.eval()


def _sharp_lm(arch: str, tokenizer) -> LanguageModel:
    return LanguageModel(_sharp_model(arch, tokenizer), tokenizer)


@pytest.mark.parametrize("arch", zoo.ARCHITECTURES)
@pytest.mark.parametrize("side", ["left", "right"])
def test_batched_equals_one_by_one(tokenizer, arch, side):
    lm = _sharp_lm(arch, tokenizer)
    for prompts in (None, PROMPTS):
        single = [
            score_texts(lm, [t], prompts=None if prompts is None else [prompts[i]]).token_logprobs[0]
            for i, t in enumerate(TEXTS)
        ]
        batched = score_texts(lm, TEXTS, prompts=prompts, batch_size=4, padding_side=side)
        for a, b in zip(batched.token_logprobs, single, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-4)


def test_padding_would_leak_without_the_mask(tokenizer):
    """Guards the test above: the model is context-sensitive, so scoring pad tokens unmasked would show."""
    model = _sharp_model("llama", tokenizer)
    short, long = tokenizer(TEXTS[0]).input_ids, tokenizer(TEXTS[1]).input_ids
    padded = torch.full((1, len(long)), tokenizer.pad_token_id)
    padded[0, len(long) - len(short) :] = torch.tensor(short)
    with torch.no_grad():
        unmasked = model(input_ids=padded).logits[0, -1]
        alone = model(input_ids=torch.tensor([short])).logits[0, -1]
    assert (unmasked - alone).abs().max() > 1e-2


def test_prompt_is_excluded_and_sums_add_up(tokenizer):
    lm = _sharp_lm("llama", tokenizer)
    full = score_texts(lm, ["Item 7 is red."])
    cont = score_texts(lm, [" is red."], prompts=["Item 7"])
    n_prompt = len(tokenizer("Item 7").input_ids)
    n_cont = len(tokenizer(" is red.", add_special_tokens=False).input_ids)
    assert cont.n_tokens[0] == n_cont
    # the continuation's tokens are the tail of the full sequence when the tokenization splits there
    if (
        tokenizer("Item 7 is red.").input_ids
        == tokenizer("Item 7").input_ids + tokenizer(" is red.", add_special_tokens=False).input_ids
    ):
        np.testing.assert_allclose(full.token_logprobs[0][n_prompt - 1 :], cont.token_logprobs[0], atol=1e-5)
    assert full.mean_nll[0] == pytest.approx(-full.sum_logprob[0] / full.n_tokens[0])
    assert (full.token_logprobs[0] <= 0).all()


def test_logprobs_match_a_plain_forward(tokenizer):
    model = _sharp_model("qwen2", tokenizer)
    ids = tokenizer(TEXTS[1]).input_ids
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    expected = logp[:-1].gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1).numpy()
    got = score_token_ids(model, [ids]).token_logprobs[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_no_grad_and_mode_restored(tokenizer):
    model = _sharp_model("llama", tokenizer).train()
    score_texts(LanguageModel(model, tokenizer), TEXTS[:2])
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_bad_inputs(tokenizer):
    model = _sharp_model("llama", tokenizer)
    lm = LanguageModel(model, tokenizer)
    with pytest.raises(ValueError, match="empty"):
        score_texts(lm, [""])
    with pytest.raises(ValueError, match="prompts for"):
        score_texts(lm, ["a", "b"], prompts=["x"])
    with pytest.raises(TypeError, match=r"LanguageModel\(model, tokenizer\)"):
        score_texts(model, ["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="padding_side"):
        score_token_ids(model, [[1, 2]], padding_side="middle")  # type: ignore[arg-type]
    assert len(score_token_ids(model, [])) == 0


def test_bfloat16_model_is_scored_in_float32(tokenizer):
    lm = _sharp_lm("llama", tokenizer)
    ref = score_texts(lm, TEXTS).sum_logprob
    lm.model.to(torch.bfloat16)
    got = score_texts(lm, TEXTS).sum_logprob
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=0.1, atol=0.5)
