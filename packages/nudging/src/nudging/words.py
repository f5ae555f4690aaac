"""Lossless word splitting as in the official code: split on single spaces, keep leading spaces."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def split_words(text: str) -> tuple[str, list[str]]:
    """(leading spaces, words) with `join_words(*split_words(t)) == t` for every string.

    Words are separated by single spaces (newlines stay inside words); runs of spaces give empty words.
    """
    stripped = text.lstrip(" ")
    return text[: len(text) - len(stripped)], stripped.split(" ")


def join_words(lead: str, words: list[str] | tuple[str, ...]) -> str:
    """Inverse of `split_words`: the leading spaces, then the words joined by single spaces."""
    return lead + " ".join(words)


def count_words(text: str) -> int:
    """Number of non-empty space-separated words (the official nudged-word count)."""
    return sum(1 for w in text.split(" ") if w.strip())


def strip_trailing_repetitions(text: str, min_chars: int = 30) -> str:
    """Repeatedly drop a trailing suffix (>= `min_chars` chars) immediately repeating the text before it."""
    if min_chars < 1:
        return text
    changed = True
    while changed:
        changed = False
        n = len(text)
        for size in range(min_chars, n // 2 + 1):
            if text[n - size :] == text[n - 2 * size : n - size]:
                text = text[: n - size]
                changed = True
                break
    return text


def is_repeated_nudge(recent: list[str], nudge: str, limit: int) -> bool:
    """Whether `nudge` would be the `limit`-th identical nudge in a row (the official repetition stop)."""
    if limit < 2 or len(recent) < limit - 1:
        return False
    return all(r == nudge for r in recent[len(recent) - limit + 1 :])
