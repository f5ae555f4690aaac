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


def is_repeated_chunk(piece: str, text: str, min_words: int) -> bool:
    """The official `repetition_check`: `piece` has `min_words` or more space-separated parts and already
    occurs in `text`. Parts are counted as `piece.split(" ")` does (empty ones too), as the official code
    counts them, so " a b c d e" has 6."""
    return min_words > 0 and len(piece.split(" ")) >= min_words and piece in text


def strip_trailing_repetitions(text: str, min_chars: int = 30) -> str:
    """Repeatedly drop a trailing suffix (>= `min_chars` chars) immediately repeating the text before it.

    Exhaustive: every suffix length is tried (shortest first). The official code's binary search
    (`strip_repetitions_official`) misses some repeated suffixes that this finds.
    """
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


def strip_repetitions_official(text: str, min_chars: int = 30) -> str:
    """The official suffix search (`find_longest_repeated_suffix`), without the surrounding whitespace strip.

    It binary-searches the suffix length as if "the last L characters immediately repeat" held for every
    L up to the longest such length. It does not: a text ending in a repeated unit of P characters
    repeats only for L a multiple of P, so the search finds it only if one of its probed lengths is such
    a multiple (e.g. "Start. " followed by a 34-character sentence three times is left unchanged).
    `strip_trailing_repetitions` is the exhaustive search.
    """
    if min_chars < 1:
        return text

    def longest(s: str) -> int:
        lo, hi, found = 0, len(s), 0
        while lo <= hi:
            mid = (lo + hi) // 2
            if mid >= min_chars and s[: len(s) - mid].endswith(s[len(s) - mid :]):
                found, lo = mid, mid + 1
            else:
                hi = mid - 1
        return found

    size = longest(text)
    while size:
        text = text[: len(text) - size]
        size = longest(text)
    return text


def repetition_span(text: str, search: str = "official", min_chars: int = 30) -> tuple[int, int]:
    """(start, end) of the part of `text` that the official post-processing keeps.

    As `remove_redundant_repetitions` does: surrounding whitespace is stripped, then repeated trailing
    suffixes of at least `min_chars` characters are dropped, found by the official binary search
    (`search="official"`) or by the exhaustive one (`"exhaustive"`).
    """
    start = len(text) - len(text.lstrip())
    core = text.strip()
    if search == "official":
        kept = strip_repetitions_official(core, min_chars)
    elif search == "exhaustive":
        kept = strip_trailing_repetitions(core, min_chars)
    else:
        raise ValueError(f"unknown repetition search {search!r}; use 'official' or 'exhaustive'")
    return start, start + len(kept)
