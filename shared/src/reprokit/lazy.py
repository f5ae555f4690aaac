"""Lazy package exports: a package's public names are imported from their submodules on first use.

A paper package re-exports its API from modules that import torch and transformers; importing them
eagerly makes ``import palimpsest.cli`` (and so every ``--help``) take seconds. With `lazy_exports` the
package ``__init__`` imports nothing heavy, and ``from palimpsest import query_test`` still works.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``; ``exports`` maps a submodule to its names.

    Use in a package ``__init__``: ``__all__, __getattr__, __dir__ = lazy_exports(__name__, {...})``.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return sorted(where), __getattr__, __dir__
