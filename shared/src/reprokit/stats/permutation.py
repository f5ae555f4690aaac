"""Exact Monte Carlo permutation tests: p = (b + 1) / (m + 1), optionally permuting only within blocks."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

from reprokit.stats._base import (
    ARRAY,
    Alternative,
    StatResult,
    accepts_axis,
    as_generator,
    check_alternative,
    paired_1d,
)

__all__ = [
    "PermutationResult",
    "blocked_spearman_permutation_test",
    "permutation_pvalue",
    "permutation_test",
    "spearman_permutation_test",
    "within_block_ranks",
]

# Elements per chunk of permuted indices (keeps memory at a few tens of MB).
_CHUNK_ELEMENTS = 1 << 20


def permutation_pvalue(observed: float, null: ArrayLike, alternative: Alternative = "greater") -> float:
    """Exact Monte Carlo p-value ``(1 + #{null >= observed}) / (m + 1)`` (Phipson & Smyth 2010); never 0.

    ``"less"`` counts ``null <= observed``; ``"two-sided"`` compares absolute values (a null centred at 0).
    Null values within a relative 1e-12 of ``observed`` count as ties (as extreme), so a statistic computed
    along a different code path for the identity permutation is not lost to rounding.
    """
    check_alternative(alternative)
    null_arr = np.asarray(null, dtype=float).ravel()
    if null_arr.size == 0:
        raise ValueError("null distribution is empty; draw at least one resample")
    if np.isnan(null_arr).any() or math.isnan(observed):
        raise ValueError("observed statistic or null distribution contains NaN")
    obs = float(observed)
    if alternative == "two-sided":
        obs, null_arr = abs(obs), np.abs(null_arr)
    tol = 1e-12 * max(1.0, abs(obs))
    if alternative == "less":
        b = int(np.count_nonzero(null_arr <= obs + tol))
    else:
        b = int(np.count_nonzero(null_arr >= obs - tol))
    return (b + 1.0) / (null_arr.size + 1.0)


@dataclass(frozen=True)
class PermutationResult(StatResult):
    """Observed statistic, its permutation p-value and the null draws it came from (not in `to_dict`)."""

    statistic: float
    pvalue: float
    null: np.ndarray = field(metadata=ARRAY, repr=False, compare=False)
    n_resamples: int
    alternative: str


def _block_groups(blocks: ArrayLike | None, n: int) -> list[np.ndarray] | None:
    """Index arrays of each block (only blocks with 2+ members need shuffling), or None without blocks."""
    if blocks is None:
        return None
    labels = np.asarray(blocks)
    if labels.ndim != 1 or labels.size != n:
        raise ValueError(f"blocks must be a 1-D array of n={n} labels, got shape {labels.shape}")
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return [g for g in np.split(order, bounds) if g.size > 1]


def _permutation_chunks(
    n: int, n_resamples: int, rng: np.random.Generator, groups: list[np.ndarray] | None
) -> Iterator[np.ndarray]:
    """Yield (k, n) index arrays, each row a uniform permutation (within blocks when ``groups`` is set)."""
    chunk = max(1, min(n_resamples, _CHUNK_ELEMENTS // max(n, 1)))
    done = 0
    base = np.arange(n)
    while done < n_resamples:
        k = min(chunk, n_resamples - done)
        if groups is None:
            idx = rng.permuted(np.broadcast_to(base, (k, n)), axis=1)
        else:
            idx = np.broadcast_to(base, (k, n)).copy()
            for g in groups:
                idx[:, g] = rng.permuted(np.broadcast_to(g, (k, g.size)), axis=1)
        done += k
        yield idx


def permutation_test(
    statistic: Callable[..., float],
    x: ArrayLike,
    y: ArrayLike,
    *,
    n_resamples: int = 9999,
    alternative: Alternative = "greater",
    blocks: ArrayLike | None = None,
    rng: np.random.Generator | int | None = None,
    vectorized: bool | None = None,
) -> PermutationResult:
    """Monte Carlo permutation test of ``statistic(x, y)`` permuting ``x`` relative to ``y``.

    With ``blocks`` (one label per element) ``x`` is shuffled only within blocks, e.g. within training
    stages. If ``statistic`` takes an ``axis`` keyword (or ``vectorized=True``) it is called once per chunk
    as ``statistic(x_perm, y_b, axis=-1)`` with ``x_perm`` of shape (k, n) and ``y_b`` broadcast to it;
    otherwise once per resample.
    """
    check_alternative(alternative)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    xa = np.asarray(x)
    ya = np.asarray(y)
    if xa.ndim != 1 or ya.ndim != 1 or xa.size != ya.size:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {xa.shape} and {ya.shape}")
    n = xa.size
    if n < 2:
        raise ValueError(f"need at least 2 pairs to permute, got {n}")
    gen = as_generator(rng)
    groups = _block_groups(blocks, n)
    if vectorized is None:
        vectorized = accepts_axis(statistic)
    observed = float(statistic(xa, ya, axis=-1) if vectorized else statistic(xa, ya))
    null = np.empty(n_resamples, dtype=float)
    pos = 0
    for idx in _permutation_chunks(n, n_resamples, gen, groups):
        k = idx.shape[0]
        xp = xa[idx]
        if vectorized:
            values = np.asarray(statistic(xp, np.broadcast_to(ya, xp.shape), axis=-1), dtype=float)
            if values.shape != (k,):
                raise ValueError(
                    f"vectorized statistic must return shape ({k},) for input ({k}, {n}), got {values.shape}"
                )
            null[pos : pos + k] = values
        else:
            null[pos : pos + k] = [float(statistic(row, ya)) for row in xp]
        pos += k
    pvalue = permutation_pvalue(observed, null, alternative)
    return PermutationResult(observed, pvalue, null, n_resamples, alternative)


def _standardized_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks with zero mean and unit norm (all zeros when the values are constant)."""
    r = scipy.stats.rankdata(a)
    r = r - r.mean()
    norm = math.sqrt(float(np.dot(r, r)))
    return r / norm if norm > 0 else np.zeros(r.size)


def spearman_permutation_test(
    x: ArrayLike,
    y: ArrayLike,
    *,
    n_resamples: int = 9999,
    alternative: Alternative = "greater",
    blocks: ArrayLike | None = None,
    rng: np.random.Generator | int | None = None,
) -> PermutationResult:
    """Permutation test of Spearman's rho: rank once, permute ranks, Pearson on ranks in chunks.

    This is the exact small-n counterpart of :func:`spearman_test` (Algorithm 1 with m = ``n_resamples``).
    """
    check_alternative(alternative)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    xa, ya = paired_1d(x, y, min_n=3, what="spearman_permutation_test")
    rx = _standardized_ranks(xa)
    ry = _standardized_ranks(ya)
    observed = float(np.dot(rx, ry))
    gen = as_generator(rng)
    groups = _block_groups(blocks, xa.size)
    null = np.empty(n_resamples, dtype=float)
    pos = 0
    for idx in _permutation_chunks(xa.size, n_resamples, gen, groups):
        k = idx.shape[0]
        null[pos : pos + k] = rx[idx] @ ry
        pos += k
    pvalue = permutation_pvalue(observed, null, alternative)
    return PermutationResult(observed, pvalue, null, n_resamples, alternative)


def within_block_ranks(values: ArrayLike, blocks: ArrayLike) -> tuple[np.ndarray, list[np.ndarray]]:
    """Ranks standardised to zero mean and unit norm inside each block (blocks of size 1 get 0).

    Returns the ranks and the index array of every block (in sorted label order).
    """
    arr = np.asarray(values, dtype=np.float64)
    labels = np.asarray(blocks)
    if arr.ndim != 1 or labels.shape != arr.shape:
        raise ValueError(f"values and blocks must be 1-D of one length, got {arr.shape} and {labels.shape}")
    out = np.zeros(arr.size)
    _, inverse = np.unique(labels, return_inverse=True)
    groups = [np.flatnonzero(inverse == b) for b in range(inverse.max() + 1 if inverse.size else 0)]
    for g in groups:
        out[g] = _standardized_ranks(arr[g])
    return out, groups


def blocked_spearman_permutation_test(
    x: ArrayLike,
    y: ArrayLike,
    blocks: ArrayLike,
    *,
    n_resamples: int = 9999,
    alternative: Literal["greater", "less"] = "less",
    rng: np.random.Generator | int | None = None,
) -> PermutationResult:
    """Exact counterpart of `blocked_spearman_test`: permute ``x`` within blocks.

    The statistic is sum_b sqrt(n_b) * rho_b over within-block standardised ranks (the Stouffer weights
    of the analytic test), so both tests order the data the same way.
    """
    rx, _ = within_block_ranks(x, blocks)
    ry, groups = within_block_ranks(y, blocks)
    weights = np.zeros(rx.size)
    for g in groups:
        weights[g] = math.sqrt(g.size)
    return permutation_test(
        lambda a, b, axis=-1: np.sum(a * b, axis=axis),
        rx,
        weights * ry,
        n_resamples=n_resamples,
        alternative=alternative,
        blocks=blocks,
        rng=rng,
    )
