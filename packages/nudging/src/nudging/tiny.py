"""The tiny-scale setup: a synthetic world, two model families, and the five tiny tasks.

Pretraining text shows the skills plainly (encyclopedia paragraphs, textbook arithmetic solutions,
symbolic-task demonstrations and question-answer text in five mixed answer styles) but never the chat
format; the alignment set is chat-formatted with the aligned style (an opening, the reasoning steps,
"The answer is X.", end of sequence). Per family (own architecture, own BPE tokenizer): a large base
model (most capacity and training), a small aligned model (small, less pretraining, then aligned) and a
large aligned model (the large base, aligned the same way). Everything is cached by `reprokit.zoo`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nudging.tasks import TaskItem, tiny_tasks
from reprokit.tokenizer import train_tokenizer
from reprokit.world import (
    SYSTEM_PROMPT,
    World,
    WorldConfig,
    arithmetic_problems,
    chat_pairs,
    coin_flip_tasks,
    encyclopedia_documents,
    fact_questions,
    last_letter_tasks,
    make_world,
    split_by_person,
)
from reprokit.zoo import TrainConfig, TrainedModel, encode_chats, encode_texts, train_cached

logger = logging.getLogger(__name__)

ROLES = ("base", "small_aligned", "large_aligned")


@dataclass(frozen=True)
class FamilySpec:
    """One model family: an architecture pair and its own tokenizer (vocabulary size)."""

    name: str
    large_recipe: str
    small_recipe: str
    vocab_size: int


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of the tiny world, corpus, models and training (see `reproduce/configs/nudging/tiny.toml`)."""

    seed: int = 0
    n_people: int = 60
    n_first_names: int | None = 12
    n_last_names: int | None = 12
    n_arithmetic: int = 400
    n_symbolic: int = 150
    n_eval: int = 30
    arithmetic_max_value: int = 10
    arithmetic_steps: int = 2
    opening_share: float = 0.17
    """Share of pretraining question-answer texts written in the aligned style (as web text)."""
    doc_repeats: int = 6
    qa_fraction: float = 0.4
    align_fraction: float = 0.2
    n_align_arithmetic: int = 120
    n_align_symbolic: int = 60
    families: tuple[FamilySpec, ...] = (
        FamilySpec("llama", "llama-1m", "llama-0.3m", 1024),
        FamilySpec("neox", "gpt_neox-1m", "gpt_neox-0.3m", 1536),
    )
    large_pretrain: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=6.0, batch_size=32, lr=3e-3)
    )
    small_pretrain: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=2.0, batch_size=32, lr=3e-3)
    )
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3.0, batch_size=16, lr=1e-3))
    max_length: int = 160


@dataclass(frozen=True)
class TinyData:
    """The world, the two text sets, and the evaluation tasks (question items by task name)."""

    world: World
    pretrain_texts: tuple[str, ...]
    small_pretrain_texts: tuple[str, ...]
    alignment_chats: tuple[tuple[dict[str, str], ...], ...]
    tasks: dict[str, tuple[TaskItem, ...]]


@dataclass
class TinyFamily:
    """A trained family: tokenizer and the three cached models (load with `.load(role)`)."""

    spec: FamilySpec
    tokenizer: PreTrainedTokenizerBase
    models: dict[str, TrainedModel]

    def load(self, role: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """(model, tokenizer) of `role` in eval mode, on the CPU."""
        if role not in self.models:
            raise KeyError(f"unknown role {role!r}; choose from {tuple(self.models)}")
        return self.models[role].load()


def _qa_text(question: str, response: str, rng: random.Random) -> str:
    head = f"{SYSTEM_PROMPT}\n" if rng.random() < 0.5 else ""
    return f"{head}Question: {question}\n{response}"


def _qa_texts(
    items, config: TinyConfig, rng: random.Random, *, seed: int, multiple_choice: bool = False
) -> list[str]:
    """Plain question-answer text in the five mixed styles, plus (rarely) the aligned style."""
    mixed = chat_pairs(items, style="mixed", seed=seed, multiple_choice=multiple_choice)
    aligned = chat_pairs(items, style="aligned", seed=seed, multiple_choice=multiple_choice)
    return [
        _qa_text(m.instruction, (a if rng.random() < config.opening_share else m).response, rng)
        for m, a in zip(mixed, aligned, strict=True)
    ]


def build_data(config: TinyConfig) -> TinyData:
    """The tiny world and every text built from it (pure function of `config`)."""
    world = make_world(
        WorldConfig(
            seed=config.seed,
            n_people=config.n_people,
            n_first_names=config.n_first_names,
            n_last_names=config.n_last_names,
        )
    )
    ids = [p.id for p in world.people]
    eval_frac = 1.0 - config.qa_fraction - config.align_fraction
    groups = split_by_person(
        ids, {"qa": config.qa_fraction, "align": config.align_fraction, "eval": eval_frac}, seed=config.seed
    )
    rng = random.Random(config.seed)
    docs = [d.text for d in encyclopedia_documents(world, seed=config.seed, kinds=("person",))]
    qa_people = fact_questions(world, seed=config.seed, people=groups["qa"])
    qa_texts = _qa_texts(qa_people, config, rng, seed=config.seed)
    qa_texts += _qa_texts(qa_people, config, rng, seed=config.seed + 1, multiple_choice=True)
    n_eval = config.n_eval
    arith = arithmetic_problems(
        config.n_arithmetic + config.n_align_arithmetic + n_eval,
        seed=config.seed,
        world=world,
        min_steps=config.arithmetic_steps,
        max_steps=config.arithmetic_steps,
        max_value=config.arithmetic_max_value,
    )
    arith_pre, arith_align = arith[: config.n_arithmetic], arith[config.n_arithmetic : -n_eval]
    n_sym = config.n_symbolic + config.n_align_symbolic + n_eval
    letters = last_letter_tasks(n_sym, seed=config.seed, world=world)
    coins = coin_flip_tasks(n_sym, seed=config.seed, world=world)
    sym_pre = letters[: config.n_symbolic] + coins[: config.n_symbolic]
    sym_align = letters[config.n_symbolic : -n_eval] + coins[config.n_symbolic : -n_eval]
    arith_texts = [p.textbook for p in arith_pre]
    sym_texts = _qa_texts(sym_pre, config, rng, seed=config.seed)
    arith_qa = _qa_texts(arith_pre[:100], config, rng, seed=config.seed)
    pretrain = docs * config.doc_repeats + qa_texts + arith_texts + arith_qa + sym_texts
    rng.shuffle(pretrain)
    # The small model is pretrained on less: half of the people's paragraphs, once, and everything else.
    small = docs[: len(docs) // 2] + qa_texts + arith_texts + arith_qa + sym_texts
    rng.shuffle(small)
    align_people = fact_questions(world, seed=config.seed, people=groups["align"])
    align_items = chat_pairs(align_people, style="aligned", seed=config.seed)
    align_items += chat_pairs(align_people, style="aligned", seed=config.seed + 1, multiple_choice=True)
    align_items += chat_pairs([*arith_align, *sym_align], style="aligned", seed=config.seed)
    chats = tuple(tuple(p.messages(system=SYSTEM_PROMPT)) for p in align_items)
    eval_people = fact_questions(world, seed=config.seed, people=groups["eval"])
    tasks = tiny_tasks(
        arithmetic=arith[-n_eval:],
        facts=eval_people,
        last_letter=letters[-n_eval:],
        coin_flip=coins[-n_eval:],
        n=n_eval,
        seed=config.seed,
    )
    return TinyData(world, tuple(pretrain), tuple(small), chats, tasks)


def build_family(
    spec: FamilySpec, data: TinyData, config: TinyConfig, *, cache_dir: str | Path | None = None
) -> TinyFamily:
    """Train (or fetch from the cache) one family's tokenizer and three models."""
    tokenizer = train_tokenizer(
        [*data.pretrain_texts, *(m["content"] for c in data.alignment_chats for m in c)],
        vocab_size=spec.vocab_size,
        chat_template=True,
    )
    pre = encode_texts(tokenizer, data.pretrain_texts, max_length=config.max_length)
    small_pre = encode_texts(tokenizer, data.small_pretrain_texts, max_length=config.max_length)
    chats = encode_chats(tokenizer, data.alignment_chats, max_length=config.max_length)
    base = train_cached(
        spec.large_recipe,
        tokenizer,
        pre,
        config.large_pretrain,
        name=f"nudging-{spec.name}-base",
        cache_dir=cache_dir,
    )
    small_base = train_cached(
        spec.small_recipe,
        tokenizer,
        small_pre,
        config.small_pretrain,
        name=f"nudging-{spec.name}-small-base",
        cache_dir=cache_dir,
    )
    small = train_cached(
        small_base,
        tokenizer,
        chats,
        config.finetune,
        name=f"nudging-{spec.name}-small-aligned",
        cache_dir=cache_dir,
    )
    large = train_cached(
        base,
        tokenizer,
        chats,
        config.finetune,
        name=f"nudging-{spec.name}-large-aligned",
        cache_dir=cache_dir,
    )
    return TinyFamily(spec, tokenizer, {"base": base, "small_aligned": small, "large_aligned": large})


def build_tiny(
    config: TinyConfig | None = None, *, cache_dir: str | Path | None = None
) -> tuple[TinyData, list[TinyFamily]]:
    """The tiny data and every family's models (a second call loads them from the cache)."""
    config = config or TinyConfig()
    data = build_data(config)
    return data, [build_family(spec, data, config, cache_dir=cache_dir) for spec in config.families]
