"""`Table`: a named result table exported to csv (full precision), markdown and LaTeX."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reprokit.results._atomic import atomic_write_text
from reprokit.results._markdown import md_escape

__all__ = ["Table"]

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


@dataclass
class Table:
    """A named result table with a caption, exported to csv (full precision), markdown and LaTeX."""

    name: str
    frame: pd.DataFrame
    caption: str = ""
    float_format: str = "{:.4g}"
    interval_suffixes: tuple[str, str] | None = None
    """Set to ``("_lo", "_hi")`` to show columns ``m``, ``m_lo``, ``m_hi`` as one cell ``m [lo, hi]`` in
    markdown and LaTeX (the csv keeps the three numbers)."""

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in '/\\:*?"<>|') or self.name.startswith("."):
            raise ValueError(f"table name must be a plain file stem like 'table1', got {self.name!r}")
        if not isinstance(self.frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame, got {type(self.frame).__name__}")

    @classmethod
    def from_records(cls, name: str, records: Sequence[Mapping[str, Any]], caption: str = "") -> Table:
        """Build a table from a list of row dicts (column order from first appearance)."""
        return cls(name, pd.DataFrame.from_records(list(records)), caption)

    def _export_frame(self) -> pd.DataFrame:
        """The frame with a meaningful (named or non-range) index moved into columns."""
        idx = self.frame.index
        default = isinstance(idx, pd.RangeIndex) and idx.name is None and idx.start == 0 and idx.step == 1
        return self.frame if default else self.frame.reset_index()

    def _format_cell(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value))
        if isinstance(value, (float, np.floating)):
            return "nan" if math.isnan(value) else self.float_format.format(float(value))
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        if value is pd.NA or value is pd.NaT:
            return ""
        return str(value)

    def _string_rows(self) -> tuple[list[str], list[list[str]], list[bool]]:
        frame = self._export_frame()
        numeric = {
            c: pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
            for c in frame.columns
        }
        lo_sfx, hi_sfx = self.interval_suffixes or ("", "")
        bounded = {
            c
            for c in frame.columns
            if self.interval_suffixes and f"{c}{lo_sfx}" in frame.columns and f"{c}{hi_sfx}" in frame.columns
        }
        hidden = {f"{c}{lo_sfx}" for c in bounded} | {f"{c}{hi_sfx}" for c in bounded}
        shown = [c for c in frame.columns if c not in hidden]
        rows = []
        for record in frame.to_dict(orient="records"):
            row = []
            for c in shown:
                cell = self._format_cell(record[c])
                lo, hi = (
                    (record.get(f"{c}{lo_sfx}"), record.get(f"{c}{hi_sfx}")) if c in bounded else (None, None)
                )
                if c in bounded and not (pd.isna(lo) or pd.isna(hi)):
                    cell += f" [{self._format_cell(lo)}, {self._format_cell(hi)}]"
                row.append(cell)
            rows.append(row)
        return [str(c) for c in shown], rows, [numeric[c] for c in shown]

    def to_csv(self) -> str:
        """CSV with full precision (the data, not the display format)."""
        return self._export_frame().to_csv(index=False, lineterminator="\n")

    def to_markdown(self) -> str:
        """GitHub markdown table (tabulate), floats shown with ``float_format``."""
        headers, rows, numeric = self._string_rows()
        frame = pd.DataFrame([[md_escape(c) for c in r] for r in rows], columns=headers)
        if not headers:
            return ""
        colalign = tuple("right" if num else "left" for num in numeric)
        return frame.to_markdown(index=False, disable_numparse=True, colalign=colalign)

    def to_latex(self) -> str:
        """A booktabs ``table`` environment with caption and ``tab:<name>`` label; text is escaped."""
        headers, rows, numeric = self._string_rows()
        spec = "".join("r" if num else "l" for num in numeric)
        lines = [r"\begin{table}[htbp]", r"\centering"]
        if self.caption:
            lines.append(rf"\caption{{{_latex_escape(self.caption)}}}")
        label = re.sub(r"[^A-Za-z0-9_.:-]", "-", self.name)  # labels are not typeset: no escaping
        lines.append(rf"\label{{tab:{label}}}")
        lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
        lines.append(" & ".join(_latex_escape(h) for h in headers) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in rows]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"

    def save(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``<name>.csv``, ``<name>.md`` (caption above the table) and ``<name>.tex`` atomically."""
        out = Path(out_dir)
        md = self.to_markdown()
        if self.caption:
            md = f"*{md_escape(self.caption)}*\n\n{md}"
        return {
            "csv": atomic_write_text(out / f"{self.name}.csv", self.to_csv()),
            "md": atomic_write_text(out / f"{self.name}.md", md + "\n"),
            "tex": atomic_write_text(out / f"{self.name}.tex", self.to_latex()),
        }
