"""`NudgingConfig`: the knobs of nudging, with the official implementation's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from reprokit.errors import ConfigError


@dataclass(frozen=True)
class NudgingConfig:
    """Settings of one nudged decoding run (defaults follow the official `utils.py`).

    The base model writes while its top-1 next-token probability is at least `gamma`; otherwise the
    nudging model writes a look-ahead of `lookahead_tokens` tokens, of which whole words are taken.
    Lengths are counted in base-model tokens.
    """

    gamma: float = 0.3
    """Top-1 probability threshold (paper: 0.4 for Llama-2, 0.3 for Gemma-2 and OLMo)."""
    lookahead_tokens: int = 16
    """Length of the nudging model's look-ahead; an EOS inside it ends generation."""
    base_chunk_tokens: int = 16
    """The base model's run is re-synchronised with the canonical tokenization every this many tokens."""
    max_new_tokens: int = 512
    """Answer length budget in base-model tokens."""
    max_rounds: int = 150
    """At most this many nudging rounds."""
    repeat_nudge_limit: int = 3
    """Stop when the same nudge text is chosen this many rounds in a row (0 disables)."""
    min_repeat_words: int = 6
    """A base chunk of this many words or more already in the answer ends the base run (0: off)."""
    strip_repetitions: bool = True
    """Strip immediately repeated trailing suffixes of at least `min_repetition_chars` characters."""
    min_repetition_chars: int = 30
    base_eos_hands_back: bool = True
    """True (official): a base-model EOS only ends its run; False: it ends generation."""
    lazy_lookahead: bool = False
    """Optional, NOT the official behaviour (default False = official). Draft the nudging model's
    look-ahead only as far as the next Stage-1 candidate needs (word by word, at most `lookahead_tokens`)
    instead of always `lookahead_tokens` tokens. The nudges are the same, but an EOS the nudging model
    would emit after the base model's takeover point is not seen, so generation can run on where the
    official code stops. Saves most of the nudging model's decoding steps (see docs "Speed")."""
    verify_lookahead: bool = True
    """Speed only, the output is unchanged: when the base model takes over, it reads the rest of the
    nudging model's look-ahead in one forward pass and uses those logits for as long as it writes the
    same tokens (speculative verification with a draft that was computed anyway)."""
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
        for name in ("repeat_nudge_limit", "min_repeat_words", "min_repetition_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"NudgingConfig.{name} must be an int >= 0, got {value!r}.")
        if self.repeat_nudge_limit == 1:
            raise ConfigError(
                "NudgingConfig.repeat_nudge_limit must be 0 (off) or >= 2 (rounds in a row), got 1."
            )
        if not self.temperature > 0:
            raise ConfigError(f"NudgingConfig.temperature must be > 0, got {self.temperature!r}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"NudgingConfig.top_p must be in (0, 1], got {self.top_p!r}.")
