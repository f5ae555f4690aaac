"""Markdown helpers shared by tables, claims and the report."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def md_escape(text: str) -> str:
    """Text safe inside one markdown table cell (pipes escaped, line breaks flattened)."""
    return text.replace("|", r"\|").replace("\r", " ").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; cells are escaped."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_value(value: float | str | None) -> str:
    """A measured value for a report: numbers with 4 significant digits, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        v = float(value)
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(value)
