"""Tables over several seeds: per-seed values, the across-seed mean and a 95% interval.

Float results differ between CPUs, so a tiny-scale verdict is judged over independent seeds (world,
training order and evaluation all change with the seed), never on one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reprokit.stats import seed_interval

__all__ = ["SeedResults", "aggregate_seeds", "mean_interval"]


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the finite per-seed values (`reprokit.stats.seed_interval`); a table cell
    that is NaN or infinite in some seed is left out, and none left gives NaNs."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    ci = seed_interval(x, confidence)
    return ci.estimate, ci.low, ci.high


def _key_columns(frame: pd.DataFrame, keys: Sequence[str] | None) -> list[str]:
    if keys is not None:
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            raise KeyError(f"key columns {missing} not in table columns {list(frame.columns)}")
        return list(keys)
    return [
        c
        for c in frame.columns
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    ]


def aggregate_seeds(
    frames: Sequence[pd.DataFrame], seeds: Sequence[int], keys: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-seed table with a ``seed`` column, mean table with ``<col>_lo`` / ``<col>_hi`` 95% bounds).

    Rows are matched across seeds by the key columns (declared, or the non-numeric ones); every other
    numeric column becomes its across-seed mean (other text columns are left out of the mean table).
    With one seed the mean table is the table itself.
    """
    if len(frames) != len(seeds) or not frames:
        raise ValueError("need one frame per seed and at least one seed")
    per_seed = pd.concat(
        [f.assign(seed=s)[["seed", *f.columns]] for f, s in zip(frames, seeds, strict=True)],
        ignore_index=True,
    )
    if len(frames) == 1:
        return per_seed, frames[0].reset_index(drop=True)
    key_cols = _key_columns(frames[0], keys)
    # Text columns that are not keys (e.g. a formatted p-value) have no mean; the per-seed table keeps them.
    numeric = pd.api.types.is_numeric_dtype
    metrics = [c for c in frames[0].columns if c not in key_cols and numeric(per_seed[c])]
    rows = []
    order = frames[0][key_cols].drop_duplicates() if key_cols else pd.DataFrame(index=[0])
    for _, key_row in order.iterrows():
        mask = np.ones(len(per_seed), dtype=bool)
        for k in key_cols:
            mask &= (per_seed[k] == key_row[k]).to_numpy()
        group = per_seed[mask]
        row: dict[str, object] = {k: key_row[k] for k in key_cols}
        row["n_seeds"] = int(group["seed"].nunique())
        for m in metrics:
            values = pd.to_numeric(group[m], errors="coerce").to_numpy(dtype=float)
            mean, lo, hi = mean_interval(values)
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean, lo, hi
        rows.append(row)
    return per_seed, pd.DataFrame(rows)


@dataclass
class SeedResults:
    """Every seed's tables of one run, for the claims and the report."""

    seeds: list[int]
    frames: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    keys: Mapping[str, Sequence[str] | None] = field(default_factory=dict)

    def per_seed(self, name: str) -> list[pd.DataFrame]:
        """Table `name` of each seed, in seed order."""
        return self.frames[name]

    def first(self, name: str) -> pd.DataFrame:
        """Table `name` of the first seed."""
        return self.frames[name][0]

    def stacked(self, name: str) -> pd.DataFrame:
        """Table `name` of every seed, stacked, with a ``seed`` column first."""
        return aggregate_seeds(self.frames[name], self.seeds, self.keys.get(name))[0]

    def mean(self, name: str) -> pd.DataFrame:
        """Table `name` averaged over seeds with ``_lo`` / ``_hi`` 95% bounds (see `aggregate_seeds`)."""
        return aggregate_seeds(self.frames[name], self.seeds, self.keys.get(name))[1]

    def values(self, name: str, column: str, **where: object) -> list[float]:
        """One number per seed: `column` of the row of table `name` matching ``where`` (exactly one row)."""
        out = []
        for seed, frame in zip(self.seeds, self.frames[name], strict=True):
            mask = np.ones(len(frame), dtype=bool)
            for k, v in where.items():
                mask &= (frame[k] == v).to_numpy()
            hit = frame.loc[mask, column]
            if len(hit) != 1:
                raise KeyError(f"{name}: {len(hit)} rows match {where} for seed {seed}, expected 1")
            out.append(float(hit.iloc[0]))
        return out
