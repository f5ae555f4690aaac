"""The tiny-scale setup: a synthetic world, two model families, and the five tiny tasks.

The world is built so that the paper's premises can hold at about 1M parameters (the reproduction
checks them, `table_knowledge` and the premise checks, before it scores any claim):
- *The large base model knows the facts and the arithmetic.* People have unambiguous names (no two
  share a first or a last name). Encyclopedia pages state each fact with the full name, first in one
  canonical sentence ("Ada Lee lives in Brenton.", the wording the answers' reasoning uses), then in
  paraphrases, in varied orders and in one-sentence biographies, regrouped on every repeat; some people
  also have question-answer text. Textbook solutions show the arithmetic step by step.
- *The base model is a base model.* Pretraining is one continuous stream with no end-of-sequence
  token after a text, so a base model runs on after its answer as real ones do. Its question-answer
  text mixes five plain answer styles, often after a plain lead-in ("Well, let me see."), and only
  rarely (`opening_share`) the aligned opening, so the opening of an answer is uncertain; the chat
  format is never seen in pretraining.
- *The small model knows less.* It is smaller, sees the pages of only part of the people, fewer times,
  and trains for fewer steps; after alignment it has the aligned style (opening, reasoning steps,
  "The answer is X.", end of sequence) but fewer facts and weaker arithmetic.
- *Alignment is style.* The alignment fine-tune is short (a few dozen steps) on chats about people and
  problems whose content the base already read, all answered in the aligned style.
Per family (own architecture, own BPE tokenizer): a large base model, a small aligned model and a large
aligned model (the large base, aligned the same way). Everything is cached by `reprokit.zoo`.

One seed drives it all (`build_tiny(config, seed=...)`, the reproduction's `--seed`): the world, the
text sets and evaluation items drawn from it, and the models' initialisation and training orders.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import PreTrainedTokenizerBase

from nudging.tasks import TaskItem, score, tiny_tasks
from nudging.world_reasoning import arithmetic_problems, coin_flip_tasks, last_letter_tasks
from reprokit.seed import derive_seed
from reprokit.tokenizer import train_tokenizer
from reprokit.world import (
    FACT_SENTENCES,
    SYSTEM_PROMPT,
    World,
    WorldConfig,
    chat_pairs,
    fact_questions,
    make_world,
    split_by_person,
)
from reprokit.world.util import article
from reprokit.zoo import TrainConfig, TrainedModel, encode_chats, encode_stream, train_cached

if TYPE_CHECKING:
    from nudging.evaluation import NudgingSetup
    from nudging.reproduce import TinySection
    from reprokit.lm import LanguageModel
    from reprokit.reproduce import RunContext

logger = logging.getLogger(__name__)

ROLES = ("base", "small_aligned", "large_aligned")
#: Plain-text probe prefixes of each fact attribute (the canonical fact sentence up to its value).
PROBE_PREFIX = {"city": "{name} lives in", "profession": "{name} works as"}
#: Ways the encyclopedia states a fact; the first is the canonical sentence (`reprokit.world.FACT_SENTENCES`:
#: the probes' and the answers' wording). Several wordings, and facts in varied orders, let a model answer
#: questions about people it only read about (knowledge stated one way only is recalled in that way only).
FACT_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "city": (
        FACT_SENTENCES["city"],
        "{name} has a home in {value}.",
        "The home of {name} is in {value}.",
        "{name} is a resident of {value}.",
    ),
    "profession": (
        FACT_SENTENCES["profession"],
        "{name} earns a living as {a_value}.",
        "{name} is {a_value} by profession.",
        "The job of {name} is that of {a_value}.",
    ),
}
#: Lead-ins of plain answers on the web ("Well, let me see."): a base model that has read answers after
#: many such sentences continues an answer after one it has rarely seen, such as an aligned opening.
LEAD_INS: tuple[str, ...] = (
    "Well, let me see.",
    "OK, here goes.",
    "Right, so.",
    "Let me explain.",
    "Hmm, good one.",
    "Here is how it works.",
    "Fine, I can answer that.",
    "Easy.",
)
#: One-sentence biographies stating both facts, in either order.
BIO_SENTENCES: tuple[str, ...] = (
    "{name} works as {a_profession} and lives in {city}.",
    "{name} lives in {city} and works as {a_profession}.",
    "{name}, {a_profession}, lives in {city}.",
    "{name}, who lives in {city}, works as {a_profession}.",
)


@dataclass(frozen=True)
class FamilySpec:
    """One model family: an architecture pair and its own tokenizer (vocabulary size)."""

    name: str
    large_recipe: str
    small_recipe: str
    vocab_size: int


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of the tiny world, corpus, models and training (see `reproduce/configs/nudging/tiny.toml`).

    There is no seed here: the seed is an argument of `build_tiny` (the reproduction's `--seed`).
    """

    n_people: int = 80
    n_first_names: int | None = None
    n_last_names: int | None = None
    distinct_name_parts: bool = True
    """No two people share a first or a last name (so a model cannot answer for a namesake)."""
    n_places: int = 10
    n_professions: int = 10
    fact_attributes: tuple[str, ...] = ("city", "profession")
    n_arithmetic: int = 400
    n_symbolic: int = 150
    n_eval: int = 30
    arithmetic_max_value: int = 10
    arithmetic_steps: int = 2
    opening_share: float = 0.05
    """Share of pretraining question-answer texts written in the aligned style (as web text)."""
    people_per_page: int = 5
    lead_in_share: float = 0.4
    """Share of the pretraining answers that show their reasoning that start with one of `LEAD_INS`."""
    bio_share: float = 0.3
    """Share of a page's people stated in one biography sentence (both facts) instead of one sentence
    per fact; after the first repeat (canonical sentences), facts use random `FACT_PARAPHRASES`."""
    doc_repeats: int = 20
    """How often the large model's corpus states each fact (each time in a fresh page grouping)."""
    small_people_share: float = 0.5
    """Share of the people whose pages the small model reads (it knows fewer facts)."""
    small_doc_repeats: int = 10
    qa_repeats: int = 3
    """Question-answer texts per fact of the QA people (each in freshly drawn styles)."""
    n_arithmetic_qa: int = 400
    """Pretraining arithmetic problems also shown as question-answer text (mixed styles)."""
    qa_fraction: float = 0.4
    align_fraction: float = 0.2
    n_align_arithmetic: int = 120
    n_align_symbolic: int = 60
    families: tuple[FamilySpec, ...] = (
        FamilySpec("llama", "llama-1m", "llama-0.3m", 1024),
        FamilySpec("neox", "gpt_neox-1m", "gpt_neox-0.3m", 1536),
    )
    large_pretrain: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=12.0, batch_size=6, lr=3e-3)
    )
    small_pretrain: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=8.0, batch_size=12, lr=3e-3)
    )
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3.0, batch_size=16, lr=1e-3))
    max_length: int = 160

    def __post_init__(self) -> None:
        for name in ("large_pretrain", "small_pretrain", "finetune"):
            if getattr(self, name).seed != 0:
                raise ValueError(
                    f"TinyConfig.{name}.seed is set; the training seed is the run seed "
                    f"(build_tiny(seed=...), --seed of the reproduction): remove `seed` from {name}."
                )

    def train_config(self, name: str, seed: int) -> TrainConfig:
        """`large_pretrain`, `small_pretrain` or `finetune`, seeded with the run seed."""
        return dataclasses.replace(getattr(self, name), seed=seed)


@dataclass(frozen=True)
class Probe:
    """A plain-text knowledge probe: a textbook-style prefix and the gold continuation."""

    kind: str  # "fact" | "arithmetic"
    prompt: str
    answer: str
    known_to_small: bool = True
    id: str = ""
    """The fact question's or word problem's id (an arithmetic probe shares it with the task item)."""


@dataclass(frozen=True)
class TinyData:
    """The world, the text sets, the evaluation tasks (items by task name) and knowledge probes."""

    world: World
    pretrain_texts: tuple[str, ...]
    small_pretrain_texts: tuple[str, ...]
    alignment_chats: tuple[tuple[dict[str, str], ...], ...]
    tasks: dict[str, tuple[TaskItem, ...]]
    probes: tuple[Probe, ...] = ()


@dataclass
class TinyFamily:
    """A trained family: tokenizer and its cached models (load with `.load(role)`).

    Roles: "base", "small_aligned", "large_aligned", and "small_base" (the small model before
    alignment, for the knowledge probes).
    """

    spec: FamilySpec
    tokenizer: PreTrainedTokenizerBase
    models: dict[str, TrainedModel]

    def load(self, role: str) -> LanguageModel:
        """The model of `role` with its tokenizer, in eval mode, on the CPU."""
        if role not in self.models:
            raise KeyError(f"unknown role {role!r}; choose from {tuple(self.models)}")
        return self.models[role].load()


def _qa_text(question: str, response: str, rng: random.Random) -> str:
    head = f"{SYSTEM_PROMPT}\n" if rng.random() < 0.5 else ""
    return f"{head}Question: {question}\n{response}"


def _qa_texts(
    items, config: TinyConfig, rng: random.Random, *, seed: int, multiple_choice: bool = False
) -> list[str]:
    """Plain question-answer text in the five mixed styles, plus (rarely) the aligned style.

    A lead-in announces an explanation, so it comes only before an answer that shows its reasoning.
    """
    mixed = chat_pairs(items, style="mixed", seed=seed, multiple_choice=multiple_choice)
    aligned = chat_pairs(items, style="aligned", seed=seed, multiple_choice=multiple_choice)
    plain = chat_pairs(items, style="plain", seed=seed, multiple_choice=multiple_choice)
    out = []
    for m, a, p in zip(mixed, aligned, plain, strict=True):
        reasoning = p.response.rsplit(" The answer is ", 1)[0]
        if rng.random() < config.opening_share:
            response = a.response
        elif m.response.startswith(reasoning) and rng.random() < config.lead_in_share:
            response = f"{rng.choice(LEAD_INS)} {m.response}"
        else:
            response = m.response
        out.append(_qa_text(m.instruction, response, rng))
    return out


@dataclass(frozen=True)
class PersonFacts:
    """What the encyclopedia says of one person: the full name and the value of each fact attribute."""

    name: str
    values: dict[str, str]

    def sentence(self, attribute: str, rng: random.Random | None = None) -> str:
        """One fact in the canonical wording, or in a random paraphrase when `rng` is given."""
        wordings = FACT_PARAPHRASES.get(attribute, ())
        if not wordings:
            raise ValueError(
                f"no wording for fact attribute {attribute!r}; use one of {tuple(FACT_PARAPHRASES)}"
            )
        template = rng.choice(wordings) if rng is not None else wordings[0]
        value = self.values[attribute]
        return template.format(name=self.name, value=value, a_value=article(value))

    def bio(self, rng: random.Random) -> str | None:
        """Both facts in one sentence (None unless the person has exactly a city and a profession)."""
        if set(self.values) != {"city", "profession"}:
            return None
        return rng.choice(BIO_SENTENCES).format(
            name=self.name, city=self.values["city"], a_profession=article(self.values["profession"])
        )


def fact_pages(
    facts: dict[str, PersonFacts],
    people: Sequence[str],
    *,
    per_page: int,
    repeats: int,
    seed: int,
    bio_share: float = 0.0,
) -> list[str]:
    """Encyclopedia pages: each repeat groups `people` afresh, `per_page` people a page.

    The first repeat states every fact in its canonical sentence; later ones in random paraphrases, in a
    random order, and a `bio_share` of the people in one biography sentence with both facts.
    """
    rng = random.Random(seed)
    pages = []
    for r in range(repeats):
        order = list(people)
        rng.shuffle(order)
        for i in range(0, len(order), per_page):
            sentences: list[str] = []
            for pid in order[i : i + per_page]:
                person = facts[pid]
                bio = person.bio(rng) if r > 0 and rng.random() < bio_share else None
                if bio is not None:
                    sentences.append(bio)
                    continue
                attributes = list(person.values)
                rng.shuffle(attributes)
                sentences += [person.sentence(a, rng if r > 0 else None) for a in attributes]
            pages.append(" ".join(sentences))
    return pages


def _child(seed: int, k: int) -> int:
    """Stream `k` of a run seed: the seed itself for k = 0, else a hash (`reprokit.seed.derive_seed`),
    never ``seed + k``, which would be another run seed's main stream."""
    return seed if k == 0 else derive_seed(seed, "nudging.tiny", k)


def build_data(config: TinyConfig, *, seed: int = 0) -> TinyData:
    """The tiny world and every text built from it (a pure function of `config` and `seed`).

    Parts draw from child seeds (`_child`: the small model's reading, question styles), hashed from
    `seed` so that no part of one run seed reuses another run seed's streams.
    """
    world = make_world(
        WorldConfig(
            seed=seed,
            n_people=config.n_people,
            n_first_names=config.n_first_names,
            n_last_names=config.n_last_names,
            n_places=config.n_places,
            n_professions=config.n_professions,
            distinct_name_parts=config.distinct_name_parts,
        )
    )
    ids = [p.id for p in world.people]
    eval_frac = 1.0 - config.qa_fraction - config.align_fraction
    groups = split_by_person(
        ids, {"qa": config.qa_fraction, "align": config.align_fraction, "eval": eval_frac}, seed=seed
    )
    rng = random.Random(seed)
    attrs = tuple(config.fact_attributes)
    facts = {p.id: PersonFacts(p.name, {a: str(getattr(p, a)) for a in attrs}) for p in world.people}
    pages = fact_pages(
        facts,
        ids,
        per_page=config.people_per_page,
        repeats=config.doc_repeats,
        seed=seed,
        bio_share=config.bio_share,
    )
    # The small model reads the pages of a random part of the people (the same share of every group).
    small_people = sorted(
        random.Random(_child(seed, 1)).sample(ids, round(config.small_people_share * len(ids)))
    )
    small_pages = fact_pages(
        facts,
        small_people,
        per_page=config.people_per_page,
        repeats=config.small_doc_repeats,
        seed=_child(seed, 1),
        bio_share=config.bio_share,
    )
    qa_people = fact_questions(world, attributes=attrs, seed=seed, people=groups["qa"])
    qa_texts: list[str] = []
    for r in range(config.qa_repeats):
        qa_texts += _qa_texts(qa_people, config, rng, seed=_child(seed, 2 * r))
        qa_texts += _qa_texts(qa_people, config, rng, seed=_child(seed, 2 * r + 1), multiple_choice=True)
    n_eval = config.n_eval
    arith = arithmetic_problems(
        config.n_arithmetic + config.n_align_arithmetic + n_eval,
        seed=seed,
        world=world,
        min_steps=config.arithmetic_steps,
        max_steps=config.arithmetic_steps,
        max_value=config.arithmetic_max_value,
    )
    arith_pre, arith_align = arith[: config.n_arithmetic], arith[config.n_arithmetic : -n_eval]
    n_sym = config.n_symbolic + config.n_align_symbolic + n_eval
    letters = last_letter_tasks(n_sym, seed=seed, world=world)
    coins = coin_flip_tasks(n_sym, seed=seed, world=world)
    sym_pre = letters[: config.n_symbolic] + coins[: config.n_symbolic]
    sym_align = letters[config.n_symbolic : -n_eval] + coins[config.n_symbolic : -n_eval]
    arith_texts = [p.textbook for p in arith_pre]
    sym_texts = _qa_texts(sym_pre, config, rng, seed=seed)
    arith_qa = _qa_texts(arith_pre[: config.n_arithmetic_qa], config, rng, seed=seed)
    skills = qa_texts + arith_texts + arith_qa + sym_texts
    pretrain = pages + skills
    rng.shuffle(pretrain)
    small = small_pages + skills
    rng.shuffle(small)
    align_people = fact_questions(world, attributes=attrs, seed=seed, people=groups["align"])
    align_items = chat_pairs(align_people, style="aligned", seed=seed)
    align_items += chat_pairs(align_people, style="aligned", seed=_child(seed, 1), multiple_choice=True)
    align_items += chat_pairs([*arith_align, *sym_align], style="aligned", seed=seed)
    chats = tuple(tuple(p.messages(system=SYSTEM_PROMPT)) for p in align_items)
    eval_people = fact_questions(world, attributes=attrs, seed=seed, people=groups["eval"])
    tasks = tiny_tasks(
        arithmetic=arith[-n_eval:],
        facts=eval_people,
        last_letter=letters[-n_eval:],
        coin_flip=coins[-n_eval:],
        n=n_eval,
        seed=seed,
    )
    small_set = set(small_people)
    names = {p.id: p.name for p in world.people}
    probes = tuple(
        Probe(
            "fact",
            PROBE_PREFIX[q.attribute].format(name=names[q.entity_id]),
            q.answer,
            q.entity_id in small_set,
            q.id,
        )
        for q in eval_people
        if q.attribute in PROBE_PREFIX
    ) + tuple(
        Probe("arithmetic", f"Problem: {p.question}\nSolution:", str(p.answer), id=p.id)
        for p in arith[-n_eval:]
    )
    return TinyData(world, tuple(pretrain), tuple(small), chats, tasks, probes)


def build_family(
    spec: FamilySpec,
    data: TinyData,
    config: TinyConfig,
    *,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> TinyFamily:
    """Train (or fetch from the cache) one family's tokenizer and models; `seed` initialises the models
    and orders their training examples."""
    tokenizer = train_tokenizer(
        [*data.pretrain_texts, *(m["content"] for c in data.alignment_chats for m in c)],
        vocab_size=spec.vocab_size,
        chat_template=True,
    )
    # Pretraining is one continuous stream (no end-of-sequence after a text), as for real base models.
    pre = encode_stream(tokenizer, data.pretrain_texts, block_size=config.max_length)
    small_pre = encode_stream(tokenizer, data.small_pretrain_texts, block_size=config.max_length)
    chats = encode_chats(tokenizer, data.alignment_chats, max_length=config.max_length)
    base = train_cached(
        spec.large_recipe,
        tokenizer,
        pre,
        config.train_config("large_pretrain", seed),
        name=f"nudging-{spec.name}-base",
        cache_dir=cache_dir,
    )
    small_base = train_cached(
        spec.small_recipe,
        tokenizer,
        small_pre,
        config.train_config("small_pretrain", seed),
        name=f"nudging-{spec.name}-small-base",
        cache_dir=cache_dir,
    )
    small = train_cached(
        small_base,
        tokenizer,
        chats,
        config.train_config("finetune", seed),
        name=f"nudging-{spec.name}-small-aligned",
        cache_dir=cache_dir,
    )
    large = train_cached(
        base,
        tokenizer,
        chats,
        config.train_config("finetune", seed),
        name=f"nudging-{spec.name}-large-aligned",
        cache_dir=cache_dir,
    )
    return TinyFamily(
        spec,
        tokenizer,
        {"base": base, "small_aligned": small, "large_aligned": large, "small_base": small_base},
    )


def build_tiny(
    config: TinyConfig | None = None, *, seed: int = 0, cache_dir: str | Path | None = None
) -> tuple[TinyData, list[TinyFamily]]:
    """The tiny data and every family's models for `seed` (a second call loads them from the cache)."""
    config = config or TinyConfig()
    data = build_data(config, seed=seed)
    return data, [
        build_family(spec, data, config, seed=seed, cache_dir=cache_dir) for spec in config.families
    ]


def probe_knowledge(
    lm: LanguageModel,
    probes: Sequence[Probe],
    *,
    batch_size: int = 16,
) -> list[bool]:
    """Greedy plain-text completion of each probe: does the model state the gold fact / final number?

    A fact probe ("Ada Lee lives in") is right when the completion's first sentence contains the value;
    an arithmetic probe ("Problem: ...\\nSolution:") when the last number of the solution line is right.
    """
    from reprokit.generation import generate_texts

    out: list[bool] = []
    for kind, max_new in (("fact", 8), ("arithmetic", 72)):
        group = [p for p in probes if p.kind == kind]
        if not group:
            continue
        texts = generate_texts(lm, [p.prompt for p in group], max_new_tokens=max_new, batch_size=batch_size)
        for p, text in zip(group, texts, strict=True):
            first = text.split("\n")[0]
            if kind == "fact":
                item = TaskItem("probe", "probe", p.prompt, p.answer, "text")
                out.append(score(item, first.split(".")[0] + "."))
            else:
                out.append(score(TaskItem("probe", "probe", p.prompt, p.answer, "number"), first))
    # restore the probes' order
    order = [p for kind in ("fact", "arithmetic") for p in probes if p.kind == kind]
    by_id = {id(p): ok for p, ok in zip(order, out, strict=True)}
    return [by_id[id(p)] for p in probes]


def setup(section: TinySection, ctx: RunContext) -> NudgingSetup:
    """One seed of the tiny reproduction: the world and every family's models built with ``ctx.seed``
    (trained once, then loaded from the cache), the section's tasks, and every ordered pair of families
    for the cross-family table."""
    from nudging.evaluation import Family, NudgingSetup

    data, trained = build_tiny(section.setup, seed=ctx.seed, cache_dir=ctx.cache_dir)
    families = [
        Family(
            f.spec.name,
            f.load("base"),
            f.load("small_aligned"),
            f.load("large_aligned"),
            section.nudging.gamma,
            f.load("small_base"),
        )
        for f in trained
    ]
    tasks = {t: data.tasks[t] for t in section.tasks}
    pairs = list(itertools.permutations(families, 2))
    return NudgingSetup(ctx, section, families, tasks, cross_pairs=pairs, probes=data.probes)
