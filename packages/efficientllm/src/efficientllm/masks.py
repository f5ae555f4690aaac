"""Masks: removed groups stay in the tensors as zeros until compaction, and are kept zero while training.

A masked model computes exactly what the compacted model will:

- a masked head has zero q/k/v rows (and biases), so its attention output is zero, and zero o_proj columns;
- a masked FFN channel has zero gate/up rows, so silu(0) * 0 = 0, and a zero down_proj column;
- a masked hidden channel has a zero embedding column and zero o_proj/down_proj rows (and biases), so the
  residual stream is exactly zero there, and zero consumer columns and norm entries.

What "masked" means for RMSNorm: the masked model keeps plain RMSNorm over the full physical width, so the
zero channels still count in the mean of squares (``mean = sum / D``). No forward is patched and a
masked model is an ordinary transformers model. Compaction then rescales so that the compacted model,
which averages over the d kept channels, gives the same numbers: norm weights times sqrt(D/d) and eps times
D/d (the same for OLMo2's full-width q_norm/k_norm, with the layer's head counts). See `compaction`.

A fully masked group gets exactly zero gradient (nothing live reads it, and what it reads is zero), so
what would move it is the optimizer's moments from before masking: those are zeroed when masking, and
AdamW (weight decay included) then leaves the weights at exactly zero. Zeroing the masked gradients after
backward and re-applying the mask after each step (`MaskPlan.zero_grads` / `zero_params`) are guards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from efficientllm.groups import PruningSpace
from efficientllm.state import PruningState

__all__ = ["MaskPlan", "apply_masks", "mask_plan"]


@dataclass(frozen=True, eq=False)
class MaskPlan:
    """The entries to hold at zero: ``(param, dim, indices)`` for every masked slice of every weight."""

    entries: tuple[tuple[nn.Parameter, int, torch.Tensor], ...]

    def __bool__(self) -> bool:
        return bool(self.entries)

    @torch.no_grad()
    def zero_params(self) -> None:
        """Zero the masked weights."""
        for param, dim, idx in self.entries:
            param.index_fill_(dim, idx, 0.0)

    @torch.no_grad()
    def zero_grads(self) -> None:
        """Zero the gradients of masked weights (call after backward, before clipping and the step)."""
        for param, dim, idx in self.entries:
            if param.grad is not None:
                param.grad.index_fill_(dim, idx, 0.0)

    @torch.no_grad()
    def zero_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero every per-entry optimizer buffer (exp_avg, exp_avg_sq, momentum...) at masked entries."""
        for param, dim, idx in self.entries:
            for value in optimizer.state.get(param, {}).values():
                if torch.is_tensor(value) and value.shape == param.shape:
                    value.index_fill_(dim, idx, 0.0)


def mask_plan(space: PruningSpace, state: PruningState) -> MaskPlan:
    """The entries of every weight that belong to units `state` removed but the tensors still hold."""
    entries: list[tuple[nn.Parameter, int, torch.Tensor]] = []
    cache: dict[tuple, torch.Tensor] = {}
    for spec in space.params:
        for axis in spec.axes:
            key = (axis.kind, axis.layer, axis.unit, spec.param.device)
            if key not in cache:
                idx = state.entries(axis.kind, axis.layer, axis.unit, removed=True)
                cache[key] = idx.to(spec.param.device)
            if cache[key].numel():
                entries.append((spec.param, axis.dim, cache[key]))
    return MaskPlan(tuple(entries))


def apply_masks(
    space: PruningSpace, state: PruningState, optimizer: torch.optim.Optimizer | None = None
) -> MaskPlan:
    """Zero removed groups' weights, gradients and (given `optimizer`) moments; returns the plan to reuse."""
    plan = mask_plan(space, state)
    plan.zero_params()
    plan.zero_grads()
    if optimizer is not None:
        plan.zero_optimizer_state(optimizer)
    return plan
