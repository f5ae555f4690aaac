"""The continuous pruning schedule: a `Pruner` that plugs into any training loop.

    pruner = Pruner(model, PruneConfig(every=10, target_ratio=0.3))
    for step, batch in enumerate(batches, start=1):
        loss = model(**batch).loss
        loss.backward()
        pruner.after_backward(model, optimizer)     # accumulate saliency, zero masked gradients
        optimizer.step(); optimizer.zero_grad()
        pruner.after_step(model, optimizer, step, batch if pruner.due(step) else None)
        if pruner.done: ...

Every `every` steps an event removes a parameter budget (a fraction of what remains, geometric, or a fixed
count) of the least salient groups, ranked globally across heads, FFN channels and hidden channels. A group
larger than what is left of the budget is still taken, and the overshoot is carried over as debt that
later events pay first (so one big hidden channel can take several events' budget, as the plateaus in the
paper's Fig. A suggest). The target is never undershot: a group that would cross it is skipped. Removed
groups are masked at once and the model is physically compacted every `compact_every` events.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import nn

from efficientllm.compaction import compact
from efficientllm.groups import HEADS_MODES, KINDS, GroupKind, HeadsMode, PruningSpace, find_groups
from efficientllm.masks import MaskPlan, apply_masks, mask_plan
from efficientllm.obs import compensate
from efficientllm.saliency import (
    ACCUMULATE,
    NORMALIZE,
    ORDERS,
    Accumulate,
    Candidate,
    GroupScores,
    Normalize,
    Order,
    SaliencyAccumulator,
    iter_ranked,
    unit_score_stats,
)
from efficientllm.state import PruningState
from reprokit.errors import ConfigError

__all__ = ["PruneConfig", "PruneEvent", "Pruner", "select_groups", "smallest_params"]


@dataclass(frozen=True)
class PruneConfig:
    """How and how fast to prune. Exactly one of `target_params` / `target_ratio` is required.

    every: optimizer steps between pruning events. budget_fraction: share of the remaining parameters
    removed per event (geometric; 0.05 when neither budget is set); budget_params: a fixed count per event
    instead. target_params / target_ratio: stop at this many parameters / this share of the source's
    (counted with or without the embedding and an untied LM head, `count_embeddings`). round_to: FFN and
    hidden widths stay multiples of this. enable_*: which kinds may be pruned. heads: "per_layer" or
    "uniform" (one KV group from every layer at once). saliency: "first" |g·w| or "second" |g·w - F·w²/2|;
    normalize: "param" (per weight), "none" or "type" (per weight, relative to the type's median);
    accumulate: "sum" between events or "ema" (ema_beta). obs: OBS-compensate consumer weights on obs_tokens
    tokens of the batch passed to `after_step`, damping obs_damp · mean diag. compact_every: slice the
    model every K events (and when done; 0: only when `Pruner.compact` is called). start_step /
    stop_step: no events at or before start_step, none after stop_step.
    """

    DEFAULT_FRACTION: ClassVar[float] = 0.05

    every: int = 10
    budget_fraction: float | None = None
    budget_params: int | None = None
    target_params: int | None = None
    target_ratio: float | None = None
    count_embeddings: bool = True
    round_to: int = 1
    enable_heads: bool = True
    enable_ffn: bool = True
    enable_hidden: bool = True
    heads: HeadsMode = "per_layer"
    saliency: Order = "first"
    normalize: Normalize = "param"
    accumulate: Accumulate = "sum"
    ema_beta: float = 0.9
    obs: bool = False
    obs_tokens: int = 2048
    obs_damp: float = 0.01
    compact_every: int = 1
    start_step: int = 0
    stop_step: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if (self.target_params is None) == (self.target_ratio is None):
            problems.append("set exactly one of target_params and target_ratio")
        if self.target_params is not None and self.target_params < 1:
            problems.append(f"target_params must be >= 1, got {self.target_params}")
        if self.target_ratio is not None and not 0.0 < self.target_ratio <= 1.0:
            problems.append(f"target_ratio must be in (0, 1], got {self.target_ratio}")
        if self.budget_fraction is not None and self.budget_params is not None:
            problems.append("set budget_fraction or budget_params, not both")
        if self.budget_fraction is not None and not 0.0 < self.budget_fraction <= 1.0:
            problems.append(f"budget_fraction must be in (0, 1], got {self.budget_fraction}")
        if self.budget_params is not None and self.budget_params < 1:
            problems.append(f"budget_params must be >= 1, got {self.budget_params}")
        for name in ("every", "round_to", "obs_tokens"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("compact_every", "start_step", "seed"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.stop_step is not None and self.stop_step <= self.start_step:
            problems.append(f"stop_step ({self.stop_step}) must be after start_step ({self.start_step})")
        if not (self.enable_heads or self.enable_ffn or self.enable_hidden):
            problems.append("enable at least one of enable_heads, enable_ffn, enable_hidden")
        for name, allowed in (
            ("heads", HEADS_MODES),
            ("saliency", ORDERS),
            ("normalize", NORMALIZE),
            ("accumulate", ACCUMULATE),
        ):
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not 0.0 <= self.ema_beta < 1.0:
            problems.append(f"ema_beta must be in [0, 1), got {self.ema_beta}")
        if not self.obs_damp > 0.0:
            problems.append(f"obs_damp must be > 0, got {self.obs_damp}")
        if problems:
            raise ConfigError("PruneConfig: " + "; ".join(problems) + ".")

    @property
    def fraction(self) -> float | None:
        """The per-event budget as a fraction of what remains (None when `budget_params` is set)."""
        if self.budget_params is not None:
            return None
        return self.DEFAULT_FRACTION if self.budget_fraction is None else self.budget_fraction

    @property
    def kinds(self) -> tuple[GroupKind, ...]:
        """The kinds that may be pruned."""
        flags = {"head": self.enable_heads, "ffn": self.enable_ffn, "hidden": self.enable_hidden}
        return tuple(k for k in KINDS if flags[k])

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PruneConfig:
        """Build from a mapping; unknown keys raise `ConfigError` with the closest known name."""
        names = [f.name for f in fields(cls)]
        unknown = [k for k in data if k not in names]
        if unknown:
            hints = [
                f"{k!r} (did you mean {m[0]!r}?)"
                if (m := difflib.get_close_matches(k, names, 1))
                else repr(k)
                for k in unknown
            ]
            raise ConfigError(f"PruneConfig has no option {', '.join(hints)}; options: {', '.join(names)}.")
        return cls(**dict(data))


@dataclass(frozen=True)
class PruneEvent:
    """One pruning event: what went, parameter counts around it, and the saliency it was decided on.

    `removed` counts minimal units by kind (heads as KV groups). `saliency` holds per kind the min / median
    / max normalised score of its kept units before the event and, for kinds that lost units, `cutoff`
    (the largest candidate score removed). `params_*` use the config's counting (`count_embeddings`).
    """

    step: int
    removed: dict[str, int]
    params_before: int
    params_after: int
    budget: int
    debt: int
    saliency: dict[str, dict[str, float]]
    widths: dict[str, Any]
    obs: dict[str, int] | None = None
    compacted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for JSON."""
        return asdict(self)


def select_groups(
    space: PruningSpace,
    state: PruningState,
    ranked: Iterable[Candidate],
    *,
    budget: int,
    floor: int = 0,
    embeddings: bool = True,
) -> list[Candidate]:
    """Take candidates from `ranked` (least salient first) into `state` until `budget` parameters are gone.

    A candidate that would take the model below `floor` parameters is skipped, and so is the rest of its
    layer's sequence (candidates of one sequence are taken in order). The last one taken may overshoot the
    budget. Mutates `state`; returns the candidates taken.
    """
    live = space.live_params(state, embeddings=embeddings)
    taken: list[Candidate] = []
    removed = 0
    blocked: set[tuple[str, int | None]] = set()
    unit: dict[tuple[str, int | None], int] = {}  # unit sizes change only when another kind loses units

    def size_of(kind: GroupKind, layer: int | None) -> int:
        if (kind, layer) not in unit:
            unit[(kind, layer)] = space.unit_params(kind, layer, state, embeddings=embeddings)
        return unit[(kind, layer)]

    for cand in ranked:
        if removed >= budget:
            break
        if cand.source in blocked:
            continue
        size = sum(size_of(cand.kind, layer) for layer, _ in cand.units)
        if live - size < floor:
            blocked.add(cand.source)
            continue
        for layer, index in cand.units:
            state.remove(cand.kind, layer, [index])
        live -= size
        removed += size
        taken.append(cand)
        if cand.kind == "hidden":  # every head and FFN unit spans the hidden width
            unit = {key: n for key, n in unit.items() if key[0] == "hidden"}
        else:  # a hidden channel spans every head and FFN unit
            unit.pop(("hidden", None), None)
    return taken


@dataclass
class _Progress:
    debt: int = 0
    events_since_compact: int = 0
    done: bool = False
    stop_reason: str | None = None
    history: list[PruneEvent] = field(default_factory=list)


def smallest_params(space: PruningSpace, state: PruningState, config: PruneConfig) -> int:
    """The size of the smallest model `config` can prune the source to: every enabled kind down to its floor
    (one KV group per layer; `round_to` FFN and hidden channels), counted as the config counts."""
    small = state.source_state()
    kinds = config.kinds
    for layer in range(small.num_layers):
        if "head" in kinds:
            small.remove("head", layer, small.kept_indices("head", layer)[1:])
        if "ffn" in kinds:
            small.remove("ffn", layer, small.kept_indices("ffn", layer)[config.round_to :])
    if "hidden" in kinds:
        small.remove("hidden", None, small.kept_indices("hidden")[config.round_to :])
    return space.live_params(small, embeddings=config.count_embeddings)


class Pruner:
    """Pruning-aware training driver: call `after_backward` and `after_step` from the training loop."""

    def __init__(self, model: nn.Module, config: PruneConfig, *, state: PruningState | None = None) -> None:
        self.model = model
        self.config = config
        self.space: PruningSpace = find_groups(model, heads=config.heads)
        self.state = state if state is not None else PruningState.full(self.space)
        self.state.check(self.space)
        self.saliency = SaliencyAccumulator(
            self.space,
            self.state,
            order=config.saliency,
            accumulate=config.accumulate,
            ema_beta=config.ema_beta,
        )
        self.source_params = self.space.live_params(
            self.state.source_state(), embeddings=config.count_embeddings
        )
        if config.target_params is not None:
            self.target = int(config.target_params)
        else:
            self.target = round(float(config.target_ratio or 1.0) * self.source_params)
        if self.target > self.source_params:
            raise ConfigError(
                f"the pruning target ({self.target:,} parameters) is larger than the model "
                f"({self.source_params:,}, counted with count_embeddings={config.count_embeddings}); "
                "lower target_params or use target_ratio."
            )
        smallest = smallest_params(self.space, self.state, config)
        if self.target < smallest:
            r = config.round_to
            raise ConfigError(
                f"the pruning target ({self.target:,} parameters) is below the smallest model this config "
                f"can reach ({smallest:,}: at least one key/value group, {r} FFN channel(s) and {r} hidden "
                f"channel(s) per layer for the enabled kinds {list(config.kinds)}); raise target_params / "
                "target_ratio, or lower round_to."
            )
        self._progress = _Progress()
        self._plan: MaskPlan = mask_plan(self.space, self.state)
        self._plan.zero_params()
        if self.params <= self.target:
            self._finish("target reached")

    # ------------------------------------------------------------------------------------------ status
    @property
    def params(self) -> int:
        """Parameters the model computes with now (masked ones excluded), counted as the config says."""
        return self.space.live_params(self.state, embeddings=self.config.count_embeddings)

    @property
    def done(self) -> bool:
        """Whether pruning has finished (target reached, nothing removable, or past stop_step)."""
        return self._progress.done

    @property
    def stop_reason(self) -> str | None:
        """Why pruning finished, once it has."""
        return self._progress.stop_reason

    @property
    def history(self) -> list[PruneEvent]:
        """Every event so far."""
        return self._progress.history

    def due(self, step: int) -> bool:
        """Whether `after_step(..., step)` will run a pruning event (so the caller can pass OBS inputs)."""
        cfg = self.config
        return (
            not self.done
            and step > cfg.start_step
            and (step - cfg.start_step) % cfg.every == 0
            and (cfg.stop_step is None or step <= cfg.stop_step)
        )

    # ------------------------------------------------------------------------------------------- hooks
    def _check(self, model: nn.Module) -> None:
        if model is not self.model:
            raise ConfigError("this Pruner was built for another model; pass the model it was created with.")

    def after_backward(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        """After the step's (last) backward, before clipping and `optimizer.step`: saliency, masked grads."""
        self._check(model)
        self._plan.zero_grads()
        if not self.done:
            self.saliency.update(optimizer)

    def after_step(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        step: int,
        batch_inputs_for_obs: torch.Tensor | Mapping[str, Any] | None = None,
    ) -> list[PruneEvent]:
        """After `optimizer.step` number `step` (counting from 1): prune when due; returns the events run."""
        self._check(model)
        self._plan.zero_params()
        if step <= self.config.start_step:
            self.saliency.reset()
        if not self.due(step):
            return []
        return [self.prune(optimizer, step, batch_inputs_for_obs)]

    # ------------------------------------------------------------------------------------------ events
    def prune(
        self,
        optimizer: torch.optim.Optimizer | None,
        step: int,
        batch_inputs_for_obs: torch.Tensor | Mapping[str, Any] | None = None,
    ) -> PruneEvent:
        """Run one pruning event now, whatever the schedule says, on the saliency accumulated so far."""
        cfg, prog = self.config, self._progress
        if cfg.obs and batch_inputs_for_obs is None:
            raise ConfigError(
                "PruneConfig.obs=True needs batch_inputs_for_obs (token ids or model kwargs) at every "
                "pruning step; pass the step's batch when pruner.due(step), or set obs=False."
            )
        before = self.params
        budget = (
            cfg.budget_params if cfg.budget_params is not None else math.ceil((cfg.fraction or 0.0) * before)
        )
        effective = budget - prog.debt
        rank = {"normalize": cfg.normalize, "kinds": cfg.kinds, "embeddings": cfg.count_embeddings}
        stats = unit_score_stats(self.space, self.state, self.saliency.scores, **rank)
        ranked = iter_ranked(
            self.space, self.state, self.saliency.scores, round_to=cfg.round_to, heads=cfg.heads, **rank
        )
        taken: list[Candidate] = []
        obs_counts = None
        if effective <= 0:
            prog.debt -= budget
        else:
            after = self.state.copy()
            taken = select_groups(
                self.space,
                after,
                ranked,
                budget=effective,
                floor=self.target,
                embeddings=cfg.count_embeddings,
            )
            if taken and cfg.obs:
                assert batch_inputs_for_obs is not None
                obs_counts = compensate(
                    self.model,
                    self.space,
                    self.state,
                    after,
                    batch_inputs_for_obs,
                    tokens=cfg.obs_tokens,
                    damp=cfg.obs_damp,
                    seed=cfg.seed * 1_000_003 + step,
                )
            self.state.kept = after.kept
            self._plan = apply_masks(self.space, self.state, optimizer)
            removed_params = before - self.params
            prog.debt = max(0, removed_params - effective)
            if not taken and self.params > self.target:
                self._finish("no group can be removed without going below the target or emptying a layer")
        self.saliency.after_event()
        removed = dict.fromkeys(KINDS, 0)
        for cand in taken:
            removed[cand.kind] += len(cand.units)
            kind_stats = stats.setdefault(cand.kind, {})
            kind_stats["cutoff"] = max(kind_stats.get("cutoff", cand.score), cand.score)
        if self.params <= self.target:
            self._finish("target reached")
        elif self.params - self.target < self._smallest_group():
            self._finish("target reached (no group fits above it)")
        elif cfg.stop_step is not None and step >= cfg.stop_step:
            self._finish("stop_step reached")
        prog.events_since_compact += 1
        compacted = False
        if cfg.compact_every and (prog.events_since_compact >= cfg.compact_every or self.done):
            compacted = self.compact(optimizer)
        event = PruneEvent(
            step=step,
            removed=removed,
            params_before=before,
            params_after=self.params,
            budget=budget,
            debt=prog.debt,
            saliency=stats,
            widths=self.state.widths(),
            obs=obs_counts,
            compacted=compacted,
        )
        prog.history.append(event)
        return event

    def compact(self, optimizer: torch.optim.Optimizer | None = None) -> bool:
        """Slice the model and `optimizer` down to the kept units now; returns whether anything changed."""
        self._progress.events_since_compact = 0
        if self.state.is_compact:
            return False
        compact(self.model, self.state, optimizer, space=self.space)
        self._plan = mask_plan(self.space, self.state)
        return True

    def _smallest_group(self) -> int:
        """Parameters of the smallest unit any enabled kind could still lose (a bundle may be larger)."""
        sizes = [
            self.space.unit_params(kind, layer, self.state, embeddings=self.config.count_embeddings)
            for kind in self.config.kinds
            for layer in self.space.layer_keys(kind)
            if self.state.kept_count(kind, layer) > 1
        ]
        return min(sizes, default=0)

    def _finish(self, reason: str) -> None:
        if not self._progress.done:
            self._progress.done = True
            self._progress.stop_reason = reason

    # -------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (JSON-ready): config, pruning state, saliency, debt, history."""
        prog = self._progress
        return {
            "config": self.config.to_dict(),
            "state": self.state.to_dict(),
            "saliency": self.saliency.scores.to_dict(),
            "saliency_steps": self.saliency.steps,
            "debt": prog.debt,
            "events_since_compact": prog.events_since_compact,
            "done": prog.done,
            "stop_reason": prog.stop_reason,
            "history": [e.to_dict() for e in prog.history],
        }

    @classmethod
    def from_state_dict(cls, model: nn.Module, data: Mapping[str, Any]) -> Pruner:
        """A pruner that resumes from `state_dict()` output, for `model` as saved with that checkpoint."""
        pruner = cls(
            model, PruneConfig.from_dict(data["config"]), state=PruningState.from_dict(data["state"])
        )
        pruner.saliency.scores = GroupScores.from_dict(data["saliency"], pruner.saliency.device)
        pruner.saliency.steps = int(data["saliency_steps"])
        prog = pruner._progress
        prog.debt = int(data["debt"])
        prog.events_since_compact = int(data["events_since_compact"])
        prog.done, prog.stop_reason = bool(data["done"]), data["stop_reason"]
        prog.history = [PruneEvent(**e) for e in data["history"]]
        return pruner
