"""Seeding: one call for python, numpy and torch, and stable child seeds for independent components."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["derive_seed", "set_seed", "torch_generator"]

logger = logging.getLogger(__name__)

_MAX_SEED = 2**32


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def set_seed(seed: int, *, deterministic: bool = False) -> np.random.Generator:
    """Seed python ``random``, numpy's global state and torch (all devices); return ``default_rng(seed)``.

    ``deterministic=True`` also asks torch for deterministic kernels (``warn_only=True``), turns off cuDNN
    autotuning and sets ``CUBLAS_WORKSPACE_CONFIG`` if unset (needed before CUDA starts for cuBLAS).
    Prefer passing the returned generator around over relying on global state.
    """
    seed = _check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % _MAX_SEED)  # legacy global state only accepts 32-bit seeds  # noqa: NPY002
    try:
        import torch
    except ImportError:  # torch is a dependency, but keep seeding usable without it
        logger.debug("torch not installed; seeded python and numpy only")
    else:
        torch.manual_seed(seed)  # also seeds every CUDA device
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed`` (for DataLoader, sampling, init)."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(_check_seed(seed))
    return gen


def derive_seed(seed: int, *names: str | int) -> int:
    """A stable child seed in [0, 2**32) for component ``names`` of a run seeded with ``seed``.

    Uses SHA-256 (not ``hash()``, which is salted per process), so it is the same on every machine and
    Python version; ``"1"`` and ``1`` are different names.
    """
    seed = _check_seed(seed)
    for name in names:
        if isinstance(name, bool) or not isinstance(name, (str, int, np.integer)):
            raise TypeError(f"seed names must be str or int, got {type(name).__name__}: {name!r}")
    key = json.dumps([seed, *(n if isinstance(n, str) else int(n) for n in names)], separators=(",", ":"))
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")
