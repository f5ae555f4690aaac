"""Causal-tracing figures: one fact's (token x layer) heatmap, ROME style, and the paper's aggregate figure
(mean indirect effect by token role and layer, one panel per module kind)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from reprokit.errors import DataError
from reprokit.results import new_figure
from selective_amnesia.tracing import TraceResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_role_effects", "plot_trace"]

_CMAPS = {"hidden": "Purples", "mlp": "Greens", "attn": "Reds"}
_LABELS = {"hidden": "single restored layer", "mlp": "MLP", "attn": "attention"}


def plot_trace(result: TraceResult) -> Figure:
    """One fact's restored p(answer) for every (token, centre layer); subject tokens are starred."""
    fig, ax = new_figure(figsize=(0.35 * result.num_layers + 2.5, 0.3 * len(result.tokens) + 1.5))
    image = ax.pcolormesh(result.scores, cmap=_CMAPS.get(result.kind, "Greys"), vmin=result.low_score)
    start, end = result.subject_range
    labels = [f"{t}*" if start <= i < end else t for i, t in enumerate(result.tokens)]
    ax.invert_yaxis()
    ax.set_yticks(np.arange(len(labels)) + 0.5, labels)
    ax.set_xticks(np.arange(0, result.num_layers, max(1, result.num_layers // 8)) + 0.5)
    ax.set_xticklabels(np.arange(0, result.num_layers, max(1, result.num_layers // 8)))
    window = f" (window {result.window})" if result.window > 1 else ""
    ax.set_xlabel(f"centre layer of the restored {_LABELS.get(result.kind, result.kind)}{window}")
    ax.set_title(
        f"p({result.answer_token.strip()!r}): clean {result.high_score:.3f}, corrupted {result.low_score:.3f}"
    )
    fig.colorbar(image, ax=ax)
    return fig


def plot_role_effects(tables: Mapping[str, pd.DataFrame], roles: Sequence[str] | None = None) -> Figure:
    """The aggregate figure: for each module kind (e.g. MLP and attention), mean indirect effect by token
    role (rows) and centre layer (columns), from `role_effects` tables keyed by kind."""
    if not tables:
        raise DataError("no role-effect tables to plot; pass role_effects(...) per module kind.")
    fig, axes = new_figure(
        1, len(tables), figsize=(3.6 * len(tables) + 1.2, 3.2), squeeze=False, layout="constrained"
    )
    for i, (ax, (kind, table)) in enumerate(zip(axes[0], tables.items(), strict=True)):
        shown = table.loc[list(roles)] if roles is not None else table
        image = ax.pcolormesh(shown.to_numpy(dtype=float), cmap=_CMAPS.get(kind, "Greys"))
        ax.invert_yaxis()
        labels = [str(r).replace("_", " ") for r in shown.index] if i == 0 else []
        ax.set_yticks(np.arange(len(shown.index)) + 0.5, labels or [""] * len(shown.index))
        ticks = np.arange(0, shown.shape[1], max(1, shown.shape[1] // 8))
        ax.set_xticks(ticks + 0.5, [str(t) for t in ticks])
        ax.set_xlabel("centre layer")
        ax.set_title(f"{_LABELS.get(kind, kind)}: mean indirect effect")
        fig.colorbar(image, ax=ax)
    return fig
