"""A seeded synthetic world and its text generators: the data of every tiny-scale reproduction.

People, places and things with attributes (`make_world`); encyclopedic documents; fact questions
(open and multiple choice); multi-step arithmetic word problems; symbolic tasks (last letter, coin
flip); PII biographies in the SemEval-2025 Task 4 shape; chat-formatted pairs. Everything is a pure
function of its seed and sizes: the same arguments give the same objects and text, byte for byte.
"""

from reprokit.world.chat import ALIGNED_OPENINGS, CHAT_STYLES, SYSTEM_PROMPT, ChatPair, chat_pairs
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
from reprokit.world.questions import DEFAULT_ATTRIBUTES, FACT_ATTRIBUTES, FactQuestion, fact_questions
from reprokit.world.reasoning import (
    SymbolicTask,
    WordProblem,
    arithmetic_problems,
    coin_flip_tasks,
    last_letter_tasks,
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
    "DEFAULT_ATTRIBUTES",
    "FACT_ATTRIBUTES",
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
    "SymbolicTask",
    "Thing",
    "WordProblem",
    "World",
    "WorldConfig",
    "arithmetic_problems",
    "biography",
    "biography_documents",
    "chat_pairs",
    "coin_flip_tasks",
    "encyclopedia_documents",
    "fact_questions",
    "last_letter_tasks",
    "make_world",
    "person_document",
    "pii_biographies",
    "pii_frame",
    "place_document",
    "split_by_person",
    "thing_document",
]
