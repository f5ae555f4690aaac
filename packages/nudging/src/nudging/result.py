"""What a nudged generation returns: the text, who wrote each segment, why it stopped, nudged shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from transformers import PreTrainedTokenizerBase

from nudging.words import count_words

Source = Literal["base", "nudger"]
StopReason = Literal["nudging_model_stop", "base_model_stop", "repeated_nudging_words", "round", "length"]


@dataclass(frozen=True)
class Segment:
    """A piece of the answer and the model that wrote it."""

    text: str
    source: Source


@dataclass(frozen=True)
class NudgeResult:
    """One nudged answer: `text` is the concatenation of `segments` (after the official post-processing:
    surrounding whitespace and repeated trailing suffixes stripped, see `NudgingConfig.strip_repetitions`)."""

    text: str
    segments: tuple[Segment, ...]
    stop_reason: StopReason
    n_rounds: int
    nudged_word_share: float
    """Official measure: words in nudging segments (the final EOS-ending one excluded) over all words."""
    nudged_token_share: float
    """Share of the answer's base-tokenizer tokens that start inside a nudging segment (all included)."""
    n_tokens: int
    """Answer length in base-model tokens."""
    info: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def nudged_text(self) -> list[str]:
        """The nudging model's segments, in order."""
        return [s.text for s in self.segments if s.source == "nudger"]

    def marked(self, left: str = "[", right: str = "]") -> str:
        """The answer with every nudging segment wrapped in `left` ... `right` (spaces kept outside)."""
        parts = []
        for seg in self.segments:
            if seg.source == "nudger" and seg.text.strip():
                core = seg.text.strip()
                start = seg.text.index(core)
                parts.append(f"{seg.text[:start]}{left}{core}{right}{seg.text[start + len(core) :]}")
            else:
                parts.append(seg.text)
        return "".join(parts)


def finalize(
    segments: list[Segment],
    stop_reason: StopReason,
    n_rounds: int,
    base_tokenizer: PreTrainedTokenizerBase,
    *,
    keep: tuple[int, int] | None = None,
) -> NudgeResult:
    """Merge adjacent same-source segments, cut them to the text span `keep` (the post-processed answer,
    `nudging.words.repetition_span`), measure the nudged shares."""
    merged: list[Segment] = []
    for seg in segments:
        if not seg.text:
            continue
        if merged and merged[-1].source == seg.source:
            merged[-1] = Segment(merged[-1].text + seg.text, seg.source)
        else:
            merged.append(seg)
    text = "".join(s.text for s in merged)
    if keep is not None and keep != (0, len(text)):
        start, end = keep
        if not 0 <= start <= end <= len(text):
            raise AssertionError(f"the kept span {keep} is not inside the answer of {len(text)} characters")
        kept, pos = [], 0
        for seg in merged:
            lo, hi = max(start, pos), min(end, pos + len(seg.text))
            if lo < hi:
                kept.append(Segment(seg.text[lo - pos : hi - pos], seg.source))
            pos += len(seg.text)
        merged, text = kept, text[start:end]
    word_total = count_words(text)
    counted = (
        merged[:-1]
        if stop_reason == "nudging_model_stop" and merged and merged[-1].source == "nudger"
        else merged
    )
    nudged_words = sum(count_words(s.text) for s in counted if s.source == "nudger")
    word_share = min(1.0, nudged_words / word_total) if word_total else 0.0
    enc = base_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    owner = []
    for seg in merged:
        owner.extend([seg.source == "nudger"] * len(seg.text))
    nudged_tokens = sum(1 for start, end in offsets if end > start and owner[min(start, len(owner) - 1)])
    token_share = nudged_tokens / len(offsets) if offsets else 0.0
    return NudgeResult(
        text=text,
        segments=tuple(merged),
        stop_reason=stop_reason,
        n_rounds=n_rounds,
        nudged_word_share=float(word_share),
        nudged_token_share=float(token_share),
        n_tokens=len(offsets),
    )
