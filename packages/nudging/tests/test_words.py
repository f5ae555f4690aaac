from __future__ import annotations

import pytest

from nudging.words import count_words, join_words, split_words, strip_trailing_repetitions

CASES = [
    "",
    " ",
    "word",
    " Sure, I'd",
    "  two  spaces  here ",
    "a\nb c\n\nd",
    "\n start",
    "trailing ",
    "x" * 40,
]


@pytest.mark.parametrize("text", CASES)
def test_split_join_is_lossless(text: str) -> None:
    lead, words = split_words(text)
    assert join_words(lead, words) == text
    assert lead.strip(" ") == ""
    if text.strip():
        assert words[0] != "" or text.strip(" ") == ""


def test_split_keeps_newlines_inside_words() -> None:
    assert split_words(" steps.\nThe answer")[1] == ["steps.\nThe", "answer"]


def test_count_words_skips_empty() -> None:
    assert count_words("  a  b ") == 2
    assert count_words("") == 0


def test_strip_trailing_repetitions() -> None:
    unit = "The answer is 7. Question: again? "
    assert strip_trailing_repetitions("Start. " + unit * 3) == "Start. " + unit
    assert strip_trailing_repetitions("short short short ", 30) == "short short short "
    assert strip_trailing_repetitions("abc", 0) == "abc"


def test_repeated_nudge_stop_counts_identical_nudges_in_a_row():
    from nudging.words import is_repeated_nudge

    assert not is_repeated_nudge([], " Sure", 3)
    assert not is_repeated_nudge([" Sure"], " Sure", 3)  # this would be the 2nd in a row
    assert is_repeated_nudge([" Sure", " Sure"], " Sure", 3)  # the 3rd: stop
    assert not is_repeated_nudge([" Sure", " Ok"], " Sure", 3)
    assert not is_repeated_nudge([" Sure"] * 5, " Sure", 1)  # a limit below 2 disables the stop
