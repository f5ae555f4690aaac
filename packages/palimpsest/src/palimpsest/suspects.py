"""Several suspects at once: Holm (family-wise) or Benjamini-Hochberg (FDR) correction in log space.

Query-test p-values reach 1e-300 and below, so the adjustment is done on log10 p: the adjusted values
equal statsmodels' `multipletests` wherever those are representable, and stay finite where they are not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["adjust_log10_pvalues", "adjust_suspects"]

Method = Literal["holm", "fdr_bh", "bonferroni"]


def adjust_log10_pvalues(log10_pvalues: Sequence[float] | np.ndarray, method: Method = "holm") -> np.ndarray:
    """Adjusted log10 p-values (Holm step-down, Benjamini-Hochberg step-up or Bonferroni), capped at 0."""
    lp = np.asarray(log10_pvalues, dtype=np.float64).ravel()
    if lp.size == 0:
        raise ValueError("need at least one p-value to adjust.")
    if np.isnan(lp).any() or (lp > 1e-12).any():
        raise ValueError("log10 p-values must be <= 0 and not NaN.")
    m = lp.size
    order = np.argsort(lp, kind="stable")
    sorted_lp = lp[order]
    rank = np.arange(1, m + 1)
    if method == "bonferroni":
        adj_sorted = sorted_lp + math.log10(m)
    elif method == "holm":
        adj_sorted = np.maximum.accumulate(sorted_lp + np.log10(m - rank + 1))
    elif method == "fdr_bh":
        adj_sorted = np.minimum.accumulate((sorted_lp + np.log10(m / rank))[::-1])[::-1]
    else:
        raise ValueError(f"unknown method {method!r}; use 'holm', 'fdr_bh' or 'bonferroni'.")
    out = np.empty(m)
    out[order] = np.minimum(adj_sorted, 0.0)
    return out


def adjust_suspects(
    table: pd.DataFrame,
    *,
    column: str = "log10_p",
    method: Method = "holm",
    mask: Sequence[bool] | np.ndarray | None = None,
) -> pd.DataFrame:
    """A copy of `table` with `<column>_<method>` holding the adjusted log10 p of each suspect row.

    `mask` selects the rows that form the family (others get NaN), e.g. to leave out control rows.
    """
    if column not in table.columns:
        raise ValueError(f"column {column!r} not in the table (columns: {list(table.columns)}).")
    out = table.copy()
    sel = np.ones(len(table), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if sel.shape != (len(table),):
        raise ValueError(f"mask must have one entry per row ({len(table)}), got shape {sel.shape}.")
    adjusted = np.full(len(table), np.nan)
    if sel.any():
        adjusted[sel] = adjust_log10_pvalues(table.loc[sel, column].to_numpy(dtype=float), method)
    out[f"{column}_{method}"] = adjusted
    return out
