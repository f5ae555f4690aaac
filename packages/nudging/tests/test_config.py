from __future__ import annotations

import pytest

from nudging import NudgingConfig


@pytest.mark.parametrize("gamma", [-0.1, 1.01, 2, float("nan"), True])
def test_gamma_outside_unit_interval_raises(gamma: float) -> None:
    with pytest.raises(ValueError, match="gamma"):
        NudgingConfig(gamma=gamma)


@pytest.mark.parametrize("gamma", [0, 0.0, 0.3, 1.0])
def test_gamma_bounds_accepted(gamma: float) -> None:
    assert NudgingConfig(gamma=gamma).gamma == gamma


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lookahead_tokens": 0},
        {"max_new_tokens": 0},
        {"max_rounds": -1},
        {"repeat_nudge_limit": 1},
        {"temperature": 0},
        {"top_p": 0},
        {"base_chunk_tokens": 1.5},
        {"lookup_draft_tokens": -1},
        {"verify_lookahead": "auto"},
    ],
)
def test_invalid_values_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="NudgingConfig"):
        NudgingConfig(**kwargs)


def test_defaults_follow_official_code() -> None:
    c = NudgingConfig()
    assert (c.gamma, c.lookahead_tokens, c.base_chunk_tokens, c.max_new_tokens, c.max_rounds) == (
        0.3,
        16,
        16,
        512,
        150,
    )


def test_lookup_guess_copies_what_followed_the_latest_tokens() -> None:
    from nudging.program import lookup_guess

    ids = [5, 6, 7, 8, 9, 1, 5, 6, 7]
    assert lookup_guess(ids, 3) == [8, 9, 1]  # after the earlier "5 6 7"
    assert lookup_guess(ids, 1) == [8]
    assert lookup_guess([1, 2, 3, 9, 3], 4) == [9, 3]  # no 3-gram or 2-gram match: the 1-gram "3"
    assert lookup_guess([1, 2, 3], 4) == [] and lookup_guess(ids, 0) == []
