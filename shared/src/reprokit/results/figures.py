"""Figures drawn headless (no pyplot state, no global backend switch) and saved atomically."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprokit.results._atomic import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure"]


def new_figure(*args: Any, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots``-like ``(fig, axes)`` on an Agg canvas, without pyplot or a global backend switch.

    The figure is not registered with pyplot, so it renders headless and is freed when dropped.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig_kw = {k: kwargs.pop(k) for k in ("figsize", "dpi", "layout", "constrained_layout") if k in kwargs}
    fig = Figure(**fig_kw)
    FigureCanvasAgg(fig)
    axes: Axes | Any = fig.subplots(*args, **kwargs)
    return fig, axes


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Render ``fig`` (format from the suffix, png by default) and write it atomically; closes the figure."""
    target = Path(path)
    if not target.suffix:
        target = target.with_suffix(".png")
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=target.suffix.lstrip(".").lower(), dpi=dpi, bbox_inches="tight")
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close(fig)
    return atomic_write_bytes(target, buf.getvalue())
