"""Local second-order (OBS / SparseGPT-style) compensation of the weights that read a removed group.

For a Linear W (out x in) with layer-input Hessian H = 2 X Xᵀ / T over T tokens, damped by
λ = damp · mean(diag H), removing the input columns P is compensated by

    ΔW = -W[:, P] · ([H⁻¹]_PP)⁻¹ · [H⁻¹]_P,:

which minimises ||(W + ΔW) X||² error subject to the columns P being zero. The consumers are o_proj for
heads, down_proj for FFN channels and q/k/v/gate/up_proj of every layer for hidden channels (one Hessian
shared by q/k/v and one by gate/up). Producer rows cannot be compensated and are just removed; nor does
OBS model the change of the RMSNorm statistic when hidden channels go. H is built only over the columns
still live, from a random token subsample of the batch, captured with forward pre-hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from efficientllm.groups import GroupKind, PruningSpace
from efficientllm.state import PruningState

__all__ = ["capture_inputs", "compensate", "layer_hessian", "obs_remove_columns_"]


def layer_hessian(x: torch.Tensor) -> torch.Tensor:
    """H = 2 XᵀX / T for inputs `x` of shape (T, in), in float32 (float64 for float64 input)."""
    x = x.reshape(-1, x.shape[-1])
    x = x if x.dtype == torch.float64 else x.float()
    return 2.0 * (x.T @ x) / max(x.shape[0], 1)


def _damped_inverse(h: torch.Tensor, damp: float) -> torch.Tensor:
    """(H + λI)⁻¹ via Cholesky, λ = damp · mean(diag H); more damping if H is not positive definite."""
    n = h.shape[0]
    mean_diag = float(h.diagonal().mean()) if n else 0.0
    lam = damp * mean_diag if mean_diag > 0 else 1.0
    eye = torch.eye(n, dtype=h.dtype, device=h.device)
    for _ in range(8):
        chol, info = torch.linalg.cholesky_ex(h + lam * eye)
        if int(info) == 0:
            return torch.cholesky_inverse(chol)
        lam *= 10.0
    raise RuntimeError("layer Hessian is not positive definite even with heavy damping")


@torch.no_grad()
def obs_remove_columns_(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    drop: torch.Tensor,
    live: torch.Tensor | None = None,
    damp: float = 0.01,
) -> torch.Tensor:
    """Compensate `weight` (out x in) in place for zeroing its input columns `drop`; returns ΔW on `live`.

    `hessian` is over all `in` columns (a `layer_hessian`); only the `live` columns (default: all) take
    part, so already-masked columns are neither used nor changed. Afterwards columns `drop` are zero.
    """
    n_in = weight.shape[1]
    live = torch.arange(n_in, device=weight.device) if live is None else live.to(weight.device)
    drop = drop.to(weight.device)
    where = torch.full((n_in,), -1, dtype=torch.long, device=weight.device)
    where[live] = torch.arange(live.numel(), device=weight.device)
    p = where[drop]
    if (p < 0).any():
        raise ValueError("every dropped column must be live")
    compute = torch.float64 if weight.dtype == torch.float64 else torch.float32
    h = hessian.to(device=weight.device, dtype=compute)[live][:, live]
    hinv = _damped_inverse(h, damp)
    w = weight[:, live].to(compute)
    # ΔW = -W_P (Hinv_PP)^-1 Hinv_P,:
    delta = -w[:, p] @ torch.linalg.solve(hinv[p][:, p], hinv[p, :])
    w += delta
    w[:, p] = 0.0
    weight[:, live] = w.to(weight.dtype)
    return delta


def _select_tokens(inputs: Mapping[str, Any], tokens: int, generator: torch.Generator) -> torch.Tensor:
    """Flat positions (over batch x sequence) of up to `tokens` real (non-padding) tokens, at random."""
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    flat = torch.arange(ids.numel())
    if mask is not None:
        flat = flat[mask.reshape(-1).bool().cpu()]
    if flat.numel() > tokens:
        flat = flat[torch.randperm(flat.numel(), generator=generator)[:tokens]]
    return flat.sort().values


@torch.no_grad()
def capture_inputs(
    model: nn.Module,
    modules: list[nn.Linear],
    inputs: torch.Tensor | Mapping[str, Any],
    *,
    tokens: int = 2048,
    seed: int = 0,
) -> dict[nn.Linear, torch.Tensor]:
    """The inputs each of `modules` sees on one forward pass of `inputs`, on a subsample of `tokens` tokens.

    `inputs` is a tensor of token ids or a dict of model kwargs (with ``input_ids``; an ``attention_mask``
    keeps padding out of the sample). Returns (T, in_features) float32 tensors.
    """
    kwargs = dict(inputs) if isinstance(inputs, Mapping) else {"input_ids": inputs}
    kwargs.pop("labels", None)
    sel = _select_tokens(kwargs, tokens, torch.Generator().manual_seed(seed))
    captured: dict[nn.Linear, torch.Tensor] = {}
    handles = []
    for module in dict.fromkeys(modules):

        def hook(mod, args, sel=sel):
            x = args[0]
            captured[mod] = x.reshape(-1, x.shape[-1])[sel.to(x.device)].float()

        handles.append(module.register_forward_pre_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(**kwargs, use_cache=False)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return captured


def _removed(before: PruningState, after: PruningState, kind: GroupKind, layer: int | None) -> set[int]:
    return set(before.kept_indices(kind, layer)) - set(after.kept_indices(kind, layer))


@torch.no_grad()
def compensate(
    model: nn.Module,
    space: PruningSpace,
    before: PruningState,
    after: PruningState,
    inputs: torch.Tensor | Mapping[str, Any],
    *,
    tokens: int = 2048,
    damp: float = 0.01,
    seed: int = 0,
) -> dict[str, int]:
    """OBS-compensate the consumers of every unit `after` removes from `before`; counts matrices per kind.

    Run before the removed units are masked (the inputs are captured from the model as `before` leaves it).
    """
    jobs: list[tuple[GroupKind, nn.Linear, nn.Linear, torch.Tensor, torch.Tensor]] = []
    r_hd = space.heads_per_group * space.head_dim

    def cols(kind: GroupKind, layer: int | None, unit: int) -> tuple[torch.Tensor, torch.Tensor]:
        live = before.entries(kind, layer, unit)  # physical entries kept before the event
        gone = _removed(before, after, kind, layer)
        physical = before.physical.get(kind, layer)
        pos = torch.tensor([i for i, u in enumerate(physical) if u in gone], dtype=torch.long)
        drop = (pos[:, None] * unit + torch.arange(unit)).reshape(-1)
        return live, drop

    for layer, lm in enumerate(space.layers):
        if _removed(before, after, "head", layer):
            live, drop = cols("head", layer, r_hd)
            jobs.append(("head", lm.o, lm.o, live, drop))
        if _removed(before, after, "ffn", layer):
            live, drop = cols("ffn", layer, 1)
            jobs.append(("ffn", lm.down, lm.down, live, drop))
    if _removed(before, after, "hidden", None):
        live, drop = cols("hidden", None, 1)
        for lm in space.layers:
            jobs.extend(("hidden", lm.q, m, live, drop) for m in (lm.q, lm.k, lm.v))
            jobs.extend(("hidden", lm.gate, m, live, drop) for m in (lm.gate, lm.up))
    counts = {"head": 0, "ffn": 0, "hidden": 0}
    if not jobs:
        return counts
    xs = capture_inputs(model, [j[1] for j in jobs], inputs, tokens=tokens, seed=seed)
    hessians: dict[nn.Linear, torch.Tensor] = {}
    for kind, reader, target, live, drop in jobs:
        if reader not in hessians:
            hessians[reader] = layer_hessian(xs[reader])
        obs_remove_columns_(target.weight.data, hessians[reader], drop, live, damp)
        counts[kind] += 1
    return counts
