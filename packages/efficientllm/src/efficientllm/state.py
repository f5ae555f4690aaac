"""Which units a pruned model keeps (KV groups and FFN channels per layer, hidden channels), as JSON.

Units are numbered as in the source model, before any pruning, so a state read from a checkpoint says
exactly which source channels survive whatever the compaction history. `kept` lists what the model still
computes with; `physical` lists what its tensors hold (the units of the last compaction). Units in
`physical` but not in `kept` are masked: present, zero, and kept zero.
"""

from __future__ import annotations

import bisect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from efficientllm.groups import GroupKind, PruningSpace
from reprokit.errors import DataError
from reprokit.results import atomic_write_text

__all__ = ["STATE_VERSION", "PruningState", "Units"]

STATE_VERSION = 1


@dataclass
class Units:
    """Sorted source indices: KV groups (`heads`) and FFN channels (`ffn`) per layer, hidden channels."""

    heads: list[list[int]]
    ffn: list[list[int]]
    hidden: list[int]

    def get(self, kind: GroupKind, layer: int | None = None) -> list[int]:
        """The unit list of `kind` (in `layer`)."""
        if kind == "hidden":
            return self.hidden
        if layer is None:
            raise ValueError(f"{kind} units belong to a layer: pass layer=")
        return (self.heads if kind == "head" else self.ffn)[layer]

    def copy(self) -> Units:
        """A deep copy."""
        return Units([list(h) for h in self.heads], [list(f) for f in self.ffn], list(self.hidden))

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, for JSON."""
        return {"heads": self.heads, "ffn": self.ffn, "hidden": self.hidden}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Units:
        """Inverse of `to_dict`; indices are sorted and checked for duplicates."""
        try:
            heads = [_sorted_unique(h) for h in data["heads"]]
            ffn = [_sorted_unique(f) for f in data["ffn"]]
            hidden = _sorted_unique(data["hidden"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"pruning state units must be {{'heads': [[int]], 'ffn': [[int]], 'hidden': [int]}}: {exc}"
            ) from exc
        if len(heads) != len(ffn):
            raise DataError(
                f"pruning state has {len(heads)} head lists but {len(ffn)} FFN lists; one per layer."
            )
        return cls(heads, ffn, hidden)


def _sorted_unique(values: Any) -> list[int]:
    out = sorted(int(v) for v in values)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate unit indices in {out}")
    if out and out[0] < 0:
        raise ValueError(f"negative unit index {out[0]}")
    return out


@dataclass
class PruningState:
    """Kept and physically present units of a model, in source-model numbering (see the module docstring).

    `source` gives the source widths (``{"heads": [...], "ffn": [...], "hidden": D}``) so that ratios and
    the source parameter count stay known after compaction. `heads_per_group` and `head_dim` fix how many
    weight rows one KV group owns.
    """

    kept: Units
    physical: Units
    source: dict[str, Any]
    head_dim: int
    heads_per_group: int
    version: int = field(default=STATE_VERSION)

    # ---------------------------------------------------------------------------------- construction
    @classmethod
    def full(cls, space: PruningSpace) -> PruningState:
        """Every unit of `space` kept, for a model that has not been pruned yet (source = its widths)."""
        units = Units(
            [list(range(g)) for g in space.kv_groups],
            [list(range(f)) for f in space.ffn],
            list(range(space.hidden_size)),
        )
        source = {"heads": list(space.kv_groups), "ffn": list(space.ffn), "hidden": space.hidden_size}
        return cls(units, units.copy(), source, space.head_dim, space.heads_per_group)

    def copy(self) -> PruningState:
        """A deep copy."""
        return PruningState(
            self.kept.copy(),
            self.physical.copy(),
            json.loads(json.dumps(self.source)),
            self.head_dim,
            self.heads_per_group,
            self.version,
        )

    def source_state(self) -> PruningState:
        """A state that keeps every source unit (its counts give the source model's parameter count)."""
        units = Units(
            [list(range(g)) for g in self.source["heads"]],
            [list(range(f)) for f in self.source["ffn"]],
            list(range(self.source["hidden"])),
        )
        return PruningState(units, units.copy(), dict(self.source), self.head_dim, self.heads_per_group)

    # ---------------------------------------------------------------------------------------- queries
    @property
    def num_layers(self) -> int:
        """Number of decoder layers."""
        return len(self.kept.heads)

    def kept_indices(self, kind: GroupKind, layer: int | None = None) -> list[int]:
        """Source indices of the kept units of `kind` (in `layer`)."""
        return self.kept.get(kind, layer)

    def kept_count(self, kind: GroupKind, layer: int | None = None) -> int:
        """How many units of `kind` (in `layer`) are kept."""
        return len(self.kept.get(kind, layer))

    def positions(self, kind: GroupKind, layer: int | None = None, *, removed: bool = False) -> np.ndarray:
        """Tensor positions of the kept units of `kind` (of the masked ones with ``removed=True``)."""
        physical = np.asarray(self.physical.get(kind, layer), dtype=np.int64)
        keep = np.isin(physical, np.asarray(self.kept.get(kind, layer), dtype=np.int64))
        return np.flatnonzero(~keep if removed else keep)

    def entries(
        self, kind: GroupKind, layer: int | None, unit: int, *, removed: bool = False
    ) -> torch.Tensor:
        """Tensor entries along an axis of `unit` entries per unit: of kept units, or of masked ones."""
        pos = torch.from_numpy(self.positions(kind, layer, removed=removed))
        return (pos[:, None] * unit + torch.arange(unit)).reshape(-1)

    @property
    def is_compact(self) -> bool:
        """Whether the tensors hold exactly the kept units (nothing masked)."""
        return self.kept == self.physical

    def widths(self) -> dict[str, Any]:
        """Kept widths: query heads and KV heads per layer, FFN channels per layer, hidden channels."""
        units = self.kept
        return {
            "heads": [len(h) * self.heads_per_group for h in units.heads],
            "kv_heads": [len(h) for h in units.heads],
            "ffn": [len(f) for f in units.ffn],
            "hidden": len(units.hidden),
        }

    def removed_counts(self) -> dict[str, int]:
        """Units removed since the source model, by kind (heads counted as KV groups)."""
        w = self.widths()
        return {
            "head": sum(self.source["heads"]) - sum(w["kv_heads"]),
            "ffn": sum(self.source["ffn"]) - sum(w["ffn"]),
            "hidden": self.source["hidden"] - w["hidden"],
        }

    # -------------------------------------------------------------------------------------- changes
    def remove(self, kind: GroupKind, layer: int | None, indices: list[int] | tuple[int, ...]) -> None:
        """Drop the source `indices` of `kind` (in `layer`) from the kept units; they must be kept now."""
        units = self.kept.get(kind, layer)
        for i in sorted({int(i) for i in indices}, reverse=True):
            pos = bisect.bisect_left(units, i)
            if pos == len(units) or units[pos] != i:
                raise ValueError(f"{kind} unit {i} of layer {layer} is not kept")
            del units[pos]

    def mark_compact(self) -> None:
        """Record that the tensors now hold exactly the kept units (after `compact`)."""
        self.physical = self.kept.copy()

    def check(self, space: PruningSpace) -> None:
        """Raise `DataError` unless this state fits the tensors of `space` (layers, widths, head shape)."""
        problems = []
        if self.num_layers != space.num_layers:
            problems.append(f"{self.num_layers} layers, model {space.num_layers}")
        if (self.head_dim, self.heads_per_group) != (space.head_dim, space.heads_per_group):
            problems.append(
                f"head_dim {self.head_dim} x {self.heads_per_group} query heads per KV group, model "
                f"{space.head_dim} x {space.heads_per_group}"
            )
        if not problems:
            widths = (
                [len(h) for h in self.physical.heads],
                [len(f) for f in self.physical.ffn],
                len(self.physical.hidden),
            )
            model = (list(space.kv_groups), list(space.ffn), space.hidden_size)
            if widths != model:
                problems.append(f"physical widths (kv groups, ffn, hidden) {widths}, model {model}")
            for kind in ("head", "ffn", "hidden"):
                for layer in space.layer_keys(kind):  # type: ignore[arg-type]
                    if not set(self.kept.get(kind, layer)) <= set(self.physical.get(kind, layer)):  # type: ignore[arg-type]
                        problems.append(f"kept {kind} units of layer {layer} that are not physically present")
        if problems:
            raise DataError(
                "the pruning state does not fit this model: "
                + "; ".join(problems)
                + ". Load the state saved "
                "with this checkpoint, or start from PruningState.full(find_groups(model))."
            )

    # ------------------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "version": self.version,
            "head_dim": self.head_dim,
            "heads_per_group": self.heads_per_group,
            "source": self.source,
            "kept": self.kept.to_dict(),
            "physical": self.physical.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PruningState:
        """Inverse of `to_dict`; raises `DataError` on anything malformed."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise DataError(
                f"not an efficientllm pruning state of version {STATE_VERSION} (got version "
                f"{data.get('version') if isinstance(data, dict) else type(data).__name__!r})."
            )
        try:
            source = {
                "heads": [int(g) for g in data["source"]["heads"]],
                "ffn": [int(f) for f in data["source"]["ffn"]],
                "hidden": int(data["source"]["hidden"]),
            }
            state = cls(
                Units.from_dict(data["kept"]),
                Units.from_dict(data["physical"]),
                source,
                int(data["head_dim"]),
                int(data["heads_per_group"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed pruning state, missing or bad field: {exc}") from exc
        return state

    def to_json(self) -> str:
        """The state as compact JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PruningState:
        """Parse `to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"pruning state is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the state as JSON, atomically."""
        return atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PruningState:
        """Read a state written by `save`."""
        p = Path(path)
        if not p.is_file():
            raise DataError(f"pruning state file {p} does not exist; it is written next to each checkpoint.")
        return cls.from_json(p.read_text())
