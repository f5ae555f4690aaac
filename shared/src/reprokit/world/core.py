"""The world itself: a seeded set of people, places (cities) and things with attributes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

from reprokit.world._vocab import (
    COLORS,
    COUNTRIES,
    EMAIL_DOMAINS,
    EMPLOYER_SUFFIXES,
    HOBBIES,
    MATERIALS,
    OBJECT_NOUNS,
    PROFESSIONS,
    RIVERS,
)
from reprokit.world.util import faker_name_lists, seeded_faker, sub_rng, to_ascii

MAX_PEOPLE = 100_000  # phone numbers are "55X-XXXX": 100,000 distinct numbers


def _check_int(name: str, value: object, lo: int, hi: int | None = None, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"WorldConfig.{name} must be an int, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"WorldConfig.{name} must be {bound}, got {value}{hint}")


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and seed of a synthetic world; the same config always gives the same world.

    `n_first_names` / `n_last_names` restrict names to a small pool (None: faker's full en_US lists),
    which keeps the vocabulary small for word-level tiny models. `distinct_name_parts=True` gives every
    person a first name and a last name no one else has, so no two people can be confused by a shared
    part ("Erica Wilson" / "Erica Watts").
    """

    seed: int = 0
    n_people: int = 200
    n_places: int = 24
    n_professions: int = 16
    n_employers: int = 24
    n_objects: int = 40
    n_countries: int = 6
    n_first_names: int | None = None
    n_last_names: int | None = None
    min_birth_year: int = 1950
    max_birth_year: int = 2004
    distinct_name_parts: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"WorldConfig.seed must be an int, got {self.seed!r}")
        all_firsts, all_lasts = faker_name_lists()
        for name in ("n_first_names", "n_last_names"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1, len(all_firsts if "first" in name else all_lasts))
        _check_int("n_people", self.n_people, 1, MAX_PEOPLE)
        capacity = self.name_capacity
        if self.distinct_name_parts and self.n_people > min(
            self.n_first_names or len(all_firsts), self.n_last_names or len(all_lasts)
        ):
            raise ValueError(
                f"WorldConfig.distinct_name_parts needs n_people={self.n_people} distinct first and last "
                f"names but the pools hold {self.n_first_names or len(all_firsts)} and "
                f"{self.n_last_names or len(all_lasts)}; raise n_first_names / n_last_names (or None)"
            )
        if self.n_people > capacity:
            raise ValueError(
                f"WorldConfig.n_people={self.n_people} is larger than the {capacity} possible unique names "
                f"({self.n_first_names or len(all_firsts)} first x {self.n_last_names or len(all_lasts)} "
                "last names); lower n_people or raise n_first_names / n_last_names"
            )
        _check_int("n_places", self.n_places, 1, 10_000)
        _check_int("n_professions", self.n_professions, 1, len(PROFESSIONS), " (the fixed profession list)")
        _check_int("n_employers", self.n_employers, 1, 10_000)
        _check_int("n_objects", self.n_objects, 0, len(OBJECT_NOUNS), " (the fixed object list)")
        _check_int("n_countries", self.n_countries, 1, len(COUNTRIES), " (the fixed country list)")
        _check_int("min_birth_year", self.min_birth_year, 1, 9999)
        _check_int("max_birth_year", self.max_birth_year, self.min_birth_year, 9999, " (>= min_birth_year)")

    @property
    def name_capacity(self) -> int:
        """How many unique full names the name pools allow."""
        all_firsts, all_lasts = faker_name_lists()
        return (self.n_first_names or len(all_firsts)) * (self.n_last_names or len(all_lasts))


@dataclass(frozen=True)
class Person:
    """A person of the world; all attributes are plain ASCII strings or ints."""

    id: str
    name: str
    first_name: str
    last_name: str
    birth_date: str  # ISO 8601, e.g. "1990-03-04"
    birth_year: int
    city: str  # a Place name: where the person lives
    profession: str
    employer: str
    phone: str  # "555-0134" style
    email: str
    address: str  # "12 Wallace Ranch, Port Jessica"
    hobby: str
    gender: str = "female"  # "female" | "male": only chooses the pronouns of generated text

    @property
    def pronoun(self) -> str:
        """'she' or 'he'."""
        return "she" if self.gender == "female" else "he"

    @property
    def object_pronoun(self) -> str:
        """'her' or 'him'."""
        return "her" if self.gender == "female" else "him"

    @property
    def possessive(self) -> str:
        """'her' or 'his'."""
        return "her" if self.gender == "female" else "his"


@dataclass(frozen=True)
class Place:
    """A city of the world."""

    id: str
    name: str
    country: str
    population: int
    river: str | None
    founded: int  # year


@dataclass(frozen=True)
class Thing:
    """A named object of the world ("the lantern"), with a plural for counting sentences."""

    id: str
    name: str
    color: str
    material: str
    made_in: str  # a Place name
    plural: str = ""
    price: int = 0  # dollars


@dataclass(frozen=True)
class World:
    """People, places and things plus the vocabularies they were drawn from; build with `make_world`."""

    config: WorldConfig
    people: tuple[Person, ...]
    places: tuple[Place, ...]
    objects: tuple[Thing, ...]
    professions: tuple[str, ...] = ()
    employers: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    hobbies: tuple[str, ...] = ()
    _index: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, object] = {}
        for entity in (*self.people, *self.places, *self.objects):
            index[entity.id] = entity
            index.setdefault(f"{type(entity).__name__}:{entity.name}", entity)
        object.__setattr__(self, "_index", index)

    def _lookup(self, cls: type, id_or_name: str, what: str, example: str) -> object:
        for key in (id_or_name, f"{cls.__name__}:{id_or_name}"):
            hit = self._index.get(key) if isinstance(id_or_name, str) else None
            if isinstance(hit, cls):
                return hit
        raise KeyError(
            f"no {what} with id or name {id_or_name!r} in this world (seed {self.config.seed}); "
            f"ids look like {example!r}, names are exact (e.g. {self._example_name(cls)!r})"
        )

    def _example_name(self, cls: type) -> str:
        pool = {Person: self.people, Place: self.places, Thing: self.objects}[cls]
        return pool[0].name if pool else ""

    def person(self, id_or_name: str) -> Person:
        """The person with this id ("p0007") or full name; KeyError otherwise."""
        return self._lookup(Person, id_or_name, "person", self.people[0].id)  # type: ignore[return-value]

    def place(self, id_or_name: str) -> Place:
        """The place with this id ("c0003") or name; KeyError otherwise."""
        return self._lookup(Place, id_or_name, "place", "c0000")  # type: ignore[return-value]

    def thing(self, id_or_name: str) -> Thing:
        """The thing with this id ("o0002") or name; KeyError otherwise."""
        return self._lookup(Thing, id_or_name, "object", "o0000")  # type: ignore[return-value]

    def fingerprint(self) -> str:
        """SHA-256 of the world's full content: a cache key for data and models built from it."""
        payload = repr((self.config, self.people, self.places, self.objects, self.professions))
        payload += repr((self.employers, self.countries, self.hobbies))
        return hashlib.sha256(payload.encode("ascii")).hexdigest()


def _ids(prefix: str, n: int) -> list[str]:
    width = max(4, len(str(max(n - 1, 0))))
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def _draw_unique(draw, n: int, what: str, max_tries: int | None = None) -> list[str]:
    """Call `draw()` until `n` distinct, non-empty ASCII values are collected (re-draw on collision)."""
    out: list[str] = []
    seen: set[str] = set()
    tries = max_tries if max_tries is not None else 200 * n + 1000
    while len(out) < n:
        if tries <= 0:
            raise ValueError(f"could not draw {n} unique {what}; ask for fewer")
        tries -= 1
        value = to_ascii(draw())
        if value and value not in seen:
            seen.add(value)
            out.append(value)
    return out


def _draw_pool(draw, full: Sequence[str], n: int, rng) -> list[str]:
    """`n` distinct names: faker's (frequency-weighted) draws first, topped up uniformly from `full`."""
    out: list[str] = []
    seen: set[str] = set()
    allowed = set(full)
    for _ in range(20 * n + 100):
        if len(out) == n:
            return out
        name = draw()
        if name in allowed and name not in seen:
            seen.add(name)
            out.append(name)
    rest = [name for name in full if name not in seen]
    return out + rng.sample(rest, n - len(out))


def _make_places(cfg: WorldConfig, countries: Sequence[str]) -> tuple[Place, ...]:
    fake = seeded_faker(cfg.seed, "places")
    rng = sub_rng(cfg.seed, "places")
    names = _draw_unique(fake.city, cfg.n_places, "city names")
    places = []
    for pid, name in zip(_ids("c", cfg.n_places), names, strict=True):
        population = rng.randrange(5, 2000) * 1000
        river = rng.choice(RIVERS) if rng.random() < 0.7 else None
        places.append(Place(pid, name, rng.choice(countries), population, river, rng.randint(1200, 1950)))
    return tuple(places)


def _make_employers(cfg: WorldConfig) -> tuple[str, ...]:
    fake = seeded_faker(cfg.seed, "employers")
    rng = sub_rng(cfg.seed, "employers")

    def draw() -> str:
        head = re.split(r"[\s,\-]+", to_ascii(fake.company()))[0]
        return f"{head} {rng.choice(EMPLOYER_SUFFIXES)}"

    return tuple(_draw_unique(draw, cfg.n_employers, "employer names"))


def _make_people(
    cfg: WorldConfig, world_places: Sequence[Place], professions, employers
) -> tuple[Person, ...]:
    fake = seeded_faker(cfg.seed, "people")
    rng = sub_rng(cfg.seed, "people")
    all_firsts, all_lasts = faker_name_lists()
    gender_of = dict(all_firsts)

    first_pool: list[tuple[str, str]] | None = None
    if cfg.n_first_names:
        drawn_gender: dict[str, str] = {}

        def draw_pool_first() -> str:  # alternate female / male draws so the pool is balanced
            gender = "female" if len(drawn_gender) % 2 == 0 else "male"
            name = fake.first_name_female() if gender == "female" else fake.first_name_male()
            drawn_gender.setdefault(name, gender)
            return name

        picks = _draw_pool(draw_pool_first, [n for n, _ in all_firsts], cfg.n_first_names, rng)
        first_pool = [(n, drawn_gender.get(n, gender_of[n])) for n in picks]
    last_pool = _draw_pool(fake.last_name, all_lasts, cfg.n_last_names, rng) if cfg.n_last_names else None

    def draw_first() -> tuple[str, str]:
        if first_pool is not None:
            return rng.choice(first_pool)
        if rng.random() < 0.5:
            return to_ascii(fake.first_name_female()), "female"
        return to_ascii(fake.first_name_male()), "male"

    def draw_last() -> str:
        return rng.choice(last_pool) if last_pool is not None else to_ascii(fake.last_name())

    start = dt.date(cfg.min_birth_year, 1, 1).toordinal()
    span = dt.date(cfg.max_birth_year, 12, 31).toordinal() - start + 1
    names: set[str] = set()
    used_parts: set[str] = set()  # first and last names taken, with distinct_name_parts
    phones: set[int] = set()
    emails: set[str] = set()
    people = []
    max_tries = 200 * cfg.n_people + 10_000
    for pid in _ids("p", cfg.n_people):
        while True:  # re-draw the name on collision
            max_tries -= 1
            if max_tries < 0:
                raise ValueError(
                    f"could not draw {cfg.n_people} unique names; raise n_first_names / n_last_names"
                )
            first, gender = draw_first()
            last = draw_last()
            if cfg.distinct_name_parts and ({f"f:{first}", f"l:{last}"} & used_parts):
                continue
            if first and last and f"{first} {last}" not in names:
                break
        name = f"{first} {last}"
        names.add(name)
        used_parts |= {f"f:{first}", f"l:{last}"}
        birth = dt.date.fromordinal(start + rng.randrange(span))
        while (phone := rng.randrange(100_000)) in phones:
            pass
        phones.add(phone)
        local = f"{first}.{last}".lower()
        email, k = f"{local}@{rng.choice(EMAIL_DOMAINS)}", 1
        while email in emails:  # only on case-folding collisions
            k += 1
            email = f"{local}{k}@{email.split('@')[1]}"
        emails.add(email)
        city = rng.choice(world_places).name
        street = to_ascii(fake.street_name())
        people.append(
            Person(
                id=pid,
                name=name,
                first_name=first,
                last_name=last,
                birth_date=birth.isoformat(),
                birth_year=birth.year,
                city=city,
                profession=rng.choice(professions),
                employer=rng.choice(employers),
                phone=f"55{phone // 10_000}-{phone % 10_000:04d}",
                email=email,
                address=f"{rng.randint(1, 199)} {street}, {city}",
                hobby=rng.choice(HOBBIES),
                gender=gender,
            )
        )
    return tuple(people)


def _make_objects(cfg: WorldConfig, places: Sequence[Place]) -> tuple[Thing, ...]:
    rng = sub_rng(cfg.seed, "objects")
    nouns = rng.sample(OBJECT_NOUNS, cfg.n_objects)
    return tuple(
        Thing(
            id=oid,
            name=singular,
            color=rng.choice(COLORS),
            material=rng.choice(MATERIALS),
            made_in=rng.choice(places).name,
            plural=plural,
            price=rng.randint(2, 99),
        )
        for oid, (singular, plural) in zip(_ids("o", cfg.n_objects), nouns, strict=True)
    )


def make_world(config: WorldConfig | None = None, **overrides: object) -> World:
    """Build the world of `config` (default `WorldConfig()`), with fields replaced by `overrides`.

    Deterministic: the same config gives the same world, byte for byte, in any process. Each part
    (places, employers, people, objects) draws from its own seeded stream, so e.g. raising `n_people`
    keeps the first people unchanged.
    """
    valid = {f.name for f in dataclasses.fields(WorldConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise TypeError(f"unknown WorldConfig field(s) {unknown}; valid fields are {sorted(valid)}")
    if config is None:
        cfg = WorldConfig(**overrides)  # type: ignore[arg-type]
    elif isinstance(config, WorldConfig):
        cfg = dataclasses.replace(config, **overrides)  # type: ignore[arg-type]
    else:
        raise ValueError(f"config must be a WorldConfig or None, got {type(config).__name__}")
    rng = sub_rng(cfg.seed, "vocab")
    professions = tuple(rng.sample(PROFESSIONS, cfg.n_professions))
    countries = tuple(rng.sample(COUNTRIES, cfg.n_countries))
    places = _make_places(cfg, countries)
    employers = _make_employers(cfg)
    people = _make_people(cfg, places, professions, employers)
    objects = _make_objects(cfg, places)
    return World(cfg, people, places, objects, professions, employers, countries, HOBBIES)


@overload
def split_by_person(
    ids: Iterable[str], fractions: Sequence[float], seed: int = 0
) -> tuple[tuple[str, ...], ...]: ...
@overload
def split_by_person(
    ids: Iterable[str], fractions: Mapping[str, float], seed: int = 0
) -> dict[str, tuple[str, ...]]: ...
def split_by_person(
    ids: Iterable[str], fractions: Sequence[float] | Mapping[str, float], seed: int = 0
) -> tuple[tuple[str, ...], ...] | dict[str, tuple[str, ...]]:
    """Split ids (e.g. person ids) deterministically into disjoint groups of the given fractions.

    `fractions` is a sequence (returns a tuple of groups) or a name -> fraction mapping (returns a dict
    in the mapping's order). Fractions summing to 1 assign every id; a smaller sum leaves the rest out.
    The result does not depend on the order of `ids` (they are sorted first); each group is sorted.
    """
    ids = list(ids)
    if any(not isinstance(i, str) for i in ids):
        raise ValueError("split_by_person: ids must be strings (e.g. [p.id for p in world.people])")
    if len(set(ids)) != len(ids):
        raise ValueError("split_by_person: ids contain duplicates; pass each id once")
    names = list(fractions) if isinstance(fractions, Mapping) else None
    values = [fractions[n] for n in names] if names is not None else list(fractions)  # type: ignore[index]
    if not values:
        raise ValueError("split_by_person: fractions is empty; give at least one fraction")
    if any(isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0 for v in values):
        raise ValueError(f"split_by_person: fractions must be non-negative numbers, got {values}")
    total = math.fsum(values)
    if total > 1 + 1e-9:
        raise ValueError(f"split_by_person: fractions sum to {total:g} > 1; they must sum to at most 1")
    order = sorted(ids)
    sub_rng(seed, "split").shuffle(order)
    n = len(order)
    cuts, acc = [0], 0.0
    for v in values:
        acc += v
        cuts.append(min(n, round(min(acc, 1.0) * n)))
    groups = tuple(tuple(sorted(order[a:b])) for a, b in itertools.pairwise(cuts))
    if names is not None:
        return dict(zip(names, groups, strict=True))
    return groups
