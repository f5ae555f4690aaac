"""Several suspects at once: Holm (family-wise) or Benjamini-Hochberg (FDR) correction in log space.

Query-test p-values reach 1e-300 and below, so the adjustment is done on log10 p
(`reprokit.stats.adjust_log10_pvalues`): the adjusted values equal statsmodels' `multipletests` wherever
those are representable, and stay finite where they are not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reprokit.stats import LogAdjustMethod, adjust_log10_pvalues

__all__ = ["adjust_suspects"]


def adjust_suspects(
    table: pd.DataFrame,
    *,
    column: str = "log10_p",
    method: LogAdjustMethod = "holm",
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
