"""The tiny-scale setup: a synthetic SemEval-2025 Task 4 world and the target models trained on it.

The organizers fine-tuned OLMo until it had memorised forget and retain alike; here a tiny OLMo-architecture
model is trained from scratch on the world's documents, its QA pairs and a knowledge corpus (the MMLU
analogue's facts) until it has, and a second architecture (llama by default) is trained on the same data so
that the tracer is shown on more than one model. Everything is cached by `reprokit.zoo` (a second run
costs nothing) and is a pure function of the seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from reprokit.errors import ConfigError
from reprokit.lm import LanguageModel
from reprokit.tokenizer import train_tokenizer
from reprokit.zoo import (
    Example,
    Recipe,
    TrainConfig,
    TrainedModel,
    encode_prompt_completion,
    encode_texts,
    train_cached,
)
from selective_amnesia.data import UnlearningData
from selective_amnesia.world import AmnesiaWorld, AmnesiaWorldConfig, make_world

__all__ = ["TinyConfig", "TinySetup"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TinyConfig:
    """The tiny world, the target model's shape and how long it trains (until it has memorised the sets)."""

    world: AmnesiaWorldConfig = field(default_factory=AmnesiaWorldConfig)
    vocab_size: int = 1024
    architecture: str = "olmo"
    second_architecture: str = "llama"
    hidden_size: int = 128
    num_layers: int = 6
    num_heads: int = 4
    intermediate_size: int = 512
    epochs: float = 40.0
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 20
    max_length: int = 256

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "batch_size",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"TinyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"TinyConfig.hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}"
            )
        if self.epochs <= 0 or self.lr <= 0:
            raise ConfigError("TinyConfig.epochs and lr must be > 0")

    def recipe(self, architecture: str) -> Recipe:
        """The model shape for `architecture` (the target's and the second model's are the same)."""
        return Recipe(
            f"{architecture}-amnesia",
            architecture,
            self.hidden_size,
            self.num_layers,
            self.num_heads,
            self.intermediate_size,
            max_position_embeddings=self.max_length,
        )


class TinySetup:
    """One seed's world, tokenizer and trained models (lazily built, cached on disk by `reprokit.zoo`)."""

    def __init__(
        self,
        config: TinyConfig,
        *,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        with_second: bool = True,
    ) -> None:
        self.config = config
        self.seed = seed
        self.cache_dir = cache_dir
        #: Whether `second_lm` trains and returns the second architecture (the reproduction: first seed only).
        self.with_second = with_second and bool(config.second_architecture)

    @cached_property
    def world(self) -> AmnesiaWorld:
        """The world of this seed (the config's world seed is offset by the run seed)."""
        from dataclasses import replace

        return make_world(replace(self.config.world, seed=self.config.world.seed + self.seed))

    @cached_property
    def data(self) -> UnlearningData:
        """The forget and retain sets in the task's format."""
        return UnlearningData(self.world.forget, self.world.retain)

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """A byte-level BPE trained on every text of the world (with a chat template for unlearning)."""
        texts = [*self.world.training_documents(), *(p + " " + c for p, c in self.world.training_pairs())]
        return train_tokenizer(texts, vocab_size=self.config.vocab_size, chat_template=True)

    @cached_property
    def examples(self) -> list[Example]:
        """Whole documents (with EOS) and QA pairs (loss on `` answer`` + EOS), as the target learns them."""
        tok, n = self.tokenizer, self.config.max_length
        docs = encode_texts(tok, self.world.training_documents(), max_length=n)
        pairs = [(p, " " + c) for p, c in self.world.training_pairs()]
        return [*docs, *encode_prompt_completion(tok, pairs, max_length=n)]

    def train_config(self) -> TrainConfig:
        """Training until memorised: cosine schedule, seeded order."""
        c = self.config
        return TrainConfig(
            epochs=c.epochs,
            batch_size=c.batch_size,
            lr=c.lr,
            warmup_steps=c.warmup_steps,
            weight_decay=0.0,
            seed=self.seed,
        )

    def _train(self, architecture: str) -> TrainedModel:
        return train_cached(
            self.config.recipe(architecture),
            self.tokenizer,
            self.examples,
            self.train_config(),
            name=f"amnesia-{architecture}",
            cache_dir=self.cache_dir,
        )

    @cached_property
    def target(self) -> TrainedModel:
        """The model to unlearn from: OLMo architecture, as the task's target models."""
        return self._train(self.config.architecture)

    @cached_property
    def second(self) -> TrainedModel:
        """A second architecture trained on the same data: the tracer is not tied to one model."""
        return self._train(self.config.second_architecture)

    def load(self, model: TrainedModel) -> LanguageModel:
        """A fresh float32 copy of a trained model on the CPU."""
        return model.load()

    # -------------------------------------------------------------- what the experiments read (`Source`)
    @property
    def members(self) -> tuple[str, ...]:
        """MIA members: the forget documents, trained on."""
        return self.world.members

    @property
    def nonmembers(self) -> tuple[str, ...]:
        """MIA non-members: documents of the same kinds, never trained on."""
        return self.world.nonmembers

    @property
    def knowledge(self):
        """The MMLU analogue's test questions (facts outside the forget and retain sets)."""
        return self.world.knowledge

    @property
    def knowledge_shots(self):
        """The few-shot examples of the knowledge test."""
        return self.world.knowledge_shots

    @property
    def trace_facts(self):
        """Subject-first PII questions to trace (forget and retain people)."""
        return self.world.trace_facts

    def target_lm(self) -> LanguageModel:
        """The trained target model."""
        return self.load(self.target)

    def second_lm(self) -> LanguageModel | None:
        """The second architecture (None when ``second_architecture`` is empty or `with_second` is off)."""
        return self.load(self.second) if self.with_second else None
