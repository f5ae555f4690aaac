"""A seeded synthetic world and its text generators: the data of every tiny-scale reproduction.

People, places and things with attributes (`make_world`); encyclopedic documents; fact questions
(open and multiple choice); PII biographies in the SemEval-2025 Task 4 shape; chat-formatted pairs of
fact questions and of any `WorkedTask` (a paper package's own tasks, e.g. nudging's word problems).
Everything is a pure function of its seed and sizes: the same arguments give the same objects and text,
byte for byte. Generators built outside reprokit use `reprokit.world.util` (seeded streams, text
helpers) and `COUNTABLE_ITEMS`.
"""

from reprokit.world._vocab import COUNTABLE_ITEMS
from reprokit.world.chat import (
    ALIGNED_OPENINGS,
    CHAT_STYLES,
    SYSTEM_PROMPT,
    ChatPair,
    WorkedTask,
    chat_pairs,
)
from reprokit.world.core import (
    MAX_PEOPLE,
    Person,
    Place,
    Thing,
    World,
    WorldConfig,
    make_world,
    split_by_person,
)
from reprokit.world.questions import (
    DEFAULT_ATTRIBUTES,
    FACT_ATTRIBUTES,
    FACT_SENTENCES,
    FactQuestion,
    fact_questions,
)
from reprokit.world.text import (
    PII_QUESTIONS,
    SEMEVAL_COLUMNS,
    Document,
    PIIRecord,
    biography,
    biography_documents,
    encyclopedia_documents,
    person_document,
    pii_biographies,
    pii_frame,
    place_document,
    thing_document,
)

__all__ = [
    "ALIGNED_OPENINGS",
    "CHAT_STYLES",
    "COUNTABLE_ITEMS",
    "DEFAULT_ATTRIBUTES",
    "FACT_ATTRIBUTES",
    "FACT_SENTENCES",
    "MAX_PEOPLE",
    "PII_QUESTIONS",
    "SEMEVAL_COLUMNS",
    "SYSTEM_PROMPT",
    "ChatPair",
    "Document",
    "FactQuestion",
    "PIIRecord",
    "Person",
    "Place",
    "Thing",
    "WorkedTask",
    "World",
    "WorldConfig",
    "biography",
    "biography_documents",
    "chat_pairs",
    "encyclopedia_documents",
    "fact_questions",
    "make_world",
    "person_document",
    "pii_biographies",
    "pii_frame",
    "place_document",
    "split_by_person",
    "thing_document",
]
