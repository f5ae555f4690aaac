"""The tiny-scale data: a pretraining corpus and zero-shot multiple-choice tasks, a pure function of a seed.

The corpus mixes what the feasibility probe used (see the tiny-scale notes): encyclopedic facts about the
invented people and cities of `reprokit.world`, sums and counting sentences, and a small grammar with
subject-verb agreement. Held-out texts come from the same generators and are disjoint from the training
texts (exact-duplicate check). The tasks mirror the paper's zero-shot suite in spirit: six "common-sense"
kinds (fact completion, place-country matching, arithmetic, counting, grammaticality, odd-one-out) and a
knowledge test in question form (the MMLU analogue) about facts stated in the corpus only declaratively
(question-form training text covers the other (person, attribute) pairs, so the format is known).
Distractors come from the same value pool as the answer and gold positions are balanced per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from efficientllm.evaluation import MCItem
from reprokit.errors import ConfigError
from reprokit.world import World, make_world
from reprokit.world.util import article, sub_rng

__all__ = ["TASK_KINDS", "TinyWorld", "TinyWorldConfig", "make_tiny_world"]

#: Task names, the six common-sense analogues then the knowledge test (MMLU analogue).
TASK_KINDS: tuple[str, ...] = (
    "fact_completion",
    "place_country",
    "arithmetic",
    "counting",
    "grammar",
    "odd_one_out",
    "knowledge",
)
_NS = "efficientllm.world"
_QA_ATTRIBUTES = ("city", "profession", "hobby", "birth_year")
_QUESTIONS = {
    "city": "Question: In which city does {name} live?\nAnswer:",
    "profession": "Question: What is the job of {name}?\nAnswer:",
    "hobby": "Question: What does {name} enjoy?\nAnswer:",
    "birth_year": "Question: In which year was {name} born?\nAnswer:",
}
# (singular, plural, verb singular, verb plural) for the grammar; nouns and adjectives are fixed lists.
_NOUNS = (
    ("farmer", "farmers"), ("teacher", "teachers"), ("dog", "dogs"), ("cat", "cats"), ("child", "children"),
    ("bird", "birds"), ("sailor", "sailors"), ("horse", "horses"), ("doctor", "doctors"), ("fox", "foxes"),
)  # fmt: skip
_VERBS = (
    ("sees", "see"), ("likes", "like"), ("finds", "find"), ("follows", "follow"), ("carries", "carry"),
    ("watches", "watch"), ("helps", "help"), ("paints", "paint"),
)  # fmt: skip
_ADJECTIVES = ("tall", "small", "old", "young", "quiet", "happy", "red", "brown")
_OBJECTS = (
    ("lamp", "lamps"), ("box", "boxes"), ("cup", "cups"), ("kite", "kites"), ("bell", "bells"),
    ("chair", "chairs"), ("key", "keys"), ("ring", "rings"), ("hat", "hats"), ("drum", "drums"),
)  # fmt: skip
_CATEGORIES = {
    "color": ("red", "blue", "green", "yellow", "black", "white", "brown", "gray", "orange", "purple"),
    "material": ("wood", "steel", "glass", "clay", "paper", "stone", "leather", "wool", "copper", "brass"),
    "animal": ("dog", "cat", "horse", "fox", "bird", "goat", "sheep", "mouse", "wolf", "bear"),
    "fruit": ("apple", "pear", "plum", "grape", "lemon", "peach", "melon", "cherry", "mango", "banana"),
}
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True)
class TinyWorldConfig:
    """Sizes of the tiny world, corpus and tasks; the same config gives the same texts and items.

    The default corpus is about 400k tokens at a 512-token byte-level BPE (see the package README).
    `fact_repeats` is how many training paragraphs state each person's facts (template order varies);
    `qa_fraction` of the (person, attribute) pairs also appear in question form in training, the rest are
    the knowledge test. `heldout_fraction` sets the held-out size relative to the training texts.
    """

    seed: int = 0
    n_people: int = 300
    n_places: int = 24
    n_countries: int = 6
    fact_repeats: int = 6
    n_sum_docs: int = 2000
    n_count_docs: int = 2000
    n_grammar_docs: int = 2000
    n_category_docs: int = 600
    qa_fraction: float = 0.5
    heldout_fraction: float = 0.05
    max_number: int = 20
    items_per_task: int = 200
    n_choices: int = 4

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_people", "n_places", "fact_repeats", "items_per_task"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_sum_docs", "n_count_docs", "n_grammar_docs", "n_category_docs"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 2 <= self.n_choices <= 4:
            problems.append(f"n_choices must be 2, 3 or 4, got {self.n_choices}")
        if self.n_places < self.n_choices or self.n_countries < self.n_choices:
            problems.append(f"n_places and n_countries must be >= n_choices ({self.n_choices})")
        if not 0.0 < self.qa_fraction < 1.0:
            problems.append(f"qa_fraction must be in (0, 1), got {self.qa_fraction}")
        if not 0.0 < self.heldout_fraction < 1.0:
            problems.append(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        if self.max_number < 5:
            problems.append(f"max_number must be >= 5, got {self.max_number}")
        if problems:
            raise ConfigError("TinyWorldConfig: " + "; ".join(problems) + ".")


@dataclass(frozen=True)
class TinyWorld:
    """The corpus (`train_texts`, `heldout_texts`), the tasks by name, and the world they describe."""

    config: TinyWorldConfig
    world: World
    train_texts: tuple[str, ...]
    heldout_texts: tuple[str, ...]
    tasks: dict[str, list[MCItem]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- text
def _person_sentences(world: World) -> dict[str, dict[str, str]]:
    """Per person id: attribute -> one declarative sentence naming the person."""
    out = {}
    for p in world.people:
        out[p.id] = {
            "city": f"{p.name} lives in {p.city}.",
            "profession": f"{p.name} works as {article(p.profession)}.",
            "hobby": f"{p.name} enjoys {p.hobby}.",
            "birth_year": f"{p.name} was born in {p.birth_year}.",
        }
    return out


def _answer_text(world: World, person_id: str, attribute: str) -> str:
    return str(getattr(world.person(person_id), attribute))


def _person_doc(sentences: dict[str, str], rng) -> str:
    order = list(sentences.values())
    rng.shuffle(order)
    return " ".join(order)


def _place_doc(place, rng) -> str:
    parts = [f"{place.name} is a city in {place.country}."]
    extra = [f"{place.name} was founded in {place.founded}."]
    if place.river:
        extra.append(f"The river {place.river} flows through {place.name}.")
    rng.shuffle(extra)
    return " ".join(parts + extra)


def _sum_sentence(a: int, b: int) -> str:
    return f"{a} plus {b} is {a + b}."


def _sum_doc(cfg: TinyWorldConfig, rng) -> str:
    n = rng.randint(3, 6)
    return " ".join(
        _sum_sentence(rng.randint(0, cfg.max_number), rng.randint(0, cfg.max_number)) for _ in range(n)
    )


def _count_sentence(item: tuple[str, str], n: int) -> tuple[str, str]:
    """('I see lamp lamp lamp. That is', 'three lamps.') style context and answer."""
    listed = " ".join([item[0]] * n)
    return f"I see {listed}. That is", f"{_NUMBER_WORDS[n]} {item[0] if n == 1 else item[1]}."


def _count_doc(rng) -> str:
    out = []
    for _ in range(rng.randint(2, 4)):
        ctx, ans = _count_sentence(rng.choice(_OBJECTS), rng.randint(1, 9))
        out.append(f"{ctx} {ans}")
    return " ".join(out)


def _grammar_parts(rng) -> tuple[str, str, str]:
    """(subject phrase, verb singular/plural-correct, object phrase) of one grammatical sentence."""
    noun = rng.choice(_NOUNS)
    plural = rng.random() < 0.5
    subject = f"The {rng.choice(_ADJECTIVES)} {noun[1] if plural else noun[0]}"
    verb = rng.choice(_VERBS)
    obj_noun = rng.choice(_OBJECTS)
    obj = f"the {rng.choice(_ADJECTIVES)} {obj_noun[1] if rng.random() < 0.5 else obj_noun[0]}"
    return subject, verb[1] if plural else verb[0], obj


def _grammar_doc(rng) -> str:
    return " ".join(f"{s} {v} {o}." for s, v, o in (_grammar_parts(rng) for _ in range(rng.randint(2, 4))))


def _odd_one_out(rng, n_choices: int) -> tuple[list[str], str, str]:
    """Members of one category plus one word of another: (words in order, the odd word, the category)."""
    cat, other = rng.sample(sorted(_CATEGORIES), 2)
    members = rng.sample(_CATEGORIES[cat], n_choices - 1)
    odd = rng.choice([w for w in _CATEGORIES[other] if w not in _CATEGORIES[cat]])
    words = [*members, odd]
    rng.shuffle(words)
    return words, odd, cat


def _odd_context(words: Sequence[str], cat: str) -> str:
    return f"Of {', '.join(words[:-1])} and {words[-1]}, the one that is not {article(cat)} is"


def _category_doc(cfg: TinyWorldConfig, rng) -> str:
    out = []
    for _ in range(rng.randint(2, 3)):
        if rng.random() < 0.5:
            cat = rng.choice(sorted(_CATEGORIES))
            a, b, c = rng.sample(_CATEGORIES[cat], 3)
            out.append(f"{a.capitalize()}, {b} and {c} are each {article(cat)}.")
        else:
            words, odd, cat = _odd_one_out(rng, cfg.n_choices)
            out.append(f"{_odd_context(words, cat)} {odd}.")
    return " ".join(out)


# ------------------------------------------------------------------------------------------ tasks
def _balanced_items(raw: list[tuple[str, str, list[str]]], n_choices: int, rng) -> list[MCItem]:
    """MCItems from (context, gold, distractor pool), the gold at position i % n_choices; shuffled."""
    items = []
    for i, (context, gold, pool) in enumerate(raw):
        distractors = rng.sample([d for d in dict.fromkeys(pool) if d != gold], n_choices - 1)
        pos = i % n_choices
        items.append(MCItem(context, (*distractors[:pos], gold, *distractors[pos:]), pos))
    rng.shuffle(items)
    return items


def _sample(rng, population: Sequence, k: int) -> list:
    """`k` draws, without replacement while the population lasts."""
    out: list = []
    while len(out) < k:
        out += rng.sample(list(population), min(len(population), k - len(out)))
    return out


def make_tiny_world(config: TinyWorldConfig | None = None) -> TinyWorld:
    """Build the corpus and tasks of `config` (default `TinyWorldConfig()`); deterministic in the seed."""
    cfg = config or TinyWorldConfig()
    world = make_world(
        seed=cfg.seed, n_people=cfg.n_people, n_places=cfg.n_places, n_countries=cfg.n_countries
    )
    rng = lambda *parts: sub_rng(_NS, cfg.seed, *parts)  # noqa: E731
    facts = _person_sentences(world)

    # question-form pairs for training; the rest is the knowledge test
    pairs = [(p.id, a) for p in world.people for a in _QA_ATTRIBUTES]
    rng("qa-split").shuffle(pairs)
    n_qa = round(cfg.qa_fraction * len(pairs))
    qa_train, qa_test = pairs[:n_qa], pairs[n_qa:]

    # generated documents: each family gets 1 + heldout_fraction times its size, the extra goes held out
    def family(name: str, n: int, make) -> tuple[list[str], list[str]]:
        r = rng("docs", name)
        n_held = max(1, round(cfg.heldout_fraction * n)) if n else 0
        docs = [make(r) for _ in range(n + n_held)]
        return docs[:n], docs[n:]

    person_docs = [
        _person_doc(facts[p.id], rng("person", p.id, k))
        for k in range(cfg.fact_repeats)
        for p in world.people
    ]
    n_held_people = max(1, round(cfg.heldout_fraction * len(world.people)))
    held_people = [
        _person_doc(facts[p.id], rng("person-heldout", p.id)) for p in world.people[:n_held_people]
    ]
    place_docs = [_place_doc(c, rng("place", c.id, k)) for k in range(cfg.fact_repeats) for c in world.places]
    qa_docs = [
        f"{_QUESTIONS[a].format(name=world.person(pid).name)} {_answer_text(world, pid, a)}."
        for pid, a in qa_train
    ]
    train: list[str] = person_docs + place_docs + qa_docs
    held: list[str] = list(held_people)
    for name, n, make in (
        ("sums", cfg.n_sum_docs, lambda r: _sum_doc(cfg, r)),
        ("counts", cfg.n_count_docs, _count_doc),
        ("grammar", cfg.n_grammar_docs, _grammar_doc),
        ("categories", cfg.n_category_docs, lambda r: _category_doc(cfg, r)),
    ):
        t, h = family(name, n, make)
        train += t
        held += h
    train_set = set(train)
    heldout = tuple(dict.fromkeys(h for h in held if h not in train_set))
    order = list(dict.fromkeys(train))
    rng("shuffle").shuffle(order)

    k = cfg.n_choices
    n = cfg.items_per_task
    tasks: dict[str, list[MCItem]] = {}
    cities = [c.name for c in world.places]
    r = rng("task", "fact_completion")
    raw = []
    for p in _sample(r, world.people, n):
        attr = r.choice(("city", "profession", "hobby"))
        if attr == "city":
            raw.append((f"{p.name} lives in", f"{p.city}.", [f"{c}." for c in cities]))
        elif attr == "profession":
            raw.append(
                (
                    f"{p.name} works as",
                    f"{article(p.profession)}.",
                    [f"{article(x)}." for x in world.professions],
                )
            )
        else:
            raw.append((f"{p.name} enjoys", f"{p.hobby}.", [f"{h}." for h in world.hobbies]))
    tasks["fact_completion"] = _balanced_items(raw, k, r)

    r = rng("task", "place_country")
    raw = [
        (f"{c.name} is a city in", f"{c.country}.", [f"{x}." for x in world.countries])
        for c in _sample(r, world.places, n)
    ]
    tasks["place_country"] = _balanced_items(raw, k, r)

    r = rng("task", "arithmetic")
    raw = []
    top = 2 * cfg.max_number
    for _ in range(n):
        a, b = r.randint(0, cfg.max_number), r.randint(0, cfg.max_number)
        near = [str(a + b + d) for d in (-3, -2, -1, 1, 2, 3) if 0 <= a + b + d <= top]
        raw.append((f"{a} plus {b} is", f"{a + b}.", [f"{x}." for x in near]))
    tasks["arithmetic"] = _balanced_items(raw, k, r)

    r = rng("task", "counting")
    raw = []
    for _ in range(n):
        item, m = r.choice(_OBJECTS), r.randint(1, 9)
        ctx, ans = _count_sentence(item, m)
        others = [_count_sentence(item, x)[1] for x in range(1, 10) if x != m and abs(x - m) <= 3]
        raw.append((ctx, ans, others))
    tasks["counting"] = _balanced_items(raw, k, r)

    r = rng("task", "grammar")
    raw = []
    for _ in range(n):
        s, v, o = _grammar_parts(r)
        verb = next(pair for pair in _VERBS if v in pair)
        wrong = verb[1] if v == verb[0] else verb[0]
        other_obj = f"the {r.choice(_ADJECTIVES)} {r.choice(_OBJECTS)[0]}"
        bad = [f"{wrong} {o}.", f"{o} {v}.", f"{wrong} {other_obj}.", f"{v} {v} {o}."]
        raw.append((s, f"{v} {o}.", bad))
    tasks["grammar"] = _balanced_items(raw, k, r)

    r = rng("task", "odd_one_out")
    raw = []
    for _ in range(n):
        words, odd, cat = _odd_one_out(r, k)
        raw.append((_odd_context(words, cat), f"{odd}.", [f"{w}." for w in words]))
    tasks["odd_one_out"] = _balanced_items(raw, k, r)

    r = rng("task", "knowledge")
    pools = {
        "city": cities,
        "profession": list(world.professions),
        "hobby": list(world.hobbies),
        "birth_year": sorted({str(p.birth_year) for p in world.people}),
    }
    raw = [
        (
            _QUESTIONS[a].format(name=world.person(pid).name),
            f"{_answer_text(world, pid, a)}.",
            [f"{x}." for x in pools[a]],
        )
        for pid, a in _sample(r, qa_test, n)
    ]
    tasks["knowledge"] = _balanced_items(raw, k, r)

    return TinyWorld(cfg, world, tuple(order), heldout, tasks)
