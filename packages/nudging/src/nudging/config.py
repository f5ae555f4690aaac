"""`NudgingConfig`: the knobs of nudging, with the official implementation's defaults."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from reprokit.errors import ConfigError


@dataclass(frozen=True)
class NudgingConfig:
    """Settings of one nudged decoding run (defaults follow the official `utils.py`, except `exact_length`;
    `NudgingConfig.official()` follows it in every option).

    The base model writes while its top-1 next-token probability is at least `gamma`; otherwise the
    nudging model writes a look-ahead of `lookahead_tokens` tokens, of which whole words are taken.
    Lengths are counted in base-model tokens.
    """

    gamma: float = 0.3
    """Top-1 probability threshold (paper: 0.4 for Llama-2, 0.3 for Gemma-2 and OLMo)."""
    lookahead_tokens: int = 16
    """Length of the nudging model's look-ahead; an EOS inside it ends generation."""
    base_chunk_tokens: int = 16
    """Tokens per base-model call (official `completion_token_num`): the base model's run is read in chunks
    of this many tokens, each re-synchronised with the canonical tokenization of the answer so far."""
    max_new_tokens: int = 512
    """Answer length budget in base-model tokens (the official code counts gpt-3.5 tiktoken tokens)."""
    exact_length: bool = True
    """True (ours, the default): the base model stops writing at exactly `max_new_tokens` answer tokens.
    False (official accounting): the budget is checked only before each base chunk, as the official
    `complete_with_base` loop does, so the base model's text can run past it by up to one chunk.
    Both end the next round with stop reason "length" once the answer reaches the budget."""
    max_rounds: int = 150
    """At most this many nudging rounds."""
    repeat_nudge_limit: int = 4
    """Stop when this is the n-th identical nudge text in a row (0 disables). Official: 4, i.e. the 4th
    identical nudge stops (its counter reaches 3 after three repeats); the counter starts from an empty
    previous nudge, so an empty first nudge already counts as a repeat."""
    stop_on_repeated_chunk: bool = True
    """Official: the base run ends when a new base chunk (all its `base_chunk_tokens` tokens, read past
    the first uncertain one, or up to the base model's EOS) is contained in the text the base model has
    already written in this round; the chunk adds nothing. With `base_chunk_tokens=1` the base model
    therefore writes one token per round, as in the official code."""
    min_repeat_words: int = 6
    """Official `repetition_check`: the accepted part of a base chunk that has this many space-separated
    parts or more (`len(piece.split(" "))`, empty parts included, so " a b c d e" has 6) and already
    occurs in the answer ends the base run and adds nothing (0: off)."""
    strip_repetitions: bool = True
    """Post-process the answer as the official code does: strip surrounding whitespace, then drop
    immediately repeated trailing suffixes of at least `min_repetition_chars` characters."""
    repetition_search: Literal["official", "exhaustive"] = "official"
    """How repeated suffixes are found. "official" (default, for reproduction): the official binary
    search, which misses most of them (it assumes that every suffix shorter than a repeated one also
    repeats; see `nudging.words.strip_repetitions_official`). "exhaustive": every suffix length is
    tried, so all immediately repeated suffixes are stripped."""
    min_repetition_chars: int = 30
    """Shortest repeated suffix that `strip_repetitions` drops (official: 30 characters; 0: none)."""
    base_eos_hands_back: bool = True
    """True (official): a base-model EOS only ends its run; False: it ends generation. (Official detail:
    an EOS inside the Stage-1 call's chunk does not end the run either; the next chunk is requested.)"""
    lazy_lookahead: bool = False
    """Optional, NOT the official behaviour (default False = official). Draft the nudging model's
    look-ahead only as far as the next Stage-1 candidate needs (word by word, at most `lookahead_tokens`)
    instead of always `lookahead_tokens` tokens. The nudges are the same, but an EOS the nudging model
    would emit after the base model's takeover point is not seen, so generation can run on where the
    official code stops. Saves most of the nudging model's decoding steps (see docs "Speed")."""
    verify_lookahead: bool | None = None
    """Speed only, the output is unchanged: when the base model takes over, it reads the rest of the
    nudging model's look-ahead in one forward pass and uses those logits for as long as it writes the
    same tokens (speculative verification with a draft that was computed anyway). None (default): on
    for one stream at a time (`nudge_fast`, the server driver), off in lock-step batches of several
    rows, where that read needs a forward pass of its own while the other rows wait, which costs more
    than the steps it saves (see docs "Speed"). True or False force it either way."""
    lookup_draft_tokens: int = 0
    """Speed only (greedy decoding; 0 = off): guess up to this many tokens of the nudging model's
    look-ahead by copying what followed the last earlier occurrence of its latest tokens in the prompt
    and answer (prompt-lookup decoding), and check the guess in one forward pass of the nudging model.
    The tokens it writes are its greedy choices either way; a right guess saves sequential passes."""
    do_sample: bool = False
    """Sample instead of greedy decoding (p1 is always taken from the untempered distribution)."""
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    """Seed of the sampling generator (only used when `do_sample`)."""

    def __post_init__(self) -> None:
        if (
            isinstance(self.gamma, bool)
            or not isinstance(self.gamma, (int, float))
            or not 0.0 <= self.gamma <= 1.0
        ):
            raise ConfigError(
                f"NudgingConfig.gamma must be a probability in [0, 1], got {self.gamma!r}; "
                "the paper uses 0.3-0.4 (0 = base model only, 1 = nudging model nearly always)."
            )
        for name in ("lookahead_tokens", "base_chunk_tokens", "max_new_tokens", "max_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"NudgingConfig.{name} must be a positive int, got {value!r}.")
        for name in ("repeat_nudge_limit", "min_repeat_words", "min_repetition_chars", "lookup_draft_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"NudgingConfig.{name} must be an int >= 0, got {value!r}.")
        if self.repeat_nudge_limit == 1:
            raise ConfigError(
                "NudgingConfig.repeat_nudge_limit must be 0 (off) or >= 2 (rounds in a row), got 1."
            )
        for name in ("exact_length", "stop_on_repeated_chunk", "strip_repetitions"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"NudgingConfig.{name} must be True or False, got {getattr(self, name)!r}.")
        if self.verify_lookahead is not None and not isinstance(self.verify_lookahead, bool):
            raise ConfigError(
                f"NudgingConfig.verify_lookahead must be True, False or None (auto), got "
                f"{self.verify_lookahead!r}."
            )
        if self.repetition_search not in ("official", "exhaustive"):
            raise ConfigError(
                f"NudgingConfig.repetition_search must be 'official' or 'exhaustive', got "
                f"{self.repetition_search!r}."
            )
        if not self.temperature > 0:
            raise ConfigError(f"NudgingConfig.temperature must be > 0, got {self.temperature!r}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"NudgingConfig.top_p must be in (0, 1], got {self.top_p!r}.")

    @classmethod
    def official(cls, **overrides: object) -> NudgingConfig:
        """The official code's behaviour in every option (also its chunk-level length accounting),
        for reproduction; `overrides` set other fields (e.g. `gamma`)."""
        return replace(cls(exact_length=False), **overrides)  # type: ignore[arg-type]
