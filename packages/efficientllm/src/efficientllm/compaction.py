"""Physical compaction: slice every weight, bias, norm and optimizer moment down to the kept units.

Every sliced weight becomes a new Parameter (resizing ``param.data`` in place would break autograd while
an old graph, e.g. the last loss, still holds the parameter's gradient accumulator). The optimizer is
rebound consistently: its param_groups list the new Parameters and its state moves to them, with tensors
shaped like their parameter (AdamW's exp_avg and exp_avg_sq, SGD's momentum) sliced the same way; a tied
LM head gets the new embedding Parameter; the `PruningSpace` is updated to the new Parameters and widths.
Module attributes (in/out_features, embedding_dim, intermediate_size, eps) and the config follow.
Attention needs nothing per layer: in transformers 5 its forward reads `head_dim` (unchanged),
`num_key_value_groups` (unchanged: a KV group goes together with its query heads) and infers the head
count from the projection width (``view(..., -1, head_dim)``); `num_heads`-style attributes, where a
module has them, are updated anyway. The config holds the widest layer's counts when layers differ.

RMSNorm weights whose statistic spans a pruned axis are rescaled so that the compacted model equals the
masked one (see `masks`): with D channels in the tensors and d kept, weight *= sqrt(D/d) and eps *= D/d;
their optimizer moments are rescaled like the gradient (exp_avg / s, exp_avg_sq / s²), s = sqrt(D/d).
For OLMo2's full-width q_norm/k_norm the factor is the layer's KV groups before / after, and their eps
then differs from the config's `rms_norm_eps` (kept per module; a stock config cannot hold it).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from efficientllm.groups import PruningSpace, find_groups
from efficientllm.state import PruningState

__all__ = ["compact"]

_FIRST_MOMENTS = ("exp_avg", "momentum_buffer")
_SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq")


def _norm_factor(space: PruningSpace, state: PruningState, kind: str, layer: int | None) -> float:
    """D/d for a norm over `kind` units: physical over kept count."""
    before = len(state.physical.get(kind, layer))  # type: ignore[arg-type]
    after = state.kept_count(kind, layer)  # type: ignore[arg-type]
    return before / after


def _sliced(t: torch.Tensor, index: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
    for dim, idx in index:
        t = t.index_select(dim, idx.to(t.device))
    return t.contiguous()


@torch.no_grad()
def compact(
    model: nn.Module,
    state: PruningState,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    space: PruningSpace | None = None,
) -> PruningState:
    """Slice `model` (and `optimizer`'s moments) to the units `state` keeps; returns `state`, now compact.

    Afterwards the model computes what the masked model computed (to float rounding) with fewer weights.
    `space` is found from the model when not given; it must describe the model's current tensors, and its
    widths are updated to the compacted ones.
    """
    space = space or find_groups(model)
    state.check(space)
    if state.is_compact:
        return state
    opt_state = optimizer.state if optimizer is not None else {}
    replaced: dict[int, nn.Parameter] = {}
    specs = []
    for spec in space.params:
        index: list[tuple[int, torch.Tensor]] = []
        for axis in spec.axes:
            if len(state.physical.get(axis.kind, axis.layer)) != state.kept_count(axis.kind, axis.layer):
                index.append((axis.dim, state.entries(axis.kind, axis.layer, axis.unit)))
        if not index:
            specs.append(spec)
            continue
        old = spec.param
        scale = 1.0
        if spec.norm is not None:
            axis = spec.axes[0]
            factor = _norm_factor(space, state, axis.kind, axis.layer)
            scale = math.sqrt(factor)
            spec.module.variance_epsilon = float(spec.module.variance_epsilon) * factor
        new = nn.Parameter(_sliced(old.detach(), index) * scale, requires_grad=old.requires_grad)
        if old.grad is not None:
            new.grad = _sliced(old.grad, index) / scale
        if old in opt_state:
            moved = {}
            for key, value in opt_state.pop(old).items():
                if torch.is_tensor(value) and value.shape == old.shape:
                    value = _sliced(value, index)
                    if key in _FIRST_MOMENTS:
                        value = value / scale
                    elif key in _SECOND_MOMENTS:
                        value = value / (scale * scale)
                moved[key] = value
            opt_state[new] = moved
        setattr(spec.module, spec.name.rsplit(".", 1)[1], new)
        replaced[id(old)] = new
        specs.append(dataclasses.replace(spec, param=new))
    if space.tied:
        space.lm_head.weight = space.embed.weight
    if optimizer is not None:
        for group in optimizer.param_groups:
            group["params"] = [replaced.get(id(p), p) for p in group["params"]]
    space.params = tuple(specs)
    _update_modules(space, state)
    _update_config(model, space, state)
    state.mark_compact()
    space.hidden_size = state.kept_count("hidden")
    space.kv_groups = tuple(state.kept_count("head", i) for i in range(space.num_layers))
    space.ffn = tuple(state.kept_count("ffn", i) for i in range(space.num_layers))
    return state


def _update_modules(space: PruningSpace, state: PruningState) -> None:
    """Shape attributes of the sliced modules, and per-layer widths that attention/MLP code may read."""
    d = state.kept_count("hidden")
    space.embed.embedding_dim = d
    space.lm_head.in_features = d
    r = space.heads_per_group
    for layer, lm in enumerate(space.layers):
        g = state.kept_count("head", layer)
        f = state.kept_count("ffn", layer)
        q_width, kv_width = r * g * space.head_dim, g * space.head_dim
        for lin, n_out, n_in in (
            (lm.q, q_width, d),
            (lm.k, kv_width, d),
            (lm.v, kv_width, d),
            (lm.o, d, q_width),
            (lm.gate, f, d),
            (lm.up, f, d),
            (lm.down, d, f),
        ):
            lin.out_features, lin.in_features = n_out, n_in
        for name, value in (("num_heads", r * g), ("num_key_value_heads", g), ("hidden_size", d)):
            if isinstance(getattr(lm.attn, name, None), int):
                setattr(lm.attn, name, value)
        if isinstance(getattr(lm.mlp, "intermediate_size", None), int):
            lm.mlp.intermediate_size = f
        for module in (lm.mlp, lm.layer):
            if isinstance(getattr(module, "hidden_size", None), int):
                module.hidden_size = d


def _update_config(model: nn.Module, space: PruningSpace, state: PruningState) -> None:
    """Config fields: hidden_size, head_dim (now explicit), and head/FFN counts (the widest layer if uneven).

    `rms_norm_eps` is multiplied by the hidden factor D/d like the norms' eps (it is also what an exported
    stock config needs).
    """
    config = getattr(model, "config", None)
    if config is None:
        return
    widths = state.widths()
    hidden_factor = len(state.physical.hidden) / len(state.kept.hidden)
    if hidden_factor != 1.0 and isinstance(getattr(config, "rms_norm_eps", None), float):
        config.rms_norm_eps = float(config.rms_norm_eps) * hidden_factor
    config.head_dim = int(space.head_dim)
    config.hidden_size = int(widths["hidden"])
    config.num_attention_heads = int(max(widths["heads"]))
    config.num_key_value_heads = int(max(widths["kv_heads"]))
    config.intermediate_size = int(max(widths["ffn"]))
