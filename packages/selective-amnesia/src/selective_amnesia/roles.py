"""Indirect effects averaged over facts by token role and layer, and the layers this proposes to train.

Prompts differ in length and in where the subject sits, so per-fact grids are aligned by the role a token
plays: before the subject; the subject's first, middle and last token; after the subject its first,
middle and last token (the prompt's last token is "after last"). "Middle" averages the tokens strictly
between first and last. A one-token subject is its own first and last token; a single token after the
subject is both "after first" and "after last"; a role a prompt does not have is left out of that fact's
mean (never filled with zeros).

The official SHA256 aggregation script (``utils/generate_graphs.py``) has two index slips that this module
does not copy: its "subject last" re-uses the *first* subject token, and its "after first" takes position
subject_end + 1, skipping the token right after the subject.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reprokit.errors import ConfigError, DataError
from selective_amnesia.layout import KINDS
from selective_amnesia.tracing import TraceResult

__all__ = ["ROLES", "propose_layers", "role_effects", "token_roles"]

ROLES: tuple[str, ...] = (
    "before_subject",
    "subject_first",
    "subject_middle",
    "subject_last",
    "after_first",
    "after_middle",
    "after_last",
)


def token_roles(n_tokens: int, subject_range: tuple[int, int]) -> dict[str, list[int]]:
    """Token positions of each role in a prompt of `n_tokens` with the subject at ``[start, end)``."""
    start, end = subject_range
    if not 0 <= start < end <= n_tokens:
        raise DataError(f"subject range {subject_range} does not fit a prompt of {n_tokens} tokens.")
    after = end < n_tokens
    return {
        "before_subject": list(range(start)),
        "subject_first": [start],
        "subject_middle": list(range(start + 1, end - 1)),
        "subject_last": [end - 1],
        "after_first": [end] if after else [],
        "after_middle": list(range(end + 1, n_tokens - 1)),
        "after_last": [n_tokens - 1] if after else [],
    }


def role_effects(results: Sequence[TraceResult], kind: str | None = None) -> pd.DataFrame:
    """Mean indirect effect per (role, layer) over `results` of one module kind.

    Rows are `ROLES` in order, columns the layers; a role no fact has is a row of NaN. ``df.attrs
    ["n_facts"]`` counts, per role, the facts that have it. `kind` selects results of that kind; without
    it all results must share one kind.
    """
    if kind is not None:
        if kind not in KINDS:
            raise ConfigError(f"unknown module kind {kind!r}; choose one of {', '.join(KINDS)}.")
        results = [r for r in results if r.kind == kind]
    if not results:
        raise DataError(f"no traced facts{f' of kind {kind!r}' if kind else ''} to aggregate.")
    kinds = sorted({r.kind for r in results})
    if len(kinds) > 1:
        raise ConfigError(f"results mix the module kinds {kinds}; pass kind= to aggregate one of them.")
    layers = {r.num_layers for r in results}
    if len(layers) > 1:
        raise DataError(f"results come from models with different layer counts {sorted(layers)}.")
    n_layers = layers.pop()
    sums = np.zeros((len(ROLES), n_layers))
    counts = np.zeros(len(ROLES), dtype=int)
    for result in results:
        effects = result.indirect_effects
        for row, positions in enumerate(token_roles(effects.shape[0], result.subject_range).values()):
            if positions:
                sums[row] += effects[positions].mean(axis=0)
                counts[row] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    means[counts == 0] = np.nan
    table = pd.DataFrame(
        means, index=pd.Index(ROLES, name="role"), columns=pd.RangeIndex(n_layers, name="layer")
    )
    table.attrs["kind"] = kinds[0]
    table.attrs["n_facts"] = dict(zip(ROLES, counts.tolist(), strict=True))
    return table


def propose_layers(
    results: Sequence[TraceResult], kind: str, k: int, *, role: str | None = None
) -> tuple[int, ...]:
    """The `k` layers with the largest mean indirect effect of module `kind`, largest first.

    A layer's effect is its mean indirect effect at `role` (e.g. ``"subject_last"``), or, by default,
    at the role where that layer's mean is largest. Ties go to the lower layer.
    """
    table = role_effects(results, kind)
    if not isinstance(k, int) or not 1 <= k <= table.shape[1]:
        raise ConfigError(f"k must be an integer in 1..{table.shape[1]} (the model's layers), got {k!r}.")
    if role is None:
        scores = table.max(axis=0, skipna=True).to_numpy()
    elif role in ROLES:
        scores = table.loc[role].to_numpy()
    else:
        raise ConfigError(f"unknown token role {role!r}; choose one of {', '.join(ROLES)}.")
    scores = np.nan_to_num(scores, nan=-np.inf)
    order = sorted(range(len(scores)), key=lambda layer: (-scores[layer], layer))
    return tuple(order[:k])
