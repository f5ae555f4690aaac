"""Small deterministic helpers of the world's generators, public for generators built on the world.

`sub_rng` and `seeded_faker` derive their seeds from a fixed namespace and the given parts, so a generator
outside reprokit (e.g. a paper package's task generator) gets the same streams on every machine.
"""

from __future__ import annotations

import random
import unicodedata
from functools import lru_cache

from faker import Faker

_NS = "reprokit.world"


def sub_rng(*parts: object) -> random.Random:
    """A `random.Random` seeded from `parts` (str seeds hash with SHA-512: independent of PYTHONHASHSEED)."""
    return random.Random("|".join([_NS, *map(str, parts)]))


def seeded_faker(*parts: object) -> Faker:
    """A dedicated en_US `Faker` seeded from `parts`; never touches the global random state."""
    fake = _faker_instance()
    fake.seed_instance("|".join([_NS, *map(str, parts)]))
    return fake


def _faker_instance() -> Faker:
    return Faker("en_US")


def to_ascii(text: str) -> str:
    """Transliterate to printable ASCII (drop accents, then anything left outside ASCII)."""
    decomposed = unicodedata.normalize("NFKD", text)
    out = "".join(ch for ch in decomposed if 32 <= ord(ch) < 127)
    return " ".join(out.split())


def article(word: str) -> str:
    """'a baker' / 'an engineer'."""
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def count_noun(n: int, singular: str, plural: str) -> str:
    """'1 apple' / '3 apples' / '0 apples'."""
    return f"{n} {singular if n == 1 else plural}"


def cap(text: str) -> str:
    """Capitalize the first character only."""
    return text[:1].upper() + text[1:]


def check_count(name: str, n: object, *, minimum: int = 0) -> int:
    """Validate an integer count argument and return it."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"{name} must be an int, got {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return n


@lru_cache(maxsize=1)
def faker_name_lists() -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """All en_US first names as (name, gender) and all last names, ASCII letters only, sorted."""
    from faker.providers.person.en_US import Provider

    firsts: dict[str, str] = {}
    for gender, names in (("female", Provider.first_names_female), ("male", Provider.first_names_male)):
        for name in names:
            if name.isascii() and name.isalpha() and len(name) > 1:
                firsts.setdefault(name, gender)
    lasts = {n for n in Provider.last_names if n.isascii() and n.isalpha() and len(n) > 1}
    return tuple(sorted(firsts.items())), tuple(sorted(lasts))
