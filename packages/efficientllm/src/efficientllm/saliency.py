"""Group saliency from the training step's own gradients, and one global ranking across heads, FFN and hidden.

Per weight (LLM-Pruner's Taylor scores): first order ``|g*w|``; second order ``|g*w - F*w²/2|`` with the
diagonal Fisher F read from AdamW's ``exp_avg_sq`` (bias-corrected; an EMA of g², so free) when the
optimizer has it, else g². A group's saliency is the sum over its weights (every weight counts for each
group it belongs to: a q_proj entry for its head and for its hidden channel). Scores accumulate over the
steps between pruning events, as a sum (reset at each event) or an EMA.

Ranking normalises a group's score by its parameter count (``"param"``, the default: removal cost per
weight, comparable across types), not at all (``"none"``), or per parameter and then by the median of its
type (``"type"``: each type ranked relative to itself, which lets hidden channels compete; see the tiny
notes). Removable candidates are bundles of `round_to` channels (the least salient ones of a layer) and, in
uniform head mode, one KV group from every layer.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from efficientllm.groups import KINDS, GroupKind, HeadsMode, PruningSpace
from efficientllm.state import PruningState
from reprokit.errors import ConfigError

__all__ = [
    "ACCUMULATE",
    "NORMALIZE",
    "ORDERS",
    "Candidate",
    "GroupScores",
    "SaliencyAccumulator",
    "element_saliency",
    "group_saliency",
    "iter_ranked",
    "rank_groups",
    "unit_score_stats",
]

Order = Literal["first", "second"]
Normalize = Literal["param", "none", "type"]
Accumulate = Literal["sum", "ema"]
ORDERS: tuple[Order, ...] = ("first", "second")
NORMALIZE: tuple[Normalize, ...] = ("param", "none", "type")
ACCUMULATE: tuple[Accumulate, ...] = ("sum", "ema")


# ------------------------------------------------------------------------------------------ scores
@dataclass
class GroupScores:
    """Saliency per source unit: `head[layer][kv_group]`, `ffn[layer][channel]`, `hidden[channel]`."""

    head: list[torch.Tensor]
    ffn: list[torch.Tensor]
    hidden: torch.Tensor

    @classmethod
    def zeros(cls, state: PruningState, device: torch.device | str = "cpu") -> GroupScores:
        """All-zero scores sized by the source widths of `state`."""
        src = state.source
        z = lambda n: torch.zeros(n, dtype=torch.float32, device=device)  # noqa: E731
        return cls([z(g) for g in src["heads"]], [z(f) for f in src["ffn"]], z(src["hidden"]))

    def get(self, kind: GroupKind, layer: int | None = None) -> torch.Tensor:
        """The score vector of `kind` (in `layer`)."""
        if kind == "hidden":
            return self.hidden
        assert layer is not None
        return (self.head if kind == "head" else self.ffn)[layer]

    def tensors(self) -> list[torch.Tensor]:
        """Every score vector."""
        return [*self.head, *self.ffn, self.hidden]

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, for JSON checkpoints."""
        return {
            "head": [t.tolist() for t in self.head],
            "ffn": [t.tolist() for t in self.ffn],
            "hidden": self.hidden.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], device: torch.device | str = "cpu") -> GroupScores:
        """Inverse of `to_dict`."""
        t = lambda x: torch.tensor(x, dtype=torch.float32, device=device)  # noqa: E731
        return cls([t(h) for h in data["head"]], [t(f) for f in data["ffn"]], t(data["hidden"]))


def _fisher(param: torch.nn.Parameter, optimizer: torch.optim.Optimizer | None) -> torch.Tensor | None:
    """Bias-corrected AdamW second moment of `param`, or None when the optimizer has none yet."""
    if optimizer is None:
        return None
    st = optimizer.state.get(param, {})
    v = st.get("exp_avg_sq")
    step = st.get("step")
    if v is None or step is None or v.shape != param.shape:
        return None
    t = float(step)
    if t <= 0:
        return None
    beta2 = next(
        (g["betas"][1] for g in optimizer.param_groups if any(p is param for p in g["params"])), None
    )
    if beta2 is None:
        return None
    return v / (1.0 - beta2**t)


@torch.no_grad()
def element_saliency(
    param: torch.nn.Parameter, order: Order = "first", optimizer: torch.optim.Optimizer | None = None
) -> torch.Tensor | None:
    """Per-weight saliency of `param` from its current ``.grad`` (None without a gradient), in float32."""
    if param.grad is None:
        return None
    g = param.grad.float()
    w = param.detach().float()
    gw = g * w
    if order == "first":
        return gw.abs_()
    fisher = _fisher(param, optimizer)
    f = g * g if fisher is None else fisher.float()
    return (gw - 0.5 * f * w * w).abs_()


@torch.no_grad()
def group_saliency(
    space: PruningSpace,
    state: PruningState,
    *,
    order: Order = "first",
    optimizer: torch.optim.Optimizer | None = None,
    out: GroupScores | None = None,
    index: dict[tuple, torch.Tensor] | None = None,
) -> GroupScores:
    """Saliency of every unit from the gradients in ``.grad``: sums of `element_saliency` over its weights.

    Adds into `out` when given (else into fresh zeros) and returns it. Masked units get zero (their
    weights are zero). `index` caches the source index of each tensor position (valid until compaction).
    """
    device = space.embed.weight.device
    scores = out if out is not None else GroupScores.zeros(state, device)
    index = {} if index is None else index
    for spec in space.params:
        if not spec.axes:
            continue
        e = element_saliency(spec.param, order, optimizer)
        if e is None:
            continue
        for axis in spec.axes:
            other = [d for d in range(e.dim()) if d != axis.dim]
            per_entry = e.sum(dim=other) if other else e
            per_unit = per_entry.view(-1, axis.unit).sum(dim=1)
            key = (axis.kind, axis.layer)
            if key not in index:
                index[key] = torch.tensor(state.physical.get(axis.kind, axis.layer), device=device)
            scores.get(axis.kind, axis.layer).index_add_(0, index[key], per_unit.to(device))
    return scores


class SaliencyAccumulator:
    """Per-unit saliency accumulated over training steps: a sum reset at each event, or an EMA."""

    def __init__(
        self,
        space: PruningSpace,
        state: PruningState,
        *,
        order: Order = "first",
        accumulate: Accumulate = "sum",
        ema_beta: float = 0.9,
    ) -> None:
        if order not in ORDERS:
            raise ConfigError(f"saliency order {order!r} is unknown; use one of {', '.join(ORDERS)}.")
        if accumulate not in ACCUMULATE:
            raise ConfigError(f"accumulate={accumulate!r} is unknown; use one of {', '.join(ACCUMULATE)}.")
        self.space, self.state = space, state
        self.order, self.accumulate, self.ema_beta = order, accumulate, ema_beta
        self.device = space.embed.weight.device
        self.scores = GroupScores.zeros(state, self.device)
        self.steps = 0
        self._index: dict[tuple, torch.Tensor] = {}
        self._physical = state.physical

    def update(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Add this step's saliency (from ``.grad``; call after backward, before ``zero_grad``)."""
        if self._physical is not self.state.physical:  # compacted since: tensor positions moved
            self._index, self._physical = {}, self.state.physical
        kwargs = {"order": self.order, "optimizer": optimizer, "index": self._index}
        if self.accumulate == "sum":
            group_saliency(self.space, self.state, out=self.scores, **kwargs)
        else:
            step = group_saliency(self.space, self.state, **kwargs)
            beta = self.ema_beta if self.steps else 0.0
            for acc, new in zip(self.scores.tensors(), step.tensors(), strict=True):
                acc.mul_(beta).add_(new, alpha=1.0 - beta)
        self.steps += 1

    def reset(self) -> None:
        """Start accumulating afresh."""
        for t in self.scores.tensors():
            t.zero_()
        self.steps = 0

    def after_event(self) -> None:
        """A pruning event used the scores: a sum starts over, an EMA carries on."""
        if self.accumulate == "sum":
            self.reset()


# ----------------------------------------------------------------------------------------- ranking
@dataclass(frozen=True)
class Candidate:
    """Units removed together: ``units`` are ``(layer, source index)`` pairs (layer None for hidden).

    `score` is the ranking key (normalised), `raw` the summed saliency, `params` the weights it removes at
    ranking time; `source` and `order` say which per-layer sequence it comes from and where in it (a
    sequence's candidates are only taken in order).
    """

    kind: GroupKind
    units: tuple[tuple[int | None, int], ...]
    score: float
    raw: float
    params: int
    source: tuple[str, int | None]
    order: int


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` bundles of `size` over n sorted units, the first taking the remainder; the last dropped.

    The last bundle would empty the layer, so it is never a candidate (a layer keeps >= 1 unit).
    """
    first = n % size or size
    cuts = [(0, min(first, n))] + [(lo, lo + size) for lo in range(first, n, size)]
    return cuts[:-1]


def _sort_key(c: Candidate) -> tuple[float, int, int, int]:
    return (c.score, c.order, KINDS.index(c.kind), -1 if c.source[1] is None else c.source[1])


def iter_ranked(
    space: PruningSpace,
    state: PruningState,
    scores: GroupScores,
    *,
    normalize: Normalize = "param",
    round_to: int = 1,
    kinds: Iterable[GroupKind] = KINDS,
    heads: HeadsMode | None = None,
    embeddings: bool = True,
) -> Iterator[Candidate]:
    """`rank_groups` lazily: candidates are made as they are consumed (a merge of per-layer sorted runs).

    A pruning event only looks at the cheapest few of ~10⁵ candidates, so this is what `Pruner` uses.
    """
    if normalize not in NORMALIZE:
        raise ConfigError(f"normalize={normalize!r} is unknown; use one of {', '.join(NORMALIZE)}.")
    if round_to < 1:
        raise ConfigError(f"round_to must be >= 1, got {round_to}.")
    heads = heads or space.heads_mode
    runs = _sorted_runs(space, state, scores, tuple(kinds), embeddings)
    medians = _type_medians(runs) if normalize == "type" else {}

    def make(kind: GroupKind, units, raw: float, params: int, source, order: int) -> Candidate:
        score = raw if normalize == "none" else raw / max(params, 1) / medians.get(kind, 1.0)
        return Candidate(kind, tuple(units), score, raw, int(params), source, order)

    def layer_run(kind: GroupKind, layer: int | None) -> Iterator[Candidate]:
        idx_t, vals, n_unit = runs[(kind, layer)]
        idx = idx_t.tolist()
        prefix = torch.cat([torch.zeros(1, dtype=torch.float64), vals.cumsum(0)]).tolist()
        size = 1 if kind == "head" else round_to
        for j, (lo, hi) in enumerate(_chunks(len(idx), size)):
            units = [(layer, i) for i in idx[lo:hi]]
            yield make(kind, units, prefix[hi] - prefix[lo], n_unit * (hi - lo), (kind, layer), j)

    def uniform_run() -> Iterator[Candidate]:
        per_layer = [runs[("head", layer)] for layer in range(space.num_layers)]
        params = sum(n for _, _, n in per_layer)
        for j in range(min(len(idx) for idx, _, _ in per_layer) - 1):
            units = [(layer, int(idx[j])) for layer, (idx, _, _) in enumerate(per_layer)]
            raw = float(sum(float(vals[j]) for _, vals, _ in per_layer))
            yield make("head", units, raw, params, ("head", None), j)

    generators: list[Iterator[Candidate]] = []
    for kind in dict.fromkeys(kinds):
        if kind == "head" and heads == "uniform":
            generators.append(uniform_run())
        else:
            generators.extend(layer_run(kind, layer) for layer in space.layer_keys(kind))
    return heapq.merge(*generators, key=_sort_key)


def rank_groups(
    space: PruningSpace,
    state: PruningState,
    scores: GroupScores,
    *,
    normalize: Normalize = "param",
    round_to: int = 1,
    kinds: Iterable[GroupKind] = KINDS,
    heads: HeadsMode | None = None,
    embeddings: bool = True,
) -> list[Candidate]:
    """Every removable candidate, least salient first, ranked globally across the kinds in `kinds`.

    Only kept units are ranked. A layer never loses its last KV group or FFN channel, nor the model its
    last hidden channel; with ``round_to=R`` FFN and hidden channels go in bundles of R (the first bundle of
    a layer takes the remainder), so widths stay multiples of R. `heads` (default: the space's mode)
    ``"uniform"`` bundles the j-th least salient KV group of every layer. Within a layer the candidates'
    scores never decrease, so a layer's bundles are ranked in the order they must be taken.
    """
    return list(
        iter_ranked(
            space,
            state,
            scores,
            normalize=normalize,
            round_to=round_to,
            kinds=kinds,
            heads=heads,
            embeddings=embeddings,
        )
    )


_Run = tuple[torch.Tensor, torch.Tensor, int]


def _sorted_runs(
    space: PruningSpace,
    state: PruningState,
    scores: GroupScores,
    kinds: tuple[GroupKind, ...],
    embeddings: bool,
) -> dict[tuple[GroupKind, int | None], _Run]:
    """Per (kind, layer): kept source indices least salient first (ties: lower index), scores, unit size."""
    runs: dict[tuple[GroupKind, int | None], _Run] = {}
    for kind in dict.fromkeys(kinds):
        for layer in space.layer_keys(kind):
            kept = torch.as_tensor(np.asarray(state.kept_indices(kind, layer), dtype=np.int64))
            vals = scores.get(kind, layer).detach().to("cpu", torch.float64)[kept]
            vals, order = torch.sort(vals, stable=True)
            runs[(kind, layer)] = (
                kept[order],
                vals,
                space.unit_params(kind, layer, state, embeddings=embeddings),
            )
    return runs


def _type_medians(runs: dict[tuple[GroupKind, int | None], _Run]) -> dict[GroupKind, float]:
    """Median per-parameter score of each kind's kept units (1 where it is not positive)."""
    medians: dict[GroupKind, float] = {}
    for kind in KINDS:
        per_param = [vals / max(n, 1) for (k, _), (_, vals, n) in runs.items() if k == kind]
        if per_param:
            med = float(torch.cat(per_param).median())
            medians[kind] = med if med > 0 else 1.0
    return medians


def unit_score_stats(
    space: PruningSpace,
    state: PruningState,
    scores: GroupScores,
    *,
    normalize: Normalize = "param",
    kinds: Iterable[GroupKind] = KINDS,
    embeddings: bool = True,
) -> dict[str, dict[str, float]]:
    """Min / median / max of the kept units' scores per kind, normalised as `normalize` says (for reports)."""
    runs = _sorted_runs(space, state, scores, tuple(kinds), embeddings)
    medians = _type_medians(runs) if normalize == "type" else {}
    stats: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        parts = [
            vals if normalize == "none" else vals / max(n, 1) / medians.get(kind, 1.0)
            for (k, _), (_, vals, n) in runs.items()
            if k == kind
        ]
        if parts:
            values = torch.cat(parts).sort().values
            if values.numel():
                stats[kind] = {
                    "min": float(values[0]),
                    "median": float(values[values.numel() // 2]),
                    "max": float(values[-1]),
                    "units": float(values.numel()),
                }
    return {k: {n: (v if math.isfinite(v) else 0.0) for n, v in st.items()} for k, st in stats.items()}
