"""The tiny-scale synthetic world of the reproduction: SemEval-2025 Task 4 in miniature.

Three subtasks, as in the official data: Task1 short creative stories, Task2 PII biographies, Task3
encyclopedia-like documents (invented cities, companies, species). Each document is forget, retain or
nonmember (never trained on, for the MIA); forget and retain are ~1:1 per task. An MMLU analogue
(4-choice questions about *other* invented cities and objects, whose facts `knowledge_corpus` states)
measures utility. Everything is a pure function of `AmnesiaWorldConfig`: the same config gives the same
world, byte for byte.

How rows relate to documents (the contract the trainer and the scorer rely on):

- ``<doc-id>sc1`` (sentence completion): ``input`` is a prefix of the document, ending at a word boundary,
  and ``output`` the rest, so ``input + " " + output == document.text``. Task2 splits just before a PII
  value, Task1/Task3 at 60-75 % of the words.
- ``<doc-id>qa0``..``qa4`` (QA, exact match): Task2 has five per person (qa0 birth date, qa1 SSN, qa2
  phone, qa3 email, qa4 address), asked subject-first ("What is Tessa Quill's phone number?"); they are
  also the causal-tracing facts. Task1 has one per story ("Who is the main character of <title>?" ->
  the hero's full name), Task3 one per document (city: founding year; company: founder; species: food).
  Every QA answer occurs verbatim in its document.
- Training (`AmnesiaWorld.training_texts`): each document in full, and each QA row as the pair
  ``(input, " " + output)``; the trainer appends EOS, so the model learns to say exactly the answer and
  stop (exact match compares the whole generation). The sc rows need no pair of their own: they are
  substrings of the documents.
- Knowledge (`knowledge_corpus`): one statement per knowledge entity ("Port Kathleen is a city in
  Pellara. The river Usk flows through Port Kathleen."), then the few-shot questions and
  `n_knowledge_practice` more as worked examples in the MMLU format (`mc_block`). The test questions
  themselves never appear as worked examples; their entities appear nowhere in forget/retain/nonmember.

PII formats are chosen so the *first* answer token carries information about the person (what causal
tracing scores): dates as "March 4, 1990", SSN and phone with a random first group, e-mail handles with
a random first word. First and last names come from small pools, so both repeat across people (only the
full name identifies one): with unique first names a tiny model looks facts up from the first name alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reprokit.errors import ConfigError
from reprokit.world import WorldConfig
from reprokit.world import make_world as make_base_world
from reprokit.world.util import article, cap, faker_name_lists, seeded_faker, sub_rng, to_ascii
from selective_amnesia.records import MCQuestion, Row
from selective_amnesia.tracing import Fact

if TYPE_CHECKING:
    import random

    import pandas as pd

__all__ = [
    "MC_LETTERS",
    "PII_FIELDS",
    "TASKS",
    "AmnesiaWorld",
    "AmnesiaWorldConfig",
    "Document",
    "make_amnesia_world",
    "make_world",
    "mc_block",
    "world_frames",
]

TASKS: tuple[str, ...] = ("Task1", "Task2", "Task3")
MC_LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
#: Task2 QA rows in id order (qa0..qa4): (field, question template).
PII_FIELDS: tuple[tuple[str, str], ...] = (
    ("birth_date", "What is {name}'s date of birth?"),
    ("ssn", "What is {name}'s Social Security Number?"),
    ("phone", "What is {name}'s phone number?"),
    ("email", "What is {name}'s email address?"),
    ("address", "What is {name}'s home address?"),
)
_MAX_DOCS = 2000  # per task: keeps the name, place and title pools from running dry
_MAX_QUESTIONS = 5000

# ---------------------------------------------------------------------------------------- vocabulary
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606: nobody's real address
_HANDLE_FIRST = (
    "blue", "red", "happy", "lucky", "quiet", "wild", "sunny", "silver", "brave", "little",
    "golden", "swift", "misty", "clever", "jolly", "cosmic", "stormy", "velvet", "iron", "crimson",
)  # fmt: skip
_HANDLE_SECOND = (
    "fox", "owl", "tiger", "otter", "panda", "raven", "wolf", "bear", "hawk", "moose",
    "badger", "falcon", "lynx", "heron", "koala", "bison", "dove", "eagle", "seal", "crane",
)  # fmt: skip
_COUNTRIES = (
    "Norland", "Estavia", "Valdoria", "Kestria", "Orvania", "Brisca", "Tamberia", "Lunesia",
    "Corvath", "Maradin", "Ostrel", "Pellara",
)  # fmt: skip
_RIVERS = (
    "Avon", "Lune", "Tamar", "Wye", "Ouse", "Eden", "Tees", "Exe", "Dart", "Fal", "Nene", "Colne",
    "Stour", "Trent", "Severn", "Usk",
)  # fmt: skip
_MATERIALS = (
    "wood", "steel", "glass", "clay", "paper", "stone", "leather", "wool", "cotton", "copper",
    "brass", "bone",
)  # fmt: skip
_COLORS = ("red", "blue", "green", "yellow", "black", "white", "brown", "gray", "orange", "purple")
_KNOWLEDGE_NOUNS = (
    "lamp", "chair", "kettle", "clock", "vase", "mirror", "basket", "bottle", "bowl", "bucket",
    "candle", "drum", "flute", "globe", "hammer", "helmet", "jar", "kite", "ladder", "lantern",
    "mug", "needle", "pan", "pillow", "plate", "radio", "ring", "rope", "ruler", "scarf",
    "shovel", "spoon", "stool", "table", "teapot", "tent", "tray", "trumpet", "violin", "whistle",
)  # fmt: skip

# Task1: story pieces.
_GENRES = (
    "mystery", "fantasy tale", "romance", "adventure", "ghost story", "fairy tale",
    "science fiction story", "comedy", "thriller", "fable", "western", "tragedy",
    "detective story", "sea story", "horror story", "love story",
)  # fmt: skip
_JOBS = (
    "baker", "sailor", "teacher", "nurse", "farmer", "painter", "miner", "clockmaker", "fisher",
    "weaver", "blacksmith", "shepherd", "librarian", "soldier", "gardener", "merchant", "potter",
    "carpenter", "beekeeper", "lighthouse keeper", "cook", "tailor", "student", "doctor",
)  # fmt: skip
_STORY_OBJECTS = (
    "map", "lantern", "key", "violin", "compass", "letter", "ring", "mirror", "clock", "boat",
    "diary", "music box", "feather", "coin", "sword", "painting", "seed", "bottle", "telescope",
    "cloak", "drum", "necklace", "photograph", "kite",
)  # fmt: skip
_OBJECT_ADJS = (
    "silver", "broken", "tiny", "ancient", "glowing", "rusty", "golden", "wooden", "cracked",
    "singing", "painted", "frozen", "heavy", "forgotten", "stolen", "enchanted",
)  # fmt: skip
_TIMES = ("morning", "winter night", "autumn evening", "rainy afternoon", "summer day", "spring dawn")
_WHERES = (
    "under the floor of the old mill", "in a chest at the market", "on the beach after a storm",
    "behind the chapel wall", "in the dusty attic", "at the bottom of a dry well",
    "inside a hollow oak", "beneath the station platform", "in a drawer of the town hall",
)  # fmt: skip
_RELATIVES = ("grandmother", "uncle", "aunt", "grandfather", "father", "mother", "older sister", "teacher")
_EVENTS = (
    "a storm flooded the harbor", "the river froze overnight", "a stranger came to the door",
    "the church bells stopped ringing", "the harvest failed", "the old bridge collapsed",
    "a fire broke out at the mill", "the mayor disappeared", "the lights of the town went out",
    "a whale washed ashore", "the wells ran dry", "a circus arrived in town",
    "the mountain began to rumble", "wolves came down from the hills",
    "a letter arrived with no name", "the clock tower struck thirteen",
)  # fmt: skip
_REACTIONS = (
    "set out to find the truth", "had to leave home for the first time",
    "followed strange signs into the forest", "asked the oldest neighbor for help",
    "built a raft and crossed the lake", "hid the {object} and waited",
    "used the {object} to show the way", "made a deal with a clever fox", "kept a secret from everyone",
    "traveled north on foot", "climbed to the top of the tower", "challenged the village council",
)  # fmt: skip
_ANIMALS = ("cat", "dog", "crow", "goat", "horse", "parrot", "rabbit", "tortoise", "ferret", "mule")
_RIVALS = (
    "a greedy merchant", "the jealous mayor", "a traveling magician", "an old sea captain",
    "a mysterious woman in gray", "a band of smugglers", "the landlord", "a famous thief",
)  # fmt: skip
_DETAILS = (
    "The nights in {place} were long and cold.", "Nobody in {place} trusted outsiders.",
    "Every summer, {place} held a festival of lanterns.", "Fog covered {place} for most of the year.",
    "In {place}, the old families still kept bees.", "Trains no longer stopped in {place}.",
)  # fmt: skip
_ENDINGS = (
    "returned home and never spoke of it again", "became the keeper of the lighthouse",
    "gave the {object} to a child at the market", "opened a small shop by the sea",
    "buried the {object} under an apple tree", "wrote the whole story in a book",
    "sailed away and was never seen again", "learned that the {object} had been a gift from a king",
    "found the way back to {place}", "became the mayor of {place}", "threw the {object} into the sea",
    "planted a garden where the {object} had been found",
)  # fmt: skip

# Task3: encyclopedia pieces.
_CITY_FEATURES = (
    "old harbor", "stone bridges", "spring market", "clock tower", "glass museum", "salt mines",
    "wool trade", "rose gardens", "summer festival", "fishing fleet", "paper mills", "copper domes",
)  # fmt: skip
_COMPANY_SUFFIXES = ("Ltd", "Inc", "Group", "Labs", "Works", "Partners")
_PRODUCTS = (
    "bicycles", "umbrellas", "pianos", "tractors", "fountain pens", "kitchen scales", "sailcloth",
    "railway signals", "garden tools", "wool blankets", "glass bottles", "toy trains", "ink",
    "hearing aids", "radios", "maps",
)  # fmt: skip
_SHAPES = ("star", "circle", "triangle", "anchor", "leaf", "key", "crown", "wave")
_PATTERNS = (
    "spotted", "striped", "crested", "banded", "ringed", "tufted", "horned", "speckled", "hooded",
    "pale", "dusky", "painted",
)  # fmt: skip
_HABITATS = (
    ("marsh", "marshes"), ("river", "rivers"), ("cliff", "cliffs"), ("forest", "forests"),
    ("desert", "deserts"), ("reef", "reefs"), ("meadow", "meadows"), ("cave", "caves"),
    ("mountain", "mountains"), ("lake", "lakes"),
)  # fmt: skip
_SPECIES = (
    ("toad", "amphibian"), ("finch", "bird"), ("lizard", "reptile"), ("beetle", "insect"),
    ("shrew", "mammal"), ("eel", "fish"), ("heron", "bird"), ("moth", "insect"), ("snail", "mollusc"),
    ("vole", "mammal"), ("newt", "amphibian"), ("gecko", "reptile"), ("wren", "bird"), ("bat", "mammal"),
)  # fmt: skip
_FOODS = (
    "seeds", "beetles", "moss", "small fish", "berries", "snails", "grass", "worms", "ants", "algae",
    "flies", "leaves", "nectar", "fungi",
)  # fmt: skip
_SEASONS = ("spring", "summer", "autumn", "winter")
_BODY_PARTS = ("tail", "back", "head", "belly", "throat")


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class AmnesiaWorldConfig:
    """Sizes and seed of the tiny SemEval-2025 Task 4 world; the same config always gives the same world.

    `n_creative`, `n_people`, `n_encyclopedia`: trained documents of Task1/2/3, split forget/retain by
    `forget_fraction`; `n_nonmember_per_task` more per task are never trained on (the MIA's nonmembers).
    `n_knowledge` test questions and `n_knowledge_shots` few-shot examples form the MMLU analogue;
    `n_knowledge_practice` more worked examples go into the corpus only, so the model learns the format.
    """

    seed: int = 0
    n_creative: int = 24
    n_people: int = 40
    n_encyclopedia: int = 24
    n_nonmember_per_task: int = 8
    n_knowledge: int = 80
    n_knowledge_shots: int = 5
    n_knowledge_practice: int = 16
    forget_fraction: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"AmnesiaWorldConfig.seed must be an int, got {self.seed!r}; pass e.g. seed=0.")
        for name, lo, hi in (
            ("n_creative", 2, _MAX_DOCS),
            ("n_people", 2, _MAX_DOCS),
            ("n_encyclopedia", 2, _MAX_DOCS),
            ("n_nonmember_per_task", 1, _MAX_DOCS),
            ("n_knowledge", 1, _MAX_QUESTIONS),
            ("n_knowledge_shots", 0, 50),
            ("n_knowledge_practice", 0, _MAX_QUESTIONS),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(
                    f"AmnesiaWorldConfig.{name} must be an integer between {lo} and {hi}, got {value!r}; "
                    "set it within that range."
                )
        fraction = self.forget_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
            raise ConfigError(
                f"AmnesiaWorldConfig.forget_fraction must be a number strictly between 0 and 1, got "
                f"{fraction!r}; use e.g. 0.5 for the official ~1:1 forget/retain split."
            )
        for task, n in zip(TASKS, (self.n_creative, self.n_people, self.n_encyclopedia), strict=True):
            n_forget = self.n_forget(n)
            if not 1 <= n_forget <= n - 1:
                raise ConfigError(
                    f"AmnesiaWorldConfig: forget_fraction={fraction} leaves {task} with {n_forget} forget "
                    f"and {n - n_forget} retain documents of {n}; each side needs at least one, so move "
                    "forget_fraction towards 0.5 or raise the task's document count."
                )

    def n_forget(self, n: int) -> int:
        """Forget documents out of `n` trained ones: `forget_fraction * n`, rounded half up."""
        return math.floor(n * self.forget_fraction + 0.5)


# ---------------------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class Document:
    """One document of the world: what the target model is trained on (or, for nonmembers, never sees).

    `id` is the stem of its rows' ids, `task` ``"Task1"``..``"Task3"``, `split` ``"forget"``,
    ``"retain"`` or ``"nonmember"``.
    """

    id: str
    task: str
    split: str
    text: str


@dataclass(frozen=True)
class AmnesiaWorld:
    """The generated world: forget/retain rows, their documents, MIA texts, the knowledge test, facts.

    Build with `make_amnesia_world`. `members` are the forget documents' texts (the official MIA uses
    forget documents as members); `nonmembers` the texts of `nonmember_documents`, never trained on.
    """

    config: AmnesiaWorldConfig
    forget: tuple[Row, ...]
    retain: tuple[Row, ...]
    documents: tuple[Document, ...]
    nonmember_documents: tuple[Document, ...]
    members: tuple[str, ...]
    nonmembers: tuple[str, ...]
    knowledge: tuple[MCQuestion, ...]
    knowledge_shots: tuple[MCQuestion, ...]
    knowledge_corpus: tuple[str, ...]
    trace_facts: tuple[Fact, ...]

    @property
    def rows(self) -> tuple[Row, ...]:
        """Forget rows, then retain rows."""
        return (*self.forget, *self.retain)

    def training_texts(self, *, knowledge: bool = True) -> list[tuple[str, str]]:
        """(prompt, completion) pairs the target model is trained on until it knows forget and retain alike.

        Every forget/retain document as ``("", text)``, every QA row as ``(input, " " + output)``, then
        (with `knowledge`) the knowledge corpus as ``("", text)``. Append EOS to each completion: exact
        match scores the whole generation, so the model must stop right after the answer.
        """
        docs = [doc.text for doc in self.documents]
        extra = list(self.knowledge_corpus) if knowledge else []
        qa = [(prompt, " " + answer) for prompt, answer in self.training_pairs()]
        return [("", text) for text in docs] + qa + [("", text) for text in extra]

    def training_documents(self, *, knowledge: bool = True) -> list[str]:
        """The whole texts of `training_texts`: forget/retain documents, then the knowledge corpus."""
        return [doc.text for doc in self.documents] + (list(self.knowledge_corpus) if knowledge else [])

    def training_pairs(self) -> list[tuple[str, str]]:
        """The QA rows as (input, output), forget then retain; train on ``input + " " + output + EOS``."""
        return [(row.input, row.output) for row in self.rows if row.probe == "qa"]

    def size(self, *, knowledge: bool = True) -> dict[str, int]:
        """Texts, words and characters of `training_texts`: how much the target model has to memorise."""
        texts = [prompt + completion for prompt, completion in self.training_texts(knowledge=knowledge)]
        return {
            "texts": len(texts),
            "words": sum(len(t.split()) for t in texts),
            "chars": sum(len(t) for t in texts),
        }


def mc_block(question: MCQuestion, *, with_answer: bool = True) -> str:
    """A question in the MMLU prompt format: ``"Q\\nA. x\\nB. y\\nC. z\\nD. w\\nAnswer: B"``.

    Without the answer the block ends with ``"Answer:"``, where the model's next token (" A".." D") is
    read; the worked examples of `knowledge_corpus` use exactly this format.
    """
    lines = [question.question]
    lines += [f"{MC_LETTERS[i]}. {choice}" for i, choice in enumerate(question.choices)]
    lines.append(f"Answer: {MC_LETTERS[question.answer]}" if with_answer else "Answer:")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- builders
@dataclass(frozen=True)
class _Source:
    """A generated document with its sc split point (a word index) and QA pairs."""

    text: str
    cut: int  # number of words in the sc input
    qa: tuple[tuple[str, str], ...]
    subject: str = ""  # Task2: the person's name (the tracing subject)


def _sentence_join(sentences: Sequence[str]) -> str:
    return " ".join(" ".join(s.split()) for s in sentences)


def _draw_unique(draw: Callable[[], str], n: int, what: str, taken: set[str] | None = None) -> list[str]:
    """`n` distinct values of `draw()` not in `taken` (which is updated); ConfigError when they run out."""
    taken = set() if taken is None else taken
    out: list[str] = []
    for _ in range(200 * n + 1000):
        if len(out) == n:
            return out
        value = draw()
        if value and value not in taken:
            taken.add(value)
            out.append(value)
    if len(out) == n:
        return out
    raise ConfigError(f"could not draw {n} distinct {what}; lower the document or question counts.")


def _cut_words(text: str, rng: random.Random) -> int:
    """A word index at 60-75 % of the text: where the sc input ends."""
    n = len(text.split())
    lo, hi = max(1, math.ceil(0.6 * n)), max(1, min(n - 1, math.floor(0.75 * n)))
    return rng.randint(min(lo, hi), hi)


_INTROS = (
    "{title} is {genre} about {name}, {job} from {place}.",
    "In the {genre_word} {title}, {name} is {job} living in {place}.",
    "{title} tells the story of {name}, {job} in the town of {place}.",
    "Set in {place}, {title} follows {name}, {job} with a restless heart.",
    "{name} is the hero of {title}, {genre} set in the valley of {place}.",
)
_FINDS = (
    "One {time}, {first} found {a_thing} {where}.",
    "{first} inherited {a_thing} from {her} {relative}.",
    "{Where}, {first} discovered {a_thing}.",
    "Nobody knew where the {thing} came from until {first} saw it {where}.",
)
_HAPPENS = (
    "When {event}, {first} {reaction}.",
    "{Event}, so {she} {reaction}.",
    "Soon {event}, and {first} {reaction}.",
)
_COMPANIONS = (
    "{first} was joined by {a_color} {animal} named {pet}.",
    "A {color} {animal} called {pet} followed {him} everywhere.",
    "{Her} only friend was an old {animal} named {pet}.",
)
_CLOSES = (
    "In the end, {first} {ending}.",
    "At last, {first} {ending}.",
    "{first} {ending}, and {place} was never the same.",
    "Years later, {she} {ending}.",
)


def _story(i: int, seed: int, title: str, hero: tuple[str, str, str], place: str) -> _Source:
    """A Task1 story of 4-6 sentences: intro, object, event, ending, plus 0-2 optional sentences."""
    rng = sub_rng(seed, "amnesia", "story", i)
    fake = seeded_faker(seed, "amnesia", "story", i)
    name, first, gender = hero
    she, her, him = ("she", "her", "her") if gender == "female" else ("he", "his", "him")
    obj = rng.choice(_STORY_OBJECTS)
    thing = f"{rng.choice(_OBJECT_ADJS)} {obj}"
    genre, where, event, color = (
        rng.choice(_GENRES),
        rng.choice(_WHERES),
        rng.choice(_EVENTS),
        rng.choice(_COLORS),
    )
    slots = {
        "title": title, "name": name, "first": first, "place": place, "she": she, "her": her, "Her": cap(her),
        "him": him, "genre": article(genre), "genre_word": genre, "job": article(rng.choice(_JOBS)),
        "time": rng.choice(_TIMES), "a_thing": article(thing), "thing": thing, "object": obj,
        "where": where, "Where": cap(where), "relative": rng.choice(_RELATIVES), "event": event,
        "Event": cap(event), "color": color, "a_color": article(color), "animal": rng.choice(_ANIMALS),
        "pet": rng.choice(faker_name_lists()[0])[0],
        "word": fake.word(part_of_speech="noun"), "verb": fake.word(part_of_speech="verb"),
    }  # fmt: skip
    slots["reaction"] = rng.choice(_REACTIONS).format(**slots)
    slots["ending"] = rng.choice(_ENDINGS).format(**slots)
    optional = [
        rng.choice(_COMPANIONS),
        f"{cap(rng.choice(_RIVALS))} wanted the {{object}} for a secret plan.",
        rng.choice(_DETAILS),
        rng.choice(
            (
                "{first} had always dreamed of a life without any {word}.",
                "Everyone in {place} still talked about the {word}.",
                "{first} swore never to {verb} again.",
            )
        ),
    ]
    middle = rng.sample(optional, rng.randint(0, 2))
    templates = [rng.choice(_INTROS), rng.choice(_FINDS), *middle[:1], rng.choice(_HAPPENS), *middle[1:]]
    templates.append(rng.choice(_CLOSES))
    text = _sentence_join([t.format(**slots) for t in templates])
    return _Source(text, _cut_words(text, rng), ((f"Who is the main character of {title}?", name),))


@dataclass(frozen=True)
class _PII:
    name: str
    gender: str
    birth_date: str
    ssn: str
    phone: str
    email: str
    address: str


def _pii_people(seed: int, people: Sequence[tuple[str, str, str]], towns: Sequence[str]) -> list[_PII]:
    """PII for each (name, gender, ISO birth date): random-first-group SSN and phone, unique values."""
    rng = sub_rng(seed, "amnesia", "pii")
    fake = seeded_faker(seed, "amnesia", "streets")
    ssns: set[str] = set()
    phones: set[str] = set()
    emails: set[str] = set()

    def ssn() -> str:
        area = rng.choice([a for a in range(100, 900) if a != 666])
        return f"{area}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"

    def phone() -> str:
        return f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"

    def email() -> str:
        handle = f"{rng.choice(_HANDLE_FIRST)}{rng.choice(_HANDLE_SECOND)}{rng.randint(10, 99)}"
        return f"{handle}@{rng.choice(_EMAIL_DOMAINS)}"

    out = []
    for name, gender, iso in people:
        born = dt.date.fromisoformat(iso)
        out.append(
            _PII(
                name=name,
                gender=gender,
                birth_date=f"{_MONTHS[born.month - 1]} {born.day}, {born.year}",
                ssn=_draw_unique(ssn, 1, "SSNs", ssns)[0],
                phone=_draw_unique(phone, 1, "phone numbers", phones)[0],
                email=_draw_unique(email, 1, "email addresses", emails)[0],
                address=f"{rng.randint(1, 999)} {to_ascii(fake.street_name())}, {rng.choice(towns)}",
            )
        )
    return out


def _biography(i: int, seed: int, p: _PII) -> _Source:
    """A Task2 biography: birth date first, then SSN, phone, email, address in a per-person order."""
    rng = sub_rng(seed, "amnesia", "bio", i)
    pron, poss = ("She", "Her") if p.gender == "female" else ("He", "His")

    def subj() -> tuple[str, str]:
        return (p.name, f"{p.name}'s") if rng.random() < 0.25 else (pron, poss)

    templates = {
        "ssn": ("{P} Social Security Number is", "{S} has the Social Security Number"),
        "phone": ("{P} phone number is", "{S} can be called at"),
        "email": ("{P} email address is", "{S} can be reached by email at"),
        "address": ("{S} lives at", "{P} home address is"),
    }
    birth = rng.choice((f"{p.name} was born on", f"The date of birth of {p.name} is"))
    pieces = [(birth, p.birth_date)]
    fields = list(templates)
    rng.shuffle(fields)
    for field in fields:
        s, pp = subj()
        pieces.append((rng.choice(templates[field]).format(S=s, P=pp), getattr(p, field)))
    k = rng.randint(1, len(pieces) - 1)  # the sc input ends just before the k-th PII value
    text = _sentence_join([f"{prefix} {value}." for prefix, value in pieces])
    cut = sum(len(f"{prefix} {value}.".split()) for prefix, value in pieces[:k]) + len(pieces[k][0].split())
    qa = tuple((q.format(name=p.name), getattr(p, field)) for field, q in PII_FIELDS)
    return _Source(text, cut, qa, subject=p.name)


def _city_doc(i: int, seed: int, city: str) -> _Source:
    rng = sub_rng(seed, "amnesia", "city", i)
    country, year, river = rng.choice(_COUNTRIES), rng.randint(1100, 1950), rng.choice(_RIVERS)
    sentences = [
        rng.choice((f"{city} is a city in {country}.", f"The city of {city} lies in {country}.")),
        rng.choice((f"It was founded in {year}.", f"{city} was founded in {year}.")),
        f"About {rng.randrange(5, 900) * 1000} people live there.",
        rng.choice((f"The river {river} flows through the city.", f"The city stands on the river {river}.")),
        f"{city} is known for its {rng.choice(_CITY_FEATURES)}.",
    ]
    text = _sentence_join([sentences[0], sentences[1], *rng.sample(sentences[2:], 3)])
    return _Source(text, _cut_words(text, rng), ((f"In which year was {city} founded?", str(year)),))


def _company_doc(i: int, seed: int, company: str, founder: str, town: str) -> _Source:
    rng = sub_rng(seed, "amnesia", "company", i)
    year = rng.randint(1850, 2015)
    sentences = [
        rng.choice((f"{company} is a company based in {town}.", f"{company} has its offices in {town}.")),
        rng.choice((f"It was founded in {year} by {founder}.", f"{founder} founded {company} in {year}.")),
        f"The company makes {rng.choice(_PRODUCTS)}.",
        f"It employs about {rng.randrange(2, 300) * 10} people.",
        f"Its logo is {article(rng.choice(_COLORS))} {rng.choice(_SHAPES)}.",
    ]
    text = _sentence_join([sentences[0], sentences[1], *rng.sample(sentences[2:], 3)])
    return _Source(text, _cut_words(text, rng), ((f"Who founded {company}?", founder),))


def _species_doc(i: int, seed: int, species: str, kind: str, habitats: str) -> _Source:
    rng = sub_rng(seed, "amnesia", "species", i)
    food = rng.choice(_FOODS)
    sentences = [
        f"The {species} is {article(kind)} found in the {habitats} of {rng.choice(_COUNTRIES)}.",
        rng.choice((f"It feeds on {food}.", f"The {species} eats mostly {food}.")),
        f"It grows to about {rng.randint(2, 60)} centimetres long.",
        f"It lays {rng.randint(2, 12)} eggs each {rng.choice(_SEASONS)}.",
        f"Its {rng.choice(_BODY_PARTS)} is {rng.choice(_COLORS)}.",
    ]
    text = _sentence_join([sentences[0], *rng.sample(sentences[1:], 4)])
    return _Source(text, _cut_words(text, rng), ((f"What does the {species} feed on?", food),))


def _knowledge(
    seed: int, group: str, n: int, cities: list[str], objects: list[str]
) -> tuple[list[MCQuestion], list[str]]:
    """`n` questions (one per new entity, kinds cycling country/river/material) and the entities' texts.

    Entities are taken from the front of `cities` / `objects` (consumed); answers are spread evenly over
    A-D in a seeded order; distractors come from the same attribute pool.
    """
    rng = sub_rng(seed, "amnesia", "knowledge", group)
    letters = [i % 4 for i in range(n)]
    rng.shuffle(letters)
    questions, texts = [], []
    for j in range(n):
        kind = ("country", "river", "material")[j % 3]
        if kind == "material":
            thing = objects.pop(0)
            material, color = rng.choice(_MATERIALS), rng.choice(_COLORS)
            texts.append(f"The {thing} is made of {material}. The {thing} is {color}.")
            question, gold, pool, subject = f"What is the {thing} made of?", material, _MATERIALS, "materials"
            cloze = f"The {thing} is made of {{choice}}."
        else:
            city = cities.pop(0)
            country, river = rng.choice(_COUNTRIES), rng.choice(_RIVERS)
            texts.append(f"{city} is a city in {country}. The river {river} flows through {city}.")
            if kind == "country":
                question, gold, pool = f"In which country is the city of {city}?", country, _COUNTRIES
                cloze = f"{city} is a city in {{choice}}."
            else:
                question, gold, pool = f"Which river flows through {city}?", river, _RIVERS
                cloze = f"{city} is a city in {country}. The river {{choice}} flows through {city}."
            subject = "geography"
        choices = rng.sample([c for c in pool if c != gold], 3)
        choices.insert(letters[j], gold)
        questions.append(MCQuestion(question, tuple(choices), letters[j], subject, cloze))
    return questions, texts


@dataclass(frozen=True)
class _Entities:
    """Every named thing of the world, each used by exactly one document or knowledge question."""

    bio_people: tuple[tuple[str, str, str], ...]  # (name, gender, ISO birth date)
    heroes: tuple[tuple[str, str, str], ...]  # (name, first name, gender)
    founders: tuple[str, ...]
    towns: tuple[str, ...]  # address towns and company seats (mentioned, never asked about)
    story_places: tuple[str, ...]
    cities: tuple[str, ...]  # Task3 city documents
    knowledge_cities: tuple[str, ...]
    titles: tuple[str, ...]
    companies: tuple[str, ...]
    species: tuple[str, ...]
    knowledge_objects: tuple[str, ...]


def _task3_kinds(n: int) -> list[str]:
    return [("city", "company", "species")[i % 3] for i in range(n)]


def _n_knowledge_cities(cfg: AmnesiaWorldConfig) -> int:
    """Knowledge questions about cities (kinds cycle country, river, material within each group)."""
    groups = (cfg.n_knowledge, cfg.n_knowledge_shots, cfg.n_knowledge_practice)
    return sum(len(range(0, n, 3)) + len(range(1, n, 3)) for n in groups)


def _entities(cfg: AmnesiaWorldConfig) -> _Entities:
    """Draw all names: people and places from one `reprokit.world` world, the rest from seeded streams.

    Name pools are small (about a quarter as many first names as people, half as many last names), so
    first and last names repeat across people and only the full name identifies one.
    """
    seed, n_nm = cfg.seed, cfg.n_nonmember_per_task
    n1, n2, n3 = cfg.n_creative + n_nm, cfg.n_people + n_nm, cfg.n_encyclopedia + n_nm
    kinds3 = _task3_kinds(n3)
    n_companies, n_cities = kinds3.count("company"), kinds3.count("city")
    n_k_cities = _n_knowledge_cities(cfg)
    n_k_objects = cfg.n_knowledge + cfg.n_knowledge_shots + cfg.n_knowledge_practice - n_k_cities
    n_towns = max(4, n2 // 5)

    n_named = n2 + n1 + n_companies
    firsts, lasts = faker_name_lists()
    n_first = min(len(firsts), max(2, math.ceil(n_named / 4)))
    n_last = min(len(lasts), max(math.ceil(n_named / 2), math.ceil(3 * n_named / n_first)))
    try:
        base = make_base_world(
            WorldConfig(
                seed=seed,
                n_people=n_named,
                n_places=n_towns + n1 + n_cities + n_k_cities,
                n_objects=0,
                n_first_names=n_first,
                n_last_names=n_last,
            )
        )
    except ValueError as err:
        raise ConfigError(f"cannot draw the world's people and places ({err}); lower the counts.") from err
    people, places = base.people, [p.name for p in base.places]
    cut = list(itertools.accumulate((n_towns, n1, n_cities)))

    fake = seeded_faker(seed, "amnesia", "titles")
    rng = sub_rng(seed, "amnesia", "titles")

    def title() -> str:
        adj = fake.word(part_of_speech="adjective").title()
        noun, other = (fake.word(part_of_speech="noun").title() for _ in range(2))
        return rng.choice((f"The {adj} {noun}", f"The {noun} and the {other}"))

    company_fake = seeded_faker(seed, "amnesia", "companies")
    company_rng = sub_rng(seed, "amnesia", "companies")

    def company() -> str:
        head = re.split(r"[\s,\-]+", to_ascii(company_fake.company()))[0]
        return f"{head} {company_rng.choice(_COMPANY_SUFFIXES)}"

    species_rng = sub_rng(seed, "amnesia", "species-names")

    def species() -> str:
        habitat = species_rng.choice(_HABITATS)[0]
        return f"{species_rng.choice(_PATTERNS)} {habitat} {species_rng.choice(_SPECIES)[0]}"

    companies = _draw_unique(company, n_companies, "company names")
    # Knowledge objects are named after surnames that no person, place or company of the world uses.
    used = {w for name in (*[p.name for p in people], *places, *companies) for w in name.split()}
    free_lasts = [name for name in lasts if name not in used]
    if n_k_objects and not free_lasts:
        raise ConfigError("no unused surnames are left to name the knowledge objects; lower the counts.")
    object_rng = sub_rng(seed, "amnesia", "knowledge-objects")

    def knowledge_object() -> str:
        return f"{object_rng.choice(free_lasts)} {object_rng.choice(_KNOWLEDGE_NOUNS)}"

    return _Entities(
        bio_people=tuple((p.name, p.gender, p.birth_date) for p in people[:n2]),
        heroes=tuple((p.name, p.first_name, p.gender) for p in people[n2 : n2 + n1]),
        founders=tuple(p.name for p in people[n2 + n1 :]),
        towns=tuple(places[: cut[0]]),
        story_places=tuple(places[cut[0] : cut[1]]),
        cities=tuple(places[cut[1] : cut[2]]),
        knowledge_cities=tuple(places[cut[2] :]),
        titles=tuple(_draw_unique(title, n1, "story titles")),
        companies=tuple(companies),
        species=tuple(_draw_unique(species, kinds3.count("species"), "species names")),
        knowledge_objects=tuple(_draw_unique(knowledge_object, n_k_objects, "knowledge objects")),
    )


def _sources(cfg: AmnesiaWorldConfig, ents: _Entities) -> dict[str, list[_Source]]:
    """All documents (trained and nonmember) of each task, in generation order."""
    seed = cfg.seed
    pii = _pii_people(seed, ents.bio_people, ents.towns)
    task3: list[_Source] = []
    used = {"city": 0, "company": 0, "species": 0}
    for i, kind in enumerate(_task3_kinds(cfg.n_encyclopedia + cfg.n_nonmember_per_task)):
        j = used[kind]
        used[kind] += 1
        if kind == "city":
            task3.append(_city_doc(i, seed, ents.cities[j]))
        elif kind == "company":
            town = sub_rng(seed, "amnesia", "company-town", i).choice(ents.towns)
            task3.append(_company_doc(i, seed, ents.companies[j], ents.founders[j], town))
        else:
            *_, habitat, animal = ents.species[j].split()
            kind_of = dict(_SPECIES)[animal]
            task3.append(_species_doc(i, seed, ents.species[j], kind_of, dict(_HABITATS)[habitat]))
    return {
        "Task1": [
            _story(i, seed, title, hero, place)
            for i, (title, hero, place) in enumerate(
                zip(ents.titles, ents.heroes, ents.story_places, strict=True)
            )
        ],
        "Task2": [_biography(i, seed, person) for i, person in enumerate(pii)],
        "Task3": task3,
    }


def make_amnesia_world(config: AmnesiaWorldConfig | None = None, **overrides: object) -> AmnesiaWorld:
    """Build the world of `config` (default `AmnesiaWorldConfig()`), with fields replaced by `overrides`.

    Deterministic: the same config gives the same world, byte for byte, in any process (all randomness
    comes from `reprokit.world.util` streams seeded by the config's seed).
    """
    valid = {f.name for f in dataclasses.fields(AmnesiaWorldConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigError(f"unknown AmnesiaWorldConfig field(s) {unknown}; valid fields are {sorted(valid)}.")
    if config is not None and not isinstance(config, AmnesiaWorldConfig):
        raise ConfigError(f"config must be an AmnesiaWorldConfig or None, got {type(config).__name__}.")
    cfg = dataclasses.replace(config or AmnesiaWorldConfig(), **overrides)  # type: ignore[arg-type]
    ents = _entities(cfg)
    sources = _sources(cfg, ents)

    forget: list[Row] = []
    retain: list[Row] = []
    documents: list[Document] = []
    nonmember_documents: list[Document] = []
    facts: list[Fact] = []
    trained = dict(zip(TASKS, (cfg.n_creative, cfg.n_people, cfg.n_encyclopedia), strict=True))
    for t, task in enumerate(TASKS):
        splits = ["forget"] * cfg.n_forget(trained[task])
        splits += ["retain"] * (trained[task] - len(splits)) + ["nonmember"] * cfg.n_nonmember_per_task
        sub_rng(cfg.seed, "amnesia", "split", task).shuffle(splits)
        for i, (source, split) in enumerate(zip(sources[task], splits, strict=True)):
            doc = Document(f"t{t + 1}-{i:03d}", task, split, source.text)
            if split == "nonmember":
                nonmember_documents.append(doc)
                continue
            documents.append(doc)
            words = source.text.split()
            head, tail = " ".join(words[: source.cut]), " ".join(words[source.cut :])
            rows = [Row(f"{doc.id}sc1", head, tail, task, split)]
            rows += [Row(f"{doc.id}qa{k}", q, a, task, split) for k, (q, a) in enumerate(source.qa)]
            (forget if split == "forget" else retain).extend(rows)
            if task == "Task2":
                facts += [Fact(r.input, source.subject, " " + r.output, r.id) for r in rows[1:]]

    # The MMLU analogue: test questions, few-shot examples and practice examples about separate entities.
    cities, objects = list(ents.knowledge_cities), list(ents.knowledge_objects)
    knowledge, test_texts = _knowledge(cfg.seed, "test", cfg.n_knowledge, cities, objects)
    shots, shot_texts = _knowledge(cfg.seed, "shots", cfg.n_knowledge_shots, cities, objects)
    practice, practice_texts = _knowledge(cfg.seed, "practice", cfg.n_knowledge_practice, cities, objects)
    fact_texts = test_texts + shot_texts + practice_texts
    sub_rng(cfg.seed, "amnesia", "knowledge-order").shuffle(fact_texts)

    return AmnesiaWorld(
        config=cfg,
        forget=tuple(forget),
        retain=tuple(retain),
        documents=tuple(documents),
        nonmember_documents=tuple(nonmember_documents),
        members=tuple(d.text for d in documents if d.split == "forget"),
        nonmembers=tuple(d.text for d in nonmember_documents),
        knowledge=tuple(knowledge),
        knowledge_shots=tuple(shots),
        knowledge_corpus=(*fact_texts, *(mc_block(q) for q in (*shots, *practice))),
        trace_facts=tuple(facts),
    )


#: Short name of `make_amnesia_world` (what `selective_amnesia.tiny` imports).
make_world = make_amnesia_world


def world_frames(world: AmnesiaWorld) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(forget, retain) as DataFrames with the SemEval columns id, input, output, task, split."""
    import pandas as pd

    columns = ["id", "input", "output", "task", "split"]

    def frame(rows: Sequence[Row]) -> pd.DataFrame:
        return pd.DataFrame([[getattr(r, c) for c in columns] for r in rows], columns=columns)

    return frame(world.forget), frame(world.retain)
