"""Who ends generation, segment bookkeeping, shares, gamma extremes, sampling."""

from __future__ import annotations

import pytest
import torch

from nudging import Nudger, NudgingConfig, nudge_fast, nudge_reference
from reprokit.lm import LanguageModel


class Biased(torch.nn.Module):
    """Wrap a causal LM and add a fixed bias to its logits (to script EOS behaviour)."""

    def __init__(self, inner: torch.nn.Module, token: int, bias: float) -> None:
        super().__init__()
        self.inner = inner
        self.generation_config = inner.generation_config
        self.token, self.bias = token, bias

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.inner.get_input_embeddings()

    def forward(self, **kwargs):
        out = self.inner(**kwargs)
        out.logits[..., self.token] += self.bias
        return out


@pytest.mark.parametrize("impl", [nudge_fast, nudge_reference])
def test_nudger_eos_ends_generation(zoo, impl) -> None:
    tok = zoo.nudger_cross.tokenizer
    nudger = LanguageModel(Biased(zoo.nudger_cross.model, tok.eos_token_id, 1e4), tok)
    res = impl(zoo.base, nudger, zoo.questions[0], NudgingConfig(max_new_tokens=40))
    assert res.stop_reason == "nudging_model_stop"
    assert res.text == "" and res.n_rounds == 1


@pytest.mark.parametrize("impl", [nudge_fast, nudge_reference])
def test_base_eos_only_hands_control_back(zoo, impl) -> None:
    btok = zoo.base.tokenizer
    base = Biased(zoo.base.model, btok.eos_token_id, 1e4)  # the base model always wants to stop, confidently
    ntok = zoo.nudger_cross.tokenizer
    endless = Biased(zoo.nudger_cross.model, ntok.eos_token_id, -1e4)  # the nudging model never stops
    args = (LanguageModel(base, btok), LanguageModel(endless, ntok), zoo.questions[1])
    res = impl(*args, NudgingConfig(max_new_tokens=40, lookahead_tokens=3))
    assert res.stop_reason in ("length", "repeated_nudging_words", "round")
    assert res.stop_reason != "base_model_stop"
    assert all(s.source == "nudger" for s in res.segments)  # the base never wrote, yet generation went on
    assert res.n_rounds >= 2 or res.stop_reason == "nudging_model_stop"
    stopped = impl(*args, NudgingConfig(max_new_tokens=40, lookahead_tokens=3, base_eos_hands_back=False))
    assert stopped.stop_reason == "base_model_stop"


def test_trained_nudger_ends_and_segments_add_up(zoo) -> None:
    nudger = Nudger(
        zoo.base,
        zoo.nudger_cross,
        NudgingConfig(gamma=0.3, max_new_tokens=96),
    )
    for q in zoo.questions:
        res = nudger(q)
        assert "".join(s.text for s in res.segments) == res.text
        assert all(s.text for s in res.segments)
        assert all(a.source != b.source for a, b in zip(res.segments, res.segments[1:], strict=False))
        assert 0.0 <= res.nudged_word_share <= 1.0
        assert 0.0 <= res.nudged_token_share <= 1.0
        assert res.segments[0].source == "nudger"  # every answer opens with the nudging model's look-ahead
        assert res.stop_reason in ("nudging_model_stop", "length", "repeated_nudging_words", "round")
        marked = res.marked()
        assert marked.replace("[", "").replace("]", "") == res.text.replace("[", "").replace("]", "")
    res = nudger(zoo.questions[0])
    assert res.stop_reason == "nudging_model_stop", res.text


def test_gamma_extremes(zoo) -> None:
    ntok = zoo.nudger_cross.tokenizer
    endless = Biased(zoo.nudger_cross.model, ntok.eos_token_id, -1e4)
    args = (zoo.base, LanguageModel(endless, ntok), zoo.questions[1])
    low = nudge_fast(*args, NudgingConfig(gamma=0.0, max_new_tokens=64))
    # exhaustive stripping: the official search leaves a repeated tail that the base model then owns
    high = nudge_fast(*args, NudgingConfig(gamma=1.0, max_new_tokens=64, repetition_search="exhaustive"))
    assert high.nudged_token_share > 0.8
    assert low.nudged_token_share < high.nudged_token_share
    # gamma 0: after the first nudge the base model is always confident, so it writes until its EOS/length
    assert low.segments[1].source == "base"


def test_sampling_is_seeded(zoo) -> None:
    args = (
        zoo.base,
        zoo.nudger_cross,
        zoo.questions[1],
    )
    cfg = NudgingConfig(do_sample=True, temperature=1.0, top_p=0.9, seed=7, max_new_tokens=40)
    a, b = nudge_fast(*args, cfg), nudge_fast(*args, cfg)
    assert a.text == b.text
    assert "".join(s.text for s in a.segments) == a.text


def test_batch_generation_matches_single(zoo) -> None:
    nudger = Nudger(
        zoo.base,
        zoo.nudger_same,
        NudgingConfig(max_new_tokens=32),
    )
    batch = nudger.generate_batch(zoo.questions[:2])
    assert [r.text for r in batch] == [nudger(q).text for q in zoo.questions[:2]]
    with pytest.raises(TypeError):
        nudger.generate_batch("one question")
