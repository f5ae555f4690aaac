"""Bad inputs raise clear errors that name the fix."""

from __future__ import annotations

import copy

import pytest

from nudging import Nudger, NudgingConfig, NudgingPrompt, nudge_fast, nudge_reference
from reprokit.lm import LanguageModel


@pytest.mark.parametrize("impl", [nudge_fast, nudge_reference])
@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt(zoo, impl, prompt: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        impl(zoo.base, zoo.nudger_same, prompt)


def test_empty_prompt_pair(zoo) -> None:
    with pytest.raises(ValueError, match="empty"):
        nudge_fast(
            zoo.base,
            zoo.nudger_same,
            NudgingPrompt("", "x"),
        )


def test_nudger_without_chat_template(zoo) -> None:
    tok = copy.deepcopy(zoo.nudger_same.tokenizer)
    tok.chat_template = None
    with pytest.raises(ValueError, match=r"chat template.*plain_nudger_prompt=True"):
        Nudger(zoo.base, LanguageModel(zoo.nudger_same.model, tok))
    with pytest.raises(ValueError, match="chat template"):
        nudge_fast(zoo.base, LanguageModel(zoo.nudger_same.model, tok), "Question?")
    res = Nudger(
        zoo.base,
        LanguageModel(zoo.nudger_same.model, tok),
        NudgingConfig(max_new_tokens=16),
        plain_nudger_prompt=True,
    )(zoo.questions[0])
    assert res.segments[0].source == "nudger"


def test_models_on_different_devices(zoo) -> None:
    meta = copy.deepcopy(zoo.nudger_same.model).to("meta")
    with pytest.raises(ValueError, match="meta"):
        Nudger(zoo.base, LanguageModel(meta, zoo.nudger_same.tokenizer))


def test_mixed_devices_message(zoo, monkeypatch) -> None:
    import torch

    import nudging._checks as checks

    devices = iter([torch.device("cpu"), torch.device("cpu"), torch.device("cpu"), torch.device("cuda:0")])
    monkeypatch.setattr(checks, "input_device", lambda model: next(devices))
    with pytest.raises(
        ValueError, match=r"base model is on cpu but the nudging model is on cuda:0.*allow_mixed_devices"
    ):
        checks.check_pair(zoo.base, zoo.nudger_same)


def test_bad_types(zoo) -> None:
    with pytest.raises(TypeError):
        Nudger(
            zoo.base,
            zoo.nudger_same,
            {"gamma": 0.3},
        )
    with pytest.raises(ValueError, match="implementation"):
        Nudger(
            zoo.base,
            zoo.nudger_same,
            implementation="turbo",
        )
    with pytest.raises(TypeError):
        nudge_fast(zoo.base, zoo.nudger_same, 42)


def test_models_enter_as_handles(zoo) -> None:
    """The old (model, tokenizer, model, tokenizer) call says how to make the handles."""
    with pytest.raises(TypeError, match=r"base model must be a reprokit\.lm\.LanguageModel.*LanguageModel\("):
        Nudger(zoo.base.model, zoo.base.tokenizer)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\(model, tokenizer\) pair"):
        nudge_fast(zoo.base, (zoo.nudger_same.model, zoo.nudger_same.tokenizer), "Question?")  # type: ignore[arg-type]
