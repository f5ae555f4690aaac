"""The baselines the paper's method is compared with, on the same pruning space and export path.

- `one_shot_prune`: LLM-Pruner-style one-shot structured pruning. Gradients of the LM loss are accumulated
  over a small calibration set (no optimizer step), groups are scored with `efficientllm.saliency` (first
  order |g·w|, or second order with F = the mean of per-batch squared gradients), and the lowest-ranked
  groups are removed down to the target in one go with the continuous Pruner's own ranking and selection
  (`iter_ranked`, `select_groups`); then masks are applied and the model is compacted in place.
- `uniform_shape` / `build_from_shape`: a uniformly narrowed architecture (one ratio for heads and FFN,
  as a hand-designed small model would be) trained from scratch.
- `from_scratch_like`: a fresh model with exactly a pruned model's per-layer shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PretrainedConfig

from efficientllm.compaction import compact
from efficientllm.export import LayerWidths, ModelShape, _target_config, model_shape
from efficientllm.groups import KINDS, GroupKind, HeadsMode, find_groups
from efficientllm.masks import apply_masks
from efficientllm.saliency import Normalize, Order, group_saliency, iter_ranked
from efficientllm.schedule import select_groups
from efficientllm.state import PruningState
from reprokit.errors import ConfigError, DataError

__all__ = ["build_from_shape", "from_scratch_like", "one_shot_prune", "shape_of", "uniform_shape"]

_WIDTHS = ("num_attention_heads", "num_key_value_heads", "intermediate_size")
_SHAPE_KEYS = frozenset(
    (
        *_WIDTHS,
        "hidden_size",
        "head_dim",
        "num_hidden_layers",
        "vocab_size",
        "tie_word_embeddings",
        "attention_bias",
        "attention_out_bias",
        "mlp_bias",
        "rms_norm_eps",
    )
)


# -------------------------------------------------------------------------------- one-shot pruning
class _FisherCarrier:
    """Duck-types the AdamW state `saliency.element_saliency` reads: exp_avg_sq = F, step 1, beta2 = 0."""

    def __init__(self, fisher: dict[nn.Parameter, torch.Tensor]) -> None:
        self.state = {p: {"exp_avg_sq": f, "step": 1} for p, f in fisher.items()}
        self.param_groups = [{"params": list(fisher), "betas": (0.9, 0.0)}]


def _batches(
    calibration: Sequence[str] | Iterable[torch.Tensor | Mapping[str, Any]],
    tokenizer: Any,
    batch_size: int,
    max_length: int | None,
    device: torch.device,
) -> list[dict[str, torch.Tensor]]:
    """Model kwargs with `labels` (-100 on padding) from texts (needs `tokenizer`) or ready batches."""
    items = list(calibration)
    if not items:
        raise DataError("one_shot_prune: the calibration set is empty; pass a few texts or token batches.")
    out: list[dict[str, torch.Tensor]] = []
    if all(isinstance(x, str) for x in items):
        if tokenizer is None:
            raise ConfigError("one_shot_prune: calibration texts need tokenizer=; or pass token id batches.")
        for lo in range(0, len(items), batch_size):
            enc = tokenizer(
                list(items[lo : lo + batch_size]),
                return_tensors="pt",
                padding=True,
                truncation=max_length is not None,
                max_length=max_length,
            )
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            out.append(
                {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}
            )
    else:
        for x in items:
            if torch.is_tensor(x):
                ids = x if x.dim() == 2 else x.unsqueeze(0)
                out.append({"input_ids": ids, "labels": ids})
            elif isinstance(x, Mapping) and "input_ids" in x:
                batch = dict(x)
                if "labels" not in batch:
                    labels = batch["input_ids"]
                    if "attention_mask" in batch:
                        labels = labels.masked_fill(batch["attention_mask"] == 0, -100)
                    batch["labels"] = labels
                out.append(batch)
            else:
                raise DataError(
                    "one_shot_prune: calibration items must all be texts, token id tensors, or dicts with "
                    f"input_ids; got a {type(x).__name__}."
                )
    return [{k: v.to(device) for k, v in b.items()} for b in out]


def one_shot_prune(
    model: nn.Module,
    calibration: Sequence[str] | Iterable[torch.Tensor | Mapping[str, Any]],
    *,
    target_params: int | None = None,
    target_ratio: float | None = None,
    tokenizer: Any = None,
    kinds: Iterable[GroupKind] = KINDS,
    heads: HeadsMode = "per_layer",
    order: Order = "first",
    normalize: Normalize = "param",
    round_to: int = 1,
    batch_size: int = 8,
    max_length: int | None = None,
    count_embeddings: bool = True,
    compact_model: bool = True,
) -> PruningState:
    """Prune `model` once to `target_params` (or `target_ratio` of its size) by Taylor saliency; in place.

    `calibration`: texts (with `tokenizer`), token id tensors, or dicts of model inputs. The ranking and
    selection are those of the continuous `Pruner` (same `normalize`, `round_to`, `kinds`, `heads`), so the
    model ends at or just above the target (less than one more group). Returns the `PruningState`;
    ``compact_model=False`` leaves the removed groups masked (zero) instead of sliced out.
    """
    if (target_params is None) == (target_ratio is None):
        raise ConfigError("one_shot_prune: give exactly one of target_params or target_ratio.")
    if target_ratio is not None and not 0.0 < target_ratio <= 1.0:
        raise ConfigError(f"one_shot_prune: target_ratio must be in (0, 1], got {target_ratio}.")
    if order not in ("first", "second"):
        raise ConfigError(f"one_shot_prune: order must be 'first' or 'second', got {order!r}.")
    kinds = tuple(dict.fromkeys(kinds))
    if not kinds or any(k not in KINDS for k in kinds):
        raise ConfigError(f"one_shot_prune: kinds must be a non-empty subset of {KINDS}, got {kinds}.")
    space = find_groups(model, heads=heads)
    state = PruningState.full(space)
    live = space.live_params(state, embeddings=count_embeddings)
    target = int(target_params) if target_params is not None else round(float(target_ratio) * live)
    device = space.embed.weight.device
    batches = _batches(calibration, tokenizer, batch_size, max_length, device)

    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    fisher: dict[nn.Parameter, torch.Tensor] = {}
    grads: dict[nn.Parameter, torch.Tensor] = {}
    try:
        with torch.enable_grad():
            for batch in batches:
                model(**batch).loss.backward()
                for p in params:
                    if p.grad is None:
                        continue
                    g = p.grad.detach().float()
                    grads[p] = grads[p] + g if p in grads else g.clone()
                    if order == "second":
                        sq = g * g / len(batches)
                        fisher[p] = fisher[p] + sq if p in fisher else sq
                    p.grad = None
        for p, g in grads.items():
            p.grad = (g / len(batches)).to(p.dtype)
        carrier = _FisherCarrier(fisher) if order == "second" else None
        scores = group_saliency(space, state, order=order, optimizer=carrier)  # type: ignore[arg-type]
    finally:
        for p, g in zip(params, saved, strict=True):
            p.grad = g

    ranked = iter_ranked(
        space,
        state,
        scores,
        normalize=normalize,
        round_to=round_to,
        kinds=kinds,
        heads=heads,
        embeddings=count_embeddings,
    )
    select_groups(
        space, state, ranked, budget=max(0, live - target), floor=target, embeddings=count_embeddings
    )
    apply_masks(space, state)
    if compact_model:
        compact(model, state, space=space)
    return state


# ----------------------------------------------------------------------------------------- shapes
def shape_of(model: nn.Module) -> dict[str, Any]:
    """The widths of a (pruned) llama-family model: hidden size, head_dim, per-layer lists of the rest."""
    shape = model_shape(model)
    return {
        "hidden_size": shape.hidden_size,
        "head_dim": shape.head_dim,
        "num_hidden_layers": len(shape.layers),
        "num_attention_heads": [w.num_attention_heads for w in shape.layers],
        "num_key_value_heads": [w.num_key_value_heads for w in shape.layers],
        "intermediate_size": [w.intermediate_size for w in shape.layers],
        "vocab_size": shape.vocab_size,
        "tie_word_embeddings": shape.tied_embeddings,
        "attention_bias": shape.attention_bias,
        "attention_out_bias": shape.attention_out_bias,
        "mlp_bias": shape.mlp_bias,
        "rms_norm_eps": shape.rms_norm_eps,
    }


def source_shape(config: PretrainedConfig) -> dict[str, Any]:
    """The widths of a stock `config`'s model without building it (`shape_of` of a meta one-layer model for
    biases, head_dim and eps; the widths from the config)."""
    small = config.__class__(**{**config.to_dict(), "num_hidden_layers": 1})
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(small)
    shape = shape_of(model)
    shape["tie_word_embeddings"] = bool(getattr(config, "tie_word_embeddings", False))
    n = int(config.num_hidden_layers)
    shape["num_hidden_layers"] = n
    for key in _WIDTHS:
        shape[key] = shape[key] * n
    return shape


def _layers(shape: Mapping[str, Any]) -> tuple[LayerWidths, ...]:
    n = int(shape["num_hidden_layers"])
    lists = []
    for key in _WIDTHS:
        v = shape[key]
        v = [int(v)] * n if isinstance(v, int) else [int(x) for x in v]
        if len(v) != n:
            raise ConfigError(f"shape[{key!r}] has {len(v)} entries for {n} layers; give one per layer.")
        lists.append(v)
    return tuple(LayerWidths(*w) for w in zip(*lists, strict=True))


def _model_shape(source_config: PretrainedConfig, shape: Mapping[str, Any]) -> ModelShape:
    complete = set(shape) >= _SHAPE_KEYS  # e.g. from `shape_of`: no need to rebuild the source
    full = dict(shape) if complete else {**source_shape(source_config), **shape}
    return ModelShape(
        model_type=str(getattr(source_config, "model_type", "")),
        hidden_size=int(full["hidden_size"]),
        head_dim=int(full["head_dim"]),
        vocab_size=int(full["vocab_size"]),
        layers=_layers(full),
        attention_bias=bool(full["attention_bias"]),
        attention_out_bias=bool(full["attention_out_bias"]),
        mlp_bias=bool(full["mlp_bias"]),
        tied_embeddings=bool(full["tie_word_embeddings"]),
        rms_norm_eps=float(full["rms_norm_eps"]),
    )


def _count(shape: ModelShape, embeddings: bool) -> int:
    """Parameters of a model of `shape` (a tied embedding once; embeddings=False leaves them out)."""
    total = 0
    d, hd = shape.hidden_size, shape.head_dim
    for w in shape.layers:
        q, kv = w.num_attention_heads * hd, w.num_key_value_heads * hd
        total += d * (q + 2 * kv) + q * d + 3 * d * w.intermediate_size + 2 * d
        total += (q + 2 * kv) * shape.attention_bias + d * shape.attention_out_bias
        total += (2 * w.intermediate_size + d) * shape.mlp_bias
    total += d  # final norm
    if embeddings:
        total += shape.vocab_size * d * (1 if shape.tied_embeddings else 2)
    return total


def uniform_shape(
    source_config: PretrainedConfig,
    target_params: int,
    *,
    keep_hidden: bool = True,
    round_to: int = 1,
    embeddings: bool = True,
) -> dict[str, Any]:
    """Widths of a uniformly narrowed `source_config` model with about `target_params` parameters.

    One ratio r scales the KV groups (with their query heads), the FFN width and, unless `keep_hidden`,
    the hidden size; r is found by bisection, then the FFN width is set to the multiple of `round_to`
    that brings the count closest to the target (within one FFN channel bundle in every layer).
    Counting follows `embeddings` like `PruneConfig.count_embeddings`.
    """
    src = _model_shape(source_config, {})
    w0 = src.layers[0]
    if len(set(src.layers)) != 1:
        raise ConfigError("uniform_shape: the source config has per-layer widths; start from a uniform one.")
    per_group = w0.num_attention_heads // w0.num_key_value_heads

    def rounded(x: float, full: int, step: int) -> int:
        return int(min(full, max(step, round(x / step) * step)))

    def at(r: float, ffn: int | None = None) -> ModelShape:
        kv = rounded(r * w0.num_key_value_heads, w0.num_key_value_heads, 1)
        d = src.hidden_size if keep_hidden else rounded(r * src.hidden_size, src.hidden_size, round_to)
        f = rounded(r * w0.intermediate_size, w0.intermediate_size, round_to) if ffn is None else ffn
        layer = LayerWidths(kv * per_group, kv, f)
        return dataclasses.replace(src, hidden_size=d, layers=(layer,) * len(src.layers))

    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if _count(at(mid), embeddings) < target_params:
            lo = mid
        else:
            hi = mid
    r = hi
    base = at(r, ffn=0)
    slope = _count(at(r, ffn=1), embeddings) - _count(base, embeddings)
    ffn = rounded((target_params - _count(base, embeddings)) / slope, 10**12, round_to)
    shape = at(r, ffn=ffn)
    w = shape.layers[0]
    return {
        "hidden_size": shape.hidden_size,
        "head_dim": shape.head_dim,
        "num_hidden_layers": len(shape.layers),
        "num_attention_heads": w.num_attention_heads,
        "num_key_value_heads": w.num_key_value_heads,
        "intermediate_size": w.intermediate_size,
        "ratio": r,
        "params": _count(shape, embeddings),
    }


def build_from_shape(source_config: PretrainedConfig, shape: Mapping[str, Any], seed: int = 0) -> nn.Module:
    """A freshly initialised model of `shape`'s widths and `source_config`'s other settings.

    Uniform widths give the source's stock config class (an `EfficientLlamaConfig` source becomes a stock
    `LlamaConfig`/`Qwen2Config`); per-layer lists give `efficientllm.modeling.EfficientLlamaConfig`.
    Initialisation is transformers' own, under ``torch.manual_seed(seed)`` (global RNG state restored).
    """
    target, _notes = _target_config(_model_shape(source_config, shape), source_config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(target, dtype=source_config.dtype or torch.float32)
    return model


def from_scratch_like(pruned_model: nn.Module, seed: int = 0) -> nn.Module:
    """A freshly initialised model with exactly `pruned_model`'s per-layer shape (the from-scratch arm)."""
    return build_from_shape(pruned_model.config, shape_of(pruned_model), seed)
