"""Perplexity and lm-eval-style multiple choice against direct computations on a tiny model."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from efficientllm.evaluation import MCItem, encode_pair, lm_eval_tasks, multiple_choice, perplexity
from reprokit.errors import ConfigError, DataError
from reprokit.lm import LanguageModel
from reprokit.tokenizer import train_tokenizer

CORPUS = [
    f"{name} works as a {job} in {city}. The capital of {country} is {city}."
    for name in ("Alice", "Bob", "Carla", "Dmitri")
    for job in ("baker", "pilot", "nurse")
    for city, country in (("Paris", "France"), ("Oslo", "Norway"), ("Riga", "Latvia"))
]
ITEMS = [
    MCItem("The capital of France is", ("Paris", "Oslo", "a large city somewhere in Latvia"), 0),
    MCItem("Alice works as a", ("baker in Paris", "pilot", "nurse"), 1),
    MCItem("Bob works as a ", ("nurse", "pilot in Riga today"), 0),  # trailing space moves to the choice
    MCItem("Question: is Oslo in Norway?\nAnswer:", ("yes", "no"), 0),
    MCItem("", ("Paris is the capital of France.", "Oslo"), 1),  # empty context: BOS is the context
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(CORPUS, vocab_size=300)


@pytest.fixture
def lm(tiny, tokenizer) -> LanguageModel:
    return LanguageModel(tiny("llama", vocab_size=len(tokenizer), seed=3), tokenizer)


@torch.no_grad()
def _continuation_logprob(model, ids: list[int], n_context: int) -> float:
    """Sum of log p(token) over ids[n_context:], from one unbatched forward pass."""
    logits = model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[t - 1, ids[t]] for t in range(n_context, len(ids))))


def test_encode_pair_splits_the_joint_tokenization(lm):
    tok = lm.tokenizer
    for context, continuation in (("The capital of France is", " Paris"), ("Bob works as a ", " nurse")):
        ctx, cont = encode_pair(lm, context, continuation)
        assert ctx + cont == tok(context + continuation, add_special_tokens=False)["input_ids"]
        assert ctx == tok(context.rstrip(), add_special_tokens=False)["input_ids"]
        assert cont
    ctx, cont = encode_pair(lm, "", " Oslo")
    assert ctx == [tok.bos_token_id]
    assert cont == tok(" Oslo", add_special_tokens=False)["input_ids"]


def test_multiple_choice_equals_direct_loglikelihoods(lm):
    tok = lm.tokenizer
    result = multiple_choice(lm, ITEMS, batch_size=3)
    assert result.n == len(ITEMS)
    preds, preds_norm = [], []
    for item, score in zip(ITEMS, result.per_item, strict=True):
        expected = []
        for choice in item.choices:
            context = item.context.rstrip()
            if item.context:
                ctx = tok(context, add_special_tokens=False)["input_ids"]
                whole = tok(item.context + " " + choice, add_special_tokens=False)["input_ids"]
            else:
                ctx = [tok.bos_token_id]
                whole = ctx + tok(" " + choice, add_special_tokens=False)["input_ids"]
            expected.append(_continuation_logprob(lm.model, whole, len(ctx)))
        np.testing.assert_allclose(score.loglikelihoods, expected, rtol=1e-5, atol=1e-4)
        lengths = np.array([len(c) for c in item.choices], dtype=float)
        assert score.pred == int(np.argmax(expected))
        assert score.pred_norm == int(np.argmax(np.array(expected) / lengths))
        preds.append(score.pred == item.answer)
        preds_norm.append(score.pred_norm == item.answer)
    assert result.acc == pytest.approx(np.mean(preds))
    assert result.acc_norm == pytest.approx(np.mean(preds_norm))
    # the items are built so that length normalisation changes some predictions: acc != acc_norm is tested
    assert any(s.pred != s.pred_norm for s in result.per_item)


def test_multiple_choice_is_batch_independent(lm):
    one = multiple_choice(lm, ITEMS, batch_size=1)
    many = multiple_choice(lm, ITEMS, batch_size=16)
    for a, b in zip(one.per_item, many.per_item, strict=True):
        np.testing.assert_allclose(a.loglikelihoods, b.loglikelihoods, rtol=1e-5, atol=1e-4)


def test_multiple_choice_left_truncates_like_lm_eval(lm):
    item = MCItem("Alice works as a baker in Paris. Bob works as a", ("pilot", "nurse"), 0)
    tok = lm.tokenizer
    max_length = 6
    result = multiple_choice(lm, [item], max_length=max_length)
    for choice, got in zip(item.choices, result.per_item[0].loglikelihoods, strict=True):
        ctx = tok(item.context, add_special_tokens=False)["input_ids"]
        whole = tok(item.context + " " + choice, add_special_tokens=False)["input_ids"]
        n_cont = len(whole) - len(ctx)
        kept = whole[-(max_length + 1) :]
        assert got == pytest.approx(_continuation_logprob(lm.model, kept, len(kept) - n_cont), abs=1e-4)


def test_perplexity_equals_exp_mean_nll(lm):
    texts = [CORPUS[0], CORPUS[5] + " " + CORPUS[7], "Oslo."]
    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([lm.tokenizer(text)["input_ids"]])  # with BOS, as perplexity encodes
            loss = lm.model(ids, labels=ids).loss  # mean NLL over the ids.shape[1] - 1 predicted tokens
            total += float(loss) * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    assert perplexity(lm, texts, batch_size=2) == pytest.approx(math.exp(total / count), rel=1e-5)


def test_perplexity_windows_score_every_token_once(lm):
    text = CORPUS[1] + " " + CORPUS[2]
    ids = lm.tokenizer(text)["input_ids"]
    width = 5
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, width - 1):
        window = ids[start : start + width]
        total += _continuation_logprob(lm.model, window, 1)
        count += len(window) - 1
    assert count == len(ids) - 1
    windowed = perplexity(lm, [text], max_length=width)
    assert windowed == pytest.approx(math.exp(-total / count), rel=1e-5)
    assert perplexity(lm, [text], max_length=len(ids)) == pytest.approx(perplexity(lm, [text]), rel=1e-6)
    assert windowed != pytest.approx(perplexity(lm, [text]), rel=1e-3)


def test_bad_inputs_are_refused(lm):
    with pytest.raises(DataError, match="not an index"):
        MCItem("Q", ("a", "b"), 2)
    with pytest.raises(DataError, match="at least two choices"):
        MCItem("Q", ("a",), 0)
    with pytest.raises(DataError, match="empty"):
        perplexity(lm, ["fine", ""])
    with pytest.raises(ConfigError, match="max_length"):
        perplexity(lm, ["fine"], max_length=1)


def test_lm_eval_tasks_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # makes `import lm_eval` fail, installed or not
    with pytest.raises(ConfigError, match="pip install lm-eval"):
        lm_eval_tasks(tmp_path, ["arc_easy"], batch_size=1, device="cpu")
