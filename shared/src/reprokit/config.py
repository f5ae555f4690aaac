"""Dataclass configs from TOML tables, with every key checked against the field's type.

An unknown key names the valid ones; a value of the wrong type names the key (as a dotted path), the
expected type and the value. Lists become tuples (configs are frozen and hashable), nested tables become
nested dataclasses, and an int is accepted where a float is expected (TOML writes ``3`` for ``3.0``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from reprokit.errors import ConfigError

__all__ = ["config_from_mapping", "describe_type"]

C = TypeVar("C")
_MISSING = object()


def describe_type(tp: Any) -> str:
    """A short human name of a type annotation: ``list of float``, ``int or None``, ``'tiny' or 'paper'``."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is type(None):
        return "None"
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {describe_type(args[0])}"
        return f"list of {len(args)} ({', '.join(describe_type(a) for a in args)})"
    if origin in (list, Sequence):
        return f"list of {describe_type(args[0])}" if args else "list"
    if origin in (dict, Mapping):
        return "table"
    if dataclasses.is_dataclass(tp):
        return f"table ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str) -> Any:
    """`value` checked against annotation `tp` and converted (lists -> tuples, tables -> dataclasses)."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return _tuples(value)
    if tp is type(None):
        if value is None:
            return None
        raise _wrong(path, tp, value)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _convert(value, option, path)
            except ConfigError:
                continue
        raise _wrong(path, tp, value)
    if origin is typing.Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise _wrong(path, tp, value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _wrong(path, tp, value)
        return config_from_mapping(tp, value, path=path)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _wrong(path, tp, value)
        if not args:
            return tuple(_tuples(v) for v in value)
        if origin is not tuple or (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise _wrong(path, tp, value)
        return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _wrong(path, tp, value)
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong(path, tp, value)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(path, tp, value)
        return value
    if tp is bool or tp is str:
        if type(value) is not tp:
            raise _wrong(path, tp, value)
        return value
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _wrong(path, tp, value)
    return value  # an annotation we do not model (a Protocol, a TypeVar): accept as is


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _wrong(path: str, tp: Any, value: Any) -> ConfigError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ConfigError(
        f"config key {path!r} must be {describe_type(tp)}, got {shown} ({type(value).__name__}); "
        "fix the value in the TOML file."
    )


def config_from_mapping(cls: type[C], data: Mapping[str, Any], *, path: str = "", **built: Any) -> C:
    """A dataclass `cls` from a (TOML) mapping, every key type-checked against its field annotation.

    `path` prefixes keys in messages (``tiny.world.seed``); `built` passes fields already converted.
    Missing keys take the dataclass defaults; the class's own ``__post_init__`` checks still run and a
    ``ValueError`` from them becomes a `ConfigError` naming the table.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        where = path or cls.__name__
        raise ConfigError(f"config {where!r} must be a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"[{path}]" if path else cls.__name__
        raise ConfigError(f"unknown config key(s) {unknown} in {where}; valid keys: {sorted(fields)}.")
    try:
        hints = get_type_hints(cls)
    except NameError:  # a class defined in a function: annotations it cannot resolve are not checked
        hints = {f.name: f.type for f in dataclasses.fields(cls) if not isinstance(f.type, str)}
    kwargs: dict[str, Any] = dict(built)
    for name, value in data.items():
        if name in built:
            continue
        kwargs[name] = _convert(value, hints.get(name, Any), f"{path}.{name}" if path else name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        where = f"[{path}]" if path else cls.__name__
        raise ConfigError(f"invalid config {where}: {err}") from err
