"""A (base, nudging) model pair is checked once, where it enters, not again for every question."""

from __future__ import annotations

import pytest

import nudging._checks as checks
import nudging.nudger as nudger_module
from nudging import Nudger, NudgingConfig, nudge_fast
from nudging.lockstep import nudge_batch


@pytest.fixture
def pair_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of `check_pair`, wherever it is made from."""
    calls: list[str] = []
    real = checks.check_pair

    def counting(*args: object, **kwargs: object) -> None:
        calls.append("check")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(checks, "check_pair", counting)
    monkeypatch.setattr(nudger_module, "check_pair", counting)
    return calls


def test_nudger_checks_the_pair_at_construction_only(zoo, pair_checks: list[str]) -> None:
    nudger = Nudger(zoo.base, zoo.nudger_same, NudgingConfig(max_new_tokens=8))
    assert pair_checks == ["check"]
    single = nudger(zoo.questions[0])
    batch = nudger.generate_batch(zoo.questions[:3], batch_size=2)
    Nudger(zoo.base, zoo.nudger_same, implementation="reference").generate_batch(zoo.questions[:1])
    assert pair_checks == ["check", "check"]
    assert batch[0].text == single.text


def test_one_call_functions_check_once_per_call(zoo, pair_checks: list[str]) -> None:
    config = NudgingConfig(max_new_tokens=8)
    nudge_fast(zoo.base, zoo.nudger_same, zoo.questions[0], config)
    assert pair_checks == ["check"]
    nudge_batch(zoo.base, zoo.nudger_same, zoo.questions[:3], config, batch_size=2)
    assert pair_checks == ["check", "check"]


def test_prompts_are_still_checked_on_every_call(zoo) -> None:
    nudger = Nudger(zoo.base, zoo.nudger_same, NudgingConfig(max_new_tokens=8))
    with pytest.raises(ValueError, match="empty"):
        nudger.generate_batch([zoo.questions[0], ""])
    with pytest.raises(TypeError, match="NudgingConfig"):
        nudger(zoo.questions[0], {"gamma": 0.3})  # type: ignore[arg-type]
