"""The tiny-scale setup: a synthetic world, Alice, reference models, derived and independent suspects.

Everything is built from `reprokit.world` and trained with `reprokit.zoo.train_cached`, so a second
build is free. Tests, docs and `reproduce/palimpsest.py` share this module.

- Corpus A (Alice's data): encyclopedic documents of world A; corpus B: a second, disjoint world used
  as fresh data (fine-tuning, an "other data" reference, the distilled student's pretraining).
- Alice: one epoch over corpus A in a recorded random order, checkpoints (model + optimizer) before
  her last `retrain_fractions` of training.
- References: same recipe and data in an independent order, smaller / other-architecture models on the
  same data, and a model trained on other data.
- Suspects: Alice; chat fine-tunes (full and LoRA); a sweep of fine-tunes at fractions of her learning
  rate on fractions of her volume; a student distilled from her samples. Nulls: independent models on
  the same data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from palimpsest.query import QueryConfig, example_losses
from palimpsest.reshuffle import retrain_last_phase
from palimpsest.sampling import Samples, sample_texts
from palimpsest.transcript import Transcript
from reprokit.lm import LanguageModel
from reprokit.results import atomic_directory, atomic_write_bytes, atomic_write_json
from reprokit.seed import derive_seed
from reprokit.tokenizer import train_tokenizer
from reprokit.world import WorldConfig, chat_pairs, encyclopedia_documents, fact_questions, make_world
from reprokit.zoo import Example, TrainConfig, TrainedModel, encode_chats, encode_texts, train_cached

logger = logging.getLogger(__name__)

__all__ = ["TinyConfig", "TinySetup"]


@dataclass(frozen=True)
class TinyConfig:
    """Sizes and hyper-parameters of the tiny-scale setup (see the module docstring for the roles).

    Fine-tunes are sized relative to Alice: learning rates as fractions of her `lr`
    (`chat_lr_fraction`, `lora_lr_fraction`, `finetune_lr_fractions`) and data as fractions of her
    documents (`finetune_fractions`); the sweep is every (lr fraction, data fraction) pair.

    The seed is not part of the config: it is `TinySetup`'s ``seed`` (the runner's ``--seed``).
    """

    n_people: int = 1000
    n_people_other: int = 600
    vocab_size: int = 1024
    alice_recipe: str = "llama-3m"
    batch_size: int = 16
    lr: float = 3e-3
    schedule: str = "constant"
    warmup_steps: int = 10
    retrain_fractions: tuple[float, ...] = (0.02, 0.05, 0.1)
    references: tuple[tuple[str, str, str], ...] = (
        ("same-recipe", "llama-3m", "same"),
        ("smaller", "llama-1m", "same"),
        ("other-arch", "gpt_neox-1m", "same"),
        ("other-data", "llama-3m", "other"),
    )
    nulls: tuple[tuple[str, str], ...] = (("null-llama", "llama-1m"), ("null-qwen2", "qwen2-1m"))
    n_chat: int = 400
    chat_lr_fraction: float = 0.1
    lora_r: int = 8
    lora_lr_fraction: float = 1.0
    finetune_fractions: tuple[float, ...] = (0.01, 0.1, 0.5)
    finetune_lr_fractions: tuple[float, ...] = (0.1, 1.0)
    distill_samples: int = 800
    distill_new_tokens: int = 48
    distill_lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.n_people < 10 or self.n_people_other < 10:
            raise ValueError("TinyConfig: n_people and n_people_other must be >= 10.")
        lr_fractions = (self.chat_lr_fraction, self.lora_lr_fraction, *self.finetune_lr_fractions)
        if not all(f > 0 for f in (*lr_fractions, *self.finetune_fractions)):
            raise ValueError(
                "TinyConfig: learning-rate fractions (chat_lr_fraction, lora_lr_fraction, "
                "finetune_lr_fractions) and finetune_fractions must be > 0."
            )
        for f in self.retrain_fractions:
            if not 0 < f < 0.5:
                raise ValueError(f"TinyConfig.retrain_fractions must lie in (0, 0.5), got {f}.")
        if not self.references:
            raise ValueError("TinyConfig.references needs at least one (name, recipe, data) entry.")
        for ref in self.references:
            if len(ref) != 3 or ref[2] not in ("same", "other"):
                raise ValueError(
                    f"TinyConfig.references entries are (name, recipe, 'same'|'other'), got {ref!r}."
                )


class TinySetup:
    """Lazily trained tiny-scale models (each through `train_cached`); attributes build on first use.

    `seed` makes the worlds, the initialisations and every training order (through `derive_seed`), so
    two seeds give two independent setups.
    """

    def __init__(
        self, config: TinyConfig = TinyConfig(), *, seed: int = 0, cache_dir: str | Path | None = None
    ) -> None:
        from reprokit.cli import resolve_cache_dir

        self.config = config
        self.seed = seed
        self.cache_dir = resolve_cache_dir(cache_dir)
        self._models: dict[str, LanguageModel] = {}
        self._retrains: dict[tuple[float, int], tuple[TrainedModel, list[TrainedModel]]] = {}
        self._losses: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------------------------ data
    @cached_property
    def world(self):
        """World A (Alice's)."""
        return make_world(WorldConfig(seed=self.seed, n_people=self.config.n_people))

    @cached_property
    def corpus(self) -> list[str]:
        """Alice's documents (world A), in world order."""
        return [d.text for d in encyclopedia_documents(self.world, seed=self.seed)]

    @cached_property
    def other_corpus(self) -> list[str]:
        """Fresh documents from a second world B (fine-tuning data, other-data reference)."""
        seed = derive_seed(self.seed, "other-world")
        world = make_world(WorldConfig(seed=seed, n_people=self.config.n_people_other))
        return [d.text for d in encyclopedia_documents(world, seed=seed)]

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """BPE tokenizer on both corpora, cached on disk so the model cache keys stay stable."""
        h = hashlib.sha256("\n".join([*self.corpus, *self.other_corpus]).encode()).hexdigest()[:16]
        path = self.cache_dir / "palimpsest" / f"tokenizer-{self.config.vocab_size}-{h}"
        if (path / "tokenizer.json").exists():
            return AutoTokenizer.from_pretrained(path)
        tok = train_tokenizer(
            [*self.corpus, *self.other_corpus], vocab_size=self.config.vocab_size, chat_template=True
        )
        with atomic_directory(path) as tmp:  # a concurrent build that finishes first is kept
            tok.save_pretrained(tmp)
        return AutoTokenizer.from_pretrained(path)

    @cached_property
    def examples(self) -> list[Example]:
        """Alice's training examples (bos + document + eos)."""
        return encode_texts(self.tokenizer, self.corpus)

    @cached_property
    def other_examples(self) -> list[Example]:
        """Examples of corpus B."""
        return encode_texts(self.tokenizer, self.other_corpus)

    def train_config(self, *, seed: int, lr: float | None = None, lora_r: int = 0) -> TrainConfig:
        """The shared training config with a given order seed."""
        c = self.config
        return TrainConfig(
            epochs=1.0,
            batch_size=c.batch_size,
            lr=c.lr if lr is None else lr,
            schedule=c.schedule,  # type: ignore[arg-type]
            warmup_steps=c.warmup_steps,
            seed=seed,
            lora_r=lora_r,
        )

    # ---------------------------------------------------------------------------------- Alice
    @cached_property
    def alice_config(self) -> TrainConfig:
        """Alice's training config (her order is seeded by it)."""
        return self.train_config(seed=derive_seed(self.seed, "alice-order"))

    def checkpoint_step(self, fraction: float) -> int:
        """The step of the checkpoint before the last `fraction` of Alice's training."""
        total = -(-len(self.examples) // self.config.batch_size)
        step = round(total * (1.0 - fraction))
        return min(max(step, 1), total - 1)

    @cached_property
    def alice(self) -> TrainedModel:
        """Alice: one epoch over corpus A in a recorded random order, checkpoints before her last phases."""
        steps = sorted({self.checkpoint_step(f) for f in self.config.retrain_fractions})
        return train_cached(
            self.config.alice_recipe,
            self.tokenizer,
            self.examples,
            self.alice_config,
            name="alice",
            checkpoint_steps=steps,
            init_seed=derive_seed(self.seed, "alice-init"),
            cache_dir=self.cache_dir,
        )

    @cached_property
    def transcript(self) -> Transcript:
        """Alice's transcript: position = index in her stream, step = position // batch size."""
        return Transcript.first_occurrence(
            [e.input_ids for e in self.examples],
            self.alice.order,
            batch_size=self.config.batch_size,
            tokenizer=self.tokenizer,
            name="tiny-alice",
        )

    # ------------------------------------------------------------------------------- references
    def _independent(self, name: str, recipe: str, data: str = "same") -> TrainedModel:
        examples = self.examples if data == "same" else self.other_examples
        return train_cached(
            recipe,
            self.tokenizer,
            examples,
            self.train_config(seed=derive_seed(self.seed, name, "order")),
            name=name,
            init_seed=derive_seed(self.seed, name, "init"),
            cache_dir=self.cache_dir,
        )

    @cached_property
    def references(self) -> dict[str, TrainedModel]:
        """Reference models, all independent of Alice's order (first: same recipe and data)."""
        return {
            name: self._independent(f"ref-{name}", recipe, data)
            for name, recipe, data in self.config.references
        }

    @cached_property
    def nulls(self) -> dict[str, TrainedModel]:
        """Independent suspects: Alice's data in other orders, other initialisations."""
        return {name: self._independent(name, recipe) for name, recipe in self.config.nulls}

    # --------------------------------------------------------------------------------- suspects
    def _finetune(self, name: str, examples: Sequence[Example], lr: float, lora_r: int = 0) -> TrainedModel:
        return train_cached(
            self.alice,
            self.tokenizer,
            examples,
            self.train_config(seed=derive_seed(self.seed, name), lr=lr, lora_r=lora_r),
            name=name,
            cache_dir=self.cache_dir,
        )

    @cached_property
    def chat_examples(self) -> list[Example]:
        """Aligned-style chat pairs about world A people (the chat fine-tune's data)."""
        people = [p.id for p in self.world.people[: self.config.n_chat]]
        questions = fact_questions(self.world, attributes=("city",), people=people, seed=self.seed)
        pairs = chat_pairs(questions, style="aligned", seed=self.seed)
        return encode_chats(self.tokenizer, [p.messages() for p in pairs])

    def finetune_examples(self, fraction: float) -> list[Example]:
        """Fresh corpus-B examples amounting to `fraction` of Alice's pretraining examples."""
        m = max(1, round(fraction * len(self.examples)))
        if m > len(self.other_examples):
            raise ValueError(
                f"fine-tuning on {fraction:.0%} of Alice's volume needs {m} fresh documents but corpus B has "
                f"{len(self.other_examples)}; raise TinyConfig.n_people_other."
            )
        return self.other_examples[:m]

    def samples(self, model: TrainedModel, n: int, *, new_tokens: int = 32, seed: int = 0) -> Samples:
        """`n` bos-prompted samples of `model` (temperature 1), cached on disk."""
        key = hashlib.sha256(json.dumps([model.key, n, new_tokens, seed]).encode()).hexdigest()[:20]
        path = self.cache_dir / "palimpsest" / "samples" / f"{key}.json"
        if path.exists():
            d = json.loads(path.read_text())
            return Samples(
                tuple(tuple(p) for p in d["prompt_ids"]),
                tuple(tuple(c) for c in d["completion_ids"]),
                tuple(d["texts"]),
            )
        s = sample_texts(self.load(model), n, max_new_tokens=new_tokens, seed=seed)
        atomic_write_json(
            path, {"prompt_ids": s.prompt_ids, "completion_ids": s.completion_ids, "texts": s.texts}
        )
        return s

    @cached_property
    def finetune_plan(self) -> dict[str, tuple[float, float]]:
        """Every fine-tuned suspect: name -> (its lr as a fraction of Alice's, its tokens as a fraction of
        hers). Chat fine-tunes first, then the sweep ``ft-lr<lr fraction>-tok<data fraction>``."""
        c = self.config
        alice_tokens = sum(len(e.input_ids) for e in self.examples)
        chat = sum(len(e.input_ids) for e in self.chat_examples) / alice_tokens
        plan = {"chat-full": (c.chat_lr_fraction, chat), "chat-lora": (c.lora_lr_fraction, chat)}
        for lr in c.finetune_lr_fractions:
            for f in c.finetune_fractions:
                tokens = sum(len(e.input_ids) for e in self.finetune_examples(f)) / alice_tokens
                plan[f"ft-lr{lr:g}-tok{f:g}"] = (lr, tokens)
        return plan

    @cached_property
    def suspects(self) -> dict[str, TrainedModel]:
        """Derived suspects: Alice, chat fine-tunes (full, LoRA), the fine-tune sweep, distilled student."""
        c = self.config
        out: dict[str, TrainedModel] = {"alice": self.alice}
        out["chat-full"] = self._finetune("chat-full", self.chat_examples, c.chat_lr_fraction * c.lr)
        out["chat-lora"] = self._finetune(
            "chat-lora", self.chat_examples, c.lora_lr_fraction * c.lr, lora_r=c.lora_r
        )
        for lr in c.finetune_lr_fractions:
            for f in c.finetune_fractions:
                name = f"ft-lr{lr:g}-tok{f:g}"
                out[name] = self._finetune(name, self.finetune_examples(f), lr * c.lr)
        out["distilled"] = self.distilled
        return out

    @cached_property
    def distilled(self) -> TrainedModel:
        """A student pretrained on corpus B, then trained on Alice's samples (bos prompt, temperature 1)."""
        c = self.config
        teacher = self.samples(
            self.alice,
            c.distill_samples,
            new_tokens=c.distill_new_tokens,
            seed=derive_seed(self.seed, "distill"),
        )
        examples = [Example(tuple(s), 0) for s in teacher.sequences if len(s) > 2]
        base = self._independent("ref-other-data", c.alice_recipe, "other")
        return train_cached(
            base,
            self.tokenizer,
            examples,
            self.train_config(seed=derive_seed(self.seed, "distill-order"), lr=c.distill_lr),
            name="distilled",
            cache_dir=self.cache_dir,
        )

    # ------------------------------------------------------------------------------- utilities
    def build(self) -> None:
        """Train (or load from the cache) every model in a fixed order: Alice, references, nulls, suspects."""
        _ = (self.alice, self.references, self.nulls, self.suspects)

    def load(self, model: TrainedModel) -> LanguageModel:
        """Load (once) a cached model in eval mode, with the setup's tokenizer."""
        if model.key not in self._models:
            self._models[model.key] = dataclasses.replace(model.load(), tokenizer=self.tokenizer)
        return self._models[model.key]

    def losses(self, model: TrainedModel, config: QueryConfig | None = None) -> np.ndarray:
        """Per-example losses of `model` on Alice's whole transcript (cached on disk, and in memory so the
        tables that share them read the file once)."""
        config = config or QueryConfig()
        key = hashlib.sha256(
            json.dumps([model.key, self.alice.key, dataclasses.asdict(config)], default=str).encode()
        ).hexdigest()[:20]
        if key in self._losses:
            return self._losses[key]
        path = self.cache_dir / "palimpsest" / "losses" / f"{key}.npy"
        if path.exists():
            values = np.load(path, allow_pickle=False)
        else:
            values = example_losses(self.load(model), self.transcript, config)
            buf = io.BytesIO()
            np.save(buf, values, allow_pickle=False)
            atomic_write_bytes(path, buf.getvalue())
        values.setflags(write=False)  # shared by every caller: nobody may change it in place
        self._losses[key] = values
        return values

    def retrain(self, fraction: float, k: int) -> tuple[TrainedModel, list[TrainedModel]]:
        """Alice's last `fraction` retrained in her order and K times reshuffled (cached)."""
        if (fraction, k) in self._retrains:
            return self._retrains[(fraction, k)]
        step = self.checkpoint_step(fraction)
        self._retrains[(fraction, k)] = retrain_last_phase(
            self.alice,
            self.tokenizer,
            self.examples,
            self.alice_config,
            checkpoint_step=step,
            k=k,
            seed=derive_seed(self.seed, "reshuffle"),
            cache_dir=self.cache_dir,
        )
        return self._retrains[(fraction, k)]

    def example_positions(self) -> np.ndarray:
        """Training position of every corpus-A example (index into Alice's stream)."""
        pos = np.empty(len(self.examples), dtype=np.int64)
        pos[self.alice.order] = np.arange(len(self.alice.order))
        return pos
