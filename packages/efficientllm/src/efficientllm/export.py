"""Save a physically pruned llama-family model as a genuinely smaller checkpoint (safetensors + tokenizer).

The widths are read from the modules, not from the (possibly stale) config. When every layer has the
same widths the checkpoint uses the model's own stock config class (`LlamaConfig`, `Qwen2Config`, ...)
with ``head_dim`` decoupled from ``hidden_size`` where hidden-channel pruning made them differ, so stock
``AutoModelForCausalLM.from_pretrained`` loads it with nothing of ours installed. When widths differ per
layer (or a stock config refuses the shape, e.g. transformers' Llama check that ``hidden_size`` divides
by the head count) it uses `EfficientLlamaConfig`, which ``import efficientllm`` registers with the Auto
classes. Before the folder appears (it is written atomically), the saved checkpoint is reloaded and its
logits compared with the in-memory model's, so an export that would change the model is refused.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from efficientllm.modeling import MODEL_TYPE, EfficientLlamaConfig
from reprokit.errors import ConfigError, OutputPathError
from reprokit.lm import LanguageModel, input_device, load_lm
from reprokit.results import atomic_directory, atomic_write_json

__all__ = [
    "EXPORT_REPORT_FILE",
    "PER_LAYER_TYPES",
    "ExportError",
    "ExportReport",
    "LayerWidths",
    "ModelShape",
    "export_model",
    "load_exported",
    "model_shape",
]

#: Model types whose forward `EfficientLlamaForCausalLM` reproduces exactly (full attention), so that
#: per-layer widths can be exported for them.
PER_LAYER_TYPES = frozenset({"llama", "mistral", "qwen2", MODEL_TYPE})
#: The export report written next to the weights.
EXPORT_REPORT_FILE = "efficientllm_export.json"
_PER_LAYER_KEYS = ("layer_num_attention_heads", "layer_num_key_value_heads", "layer_intermediate_size")
_DROP_KEYS = ("architectures", "auto_map", "_name_or_path", "transformers_version", "dtype", "torch_dtype")


class ExportError(ConfigError):
    """The model cannot be exported as asked, or the saved checkpoint would not reproduce it."""


@dataclass(frozen=True)
class LayerWidths:
    """The widths of one decoder layer."""

    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int


@dataclass(frozen=True)
class ModelShape:
    """The actual shape of a llama-family model, read from its modules."""

    model_type: str
    hidden_size: int
    head_dim: int
    vocab_size: int
    layers: tuple[LayerWidths, ...]
    attention_bias: bool  # q/k/v
    attention_out_bias: bool  # o_proj
    mlp_bias: bool
    tied_embeddings: bool
    rms_norm_eps: float

    @property
    def uniform(self) -> bool:
        """Whether every layer has the same widths."""
        return len(set(self.layers)) == 1


@dataclass(frozen=True)
class ExportReport:
    """What `export_model` wrote: where, which config, how big, and how faithfully."""

    folder: Path
    uniform: bool  # every layer has the same widths
    stock: bool  # loads with stock transformers, without `import efficientllm`
    model_type: str
    config_class: str
    num_parameters: int
    hidden_size: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    layers: tuple[LayerWidths, ...]
    dtype: str
    max_logit_diff: float | None  # reloaded checkpoint vs the in-memory model; None when not verified
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the folder as a string)."""
        out = asdict(self)
        out["folder"] = str(self.folder)
        return out


# ------------------------------------------------------------------------------------------ shape
def model_shape(model: nn.Module) -> ModelShape:
    """Read hidden size, head_dim and every layer's widths from the modules of a llama-family causal LM.

    Refuses, with the layer and the fix, what a checkpoint cannot hold: a layer without heads or FFN
    channels, query heads that do not fill whole KV groups, projections that disagree with each other.
    """
    model = model.model if isinstance(model, LanguageModel) else model
    base = getattr(model, "model", None)
    layers = getattr(base, "layers", None)
    embed = getattr(base, "embed_tokens", None)
    head = getattr(model, "lm_head", None)
    if layers is None or embed is None or head is None or getattr(base, "norm", None) is None:
        raise ExportError(
            f"{type(model).__name__} is not a llama-family causal LM (model.embed_tokens, model.layers[i]."
            "self_attn.q/k/v/o_proj, mlp.gate/up/down_proj, model.norm, lm_head); export supports llama, "
            "mistral, qwen2 and checkpoints built like them."
        )
    config = getattr(model, "config", None)
    model_type = str(getattr(config, "model_type", "") or "")
    vocab, hidden = (int(n) for n in embed.weight.shape)
    if tuple(head.weight.shape) != (vocab, hidden):
        raise ExportError(
            f"lm_head has shape {tuple(head.weight.shape)} but the embedding {(vocab, hidden)}; prune the "
            "hidden channels of lm_head together with the embedding's."
        )
    if getattr(head, "bias", None) is not None:
        raise ExportError("lm_head has a bias, which llama-family configs cannot hold.")
    norms = [base.norm]  # over the hidden channels
    eps_only: list[nn.Module] = []  # norms over head channels: only their epsilon is checked
    head_dims: set[int] = set()
    widths: list[LayerWidths] = []
    qkv_biases: set[bool] = set()
    o_biases: set[bool] = set()
    mlp_biases: set[bool] = set()
    for i, layer in enumerate(layers):
        attn, mlp = _child(layer, "self_attn", i), _child(layer, "mlp", i)
        q, k, v, o = (_child(attn, name, i) for name in ("q_proj", "k_proj", "v_proj", "o_proj"))
        gate, up, down = (_child(mlp, name, i) for name in ("gate_proj", "up_proj", "down_proj"))
        head_dim = int(getattr(attn, "head_dim", 0) or getattr(config, "head_dim", 0) or 0)
        if head_dim < 1:
            raise ExportError(f"layer {i}: attention has no head_dim; set self_attn.head_dim.")
        head_dims.add(head_dim)
        # shapes from the weights themselves: a compaction that slices `param.data` may leave
        # `out_features` / `in_features` stale
        q_out, k_out = int(q.weight.shape[0]), int(k.weight.shape[0])
        if q_out == 0 or k_out == 0:
            raise ExportError(
                f"layer {i} has no attention heads left; a checkpoint cannot hold a layer without heads "
                "(keep at least one head, or one KV group, per layer when pruning)."
            )
        if q_out % head_dim or k_out % head_dim:
            raise ExportError(
                f"layer {i}: q_proj ({q_out}) or k_proj ({k_out}) outputs are not a whole number of heads "
                f"of {head_dim}; remove whole heads, not single channels."
            )
        heads, kv_heads = q_out // head_dim, k_out // head_dim
        if heads % kv_heads:
            raise ExportError(
                f"layer {i} has {heads} query heads and {kv_heads} key/value heads; query heads must be a "
                "whole multiple of KV heads (prune a KV group together with its query heads)."
            )
        groups = getattr(attn, "num_key_value_groups", heads // kv_heads)
        if groups != heads // kv_heads:
            raise ExportError(
                f"layer {i}: self_attn.num_key_value_groups is {groups} but the projections hold {heads} "
                f"query and {kv_heads} KV heads; set it to {heads // kv_heads} after compaction."
            )
        ffn = int(gate.weight.shape[0])
        if ffn == 0:
            raise ExportError(f"layer {i} has no FFN channels left; keep at least one per layer.")
        expected = {
            "q_proj": (q_out, hidden),
            "k_proj": (k_out, hidden),
            "v_proj": (k_out, hidden),
            "o_proj": (hidden, q_out),
            "gate_proj": (ffn, hidden),
            "up_proj": (ffn, hidden),
            "down_proj": (hidden, ffn),
        }
        modules = {"q_proj": q, "k_proj": k, "v_proj": v, "o_proj": o, "gate_proj": gate, "up_proj": up}
        modules["down_proj"] = down
        for name, want in expected.items():
            module = modules[name]
            got = tuple(module.weight.shape)
            bias = getattr(module, "bias", None)
            if got != want or (bias is not None and tuple(bias.shape) != (want[0],)):
                raise ExportError(
                    f"layer {i}: {name} has weight {got} (bias "
                    f"{None if bias is None else tuple(bias.shape)}) where {want} is expected; the model "
                    "was not compacted consistently (every coupled channel must be removed from all its "
                    "tensors)."
                )
        qkv_biases.update(m.bias is not None for m in (q, k, v))
        o_biases.add(o.bias is not None)
        mlp_biases.update(m.bias is not None for m in (gate, up, down))
        layer_norms = [c for c in layer.children() if _is_norm(c)]
        if not layer_norms:
            raise ExportError(f"layer {i} has no RMSNorm with a weight; not a llama-family layer.")
        norms += layer_norms
        eps_only += [c for c in attn.children() if _is_norm(c)]  # q_norm / k_norm (olmo2, qwen3)
        widths.append(LayerWidths(heads, kv_heads, ffn))
    if not widths:
        raise ExportError("the model has no decoder layers.")
    if len(head_dims) != 1:
        raise ExportError(f"layers use different head_dims {sorted(head_dims)}; a checkpoint holds one.")
    for name, flags in (("q/k/v", qkv_biases), ("o_proj", o_biases), ("MLP", mlp_biases)):
        if len(flags) != 1:
            raise ExportError(
                f"some {name} projections have a bias and others not; a checkpoint holds one flag."
            )
    for norm in norms:
        weight = getattr(norm, "weight", None)
        if weight is None or tuple(weight.shape) != (hidden,):
            raise ExportError(
                f"an RMSNorm has weight shape {None if weight is None else tuple(weight.shape)} but the "
                f"hidden size is {hidden}; prune the hidden channels of every norm with the embedding's."
            )

    def eps_of(norm: nn.Module) -> float:
        return float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 0.0)))

    eps_values = {eps_of(norm) for norm in norms}
    if len(eps_values) != 1:
        raise ExportError(
            f"the RMSNorms use different epsilons {sorted(eps_values)}; a checkpoint holds one rms_norm_eps "
            "(rescale all norms alike after hidden-channel pruning)."
        )
    head_eps = {eps_of(norm) for norm in eps_only} - eps_values
    if head_eps:
        raise ExportError(
            f"the q_norm/k_norm epsilons {sorted(head_eps)} differ from the other RMSNorms' "
            f"{sorted(eps_values)}, and the {model_type or 'stock'} config holds one rms_norm_eps. "
            "Compaction rescales a full-width q_norm/k_norm (OLMo2) when heads or hidden channels are "
            "removed, so such a model exports only after pruning FFN channels alone."
        )
    return ModelShape(
        model_type=model_type,
        hidden_size=hidden,
        head_dim=head_dims.pop(),
        vocab_size=vocab,
        layers=tuple(widths),
        attention_bias=qkv_biases.pop(),
        attention_out_bias=o_biases.pop(),
        mlp_bias=mlp_biases.pop(),
        tied_embeddings=head.weight is embed.weight or head.weight.data_ptr() == embed.weight.data_ptr(),
        rms_norm_eps=eps_values.pop(),
    )


def _is_norm(module: nn.Module) -> bool:
    """An RMSNorm-like module: a 1-d weight and an epsilon."""
    weight = getattr(module, "weight", None)
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
    return isinstance(weight, torch.Tensor) and weight.dim() == 1 and isinstance(eps, float)


def _child(module: nn.Module, name: str, layer: int) -> nn.Module:
    child = getattr(module, name, None)
    if child is None:
        raise ExportError(
            f"layer {layer}: {type(module).__name__} has no {name}; export supports llama-family layers "
            "(self_attn.q/k/v/o_proj, mlp.gate/up/down_proj, RMSNorms)."
        )
    if name.endswith("_proj") and not isinstance(child, nn.Linear):
        raise ExportError(f"layer {layer}: {name} is a {type(child).__name__}, not nn.Linear.")
    return child


# ----------------------------------------------------------------------------------------- config
def _source_dict(config: PretrainedConfig | None) -> dict[str, Any]:
    if config is None:
        return {}
    out = config.to_dict()
    for key in _DROP_KEYS:
        out.pop(key, None)
    return out


def _stock_config(shape: ModelShape, config: PretrainedConfig) -> PretrainedConfig:
    """The model's own config class with the actual widths; raises if that class cannot hold the shape."""
    from transformers import LlamaConfig, Qwen2Config

    values = _source_dict(config)
    widths = shape.layers[0]
    config_class: type[PretrainedConfig] = type(config)
    if shape.model_type == MODEL_TYPE:  # a per-layer checkpoint that became uniform: back to a stock class
        for name in (*_PER_LAYER_KEYS, "attention_out_bias", "model_type"):
            values.pop(name, None)
        if shape.attention_bias and not shape.attention_out_bias:
            config_class = Qwen2Config
            values.pop("attention_bias", None)
            values.pop("mlp_bias", None)
        else:
            config_class = LlamaConfig
    fields = set(getattr(config_class, "__dataclass_fields__", ()))
    # Which biases the class can express: a flag of its own (llama), or fixed by the architecture.
    if "attention_bias" in fields:
        if shape.attention_bias != shape.attention_out_bias:
            raise ValueError(f"{config_class.__name__} has one bias flag for q/k/v and o_proj, the model two")
        values["attention_bias"] = shape.attention_bias
    else:
        fixed = issubclass(config_class, Qwen2Config)  # Qwen2: q/k/v always biased, o_proj never
        if (shape.attention_bias, shape.attention_out_bias) != (fixed, False):
            raise ValueError(f"{config_class.__name__} cannot hold these attention biases")
    if "mlp_bias" in fields:
        values["mlp_bias"] = shape.mlp_bias
    elif shape.mlp_bias:
        raise ValueError(f"{config_class.__name__} cannot hold MLP biases")
    values.update(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=widths.intermediate_size,
        num_hidden_layers=len(shape.layers),
        num_attention_heads=widths.num_attention_heads,
        num_key_value_heads=widths.num_key_value_heads,
        head_dim=shape.head_dim,
        rms_norm_eps=shape.rms_norm_eps,
        tie_word_embeddings=shape.tied_embeddings,
    )
    return config_class(**values)


def _per_layer_config(shape: ModelShape, config: PretrainedConfig | None) -> EfficientLlamaConfig:
    """An `EfficientLlamaConfig` with the per-layer widths; refuses types whose forward it does not match."""
    if shape.model_type not in PER_LAYER_TYPES:
        raise ExportError(
            f"per-layer widths can be exported for {', '.join(sorted(PER_LAYER_TYPES))} models, not "
            f"{shape.model_type or 'this model'!r}: its forward differs from Llama's. Prune it "
            "layer-uniformly (the same widths in every layer) to export it with its own stock config."
        )
    values = _source_dict(config)
    sliding = values.get("sliding_window")
    if sliding is not None and sliding < int(values.get("max_position_embeddings") or 0):
        raise ExportError(
            f"the model uses sliding-window attention (window {sliding}), which the per-layer export does "
            "not implement; set config.sliding_window = None if the window never applies, or prune uniformly."
        )
    keep = (
        "hidden_act",
        "max_position_embeddings",
        "initializer_range",
        "use_cache",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "rope_parameters",
        "attention_dropout",
    )
    kept = {k: values[k] for k in keep if k in values}
    widths = shape.layers
    return EfficientLlamaConfig(
        **kept,
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        num_hidden_layers=len(widths),
        num_attention_heads=max(w.num_attention_heads for w in widths),
        num_key_value_heads=max(w.num_key_value_heads for w in widths),
        intermediate_size=max(w.intermediate_size for w in widths),
        head_dim=shape.head_dim,
        layer_num_attention_heads=[w.num_attention_heads for w in widths],
        layer_num_key_value_heads=[w.num_key_value_heads for w in widths],
        layer_intermediate_size=[w.intermediate_size for w in widths],
        rms_norm_eps=shape.rms_norm_eps,
        tie_word_embeddings=shape.tied_embeddings,
        attention_bias=shape.attention_bias,
        attention_out_bias=shape.attention_out_bias,
        mlp_bias=shape.mlp_bias,
    )


def _target_config(shape: ModelShape, config: PretrainedConfig | None) -> tuple[PretrainedConfig, list[str]]:
    notes: list[str] = []
    if shape.uniform and config is not None:
        try:
            return _stock_config(shape, config), notes
        except Exception as err:  # the stock class refuses this shape: say why, then fall back
            cause = err.__cause__ if err.__cause__ is not None else err
            notes.append(
                f"the stock config class cannot hold this shape ({type(cause).__name__}: {cause}); exported "
                "with EfficientLlamaConfig, which needs `import efficientllm` to load."
            )
    elif shape.uniform:
        notes.append("the model has no config; exported with EfficientLlamaConfig.")
    return _per_layer_config(shape, config), notes


# ----------------------------------------------------------------------------------------- export
def export_model(
    model: PreTrainedModel | LanguageModel,
    tokenizer: PreTrainedTokenizerBase | None,
    folder: str | os.PathLike[str],
    *,
    dtype: torch.dtype | str | None = None,
    overwrite: bool = False,
    verify: bool = True,
) -> ExportReport:
    """Save a physically compacted llama-family model and its tokenizer to `folder` (safetensors), atomically.

    Uniform widths give a stock config (loads with plain transformers); per-layer widths give
    `EfficientLlamaConfig` (loads after ``import efficientllm``). `dtype` casts the saved weights (default:
    as in memory). With `verify`, the checkpoint is reloaded and its logits on a probe batch must match the
    model's, else nothing is written. `tokenizer` may be None when `model` is a `LanguageModel`.
    """
    if isinstance(model, LanguageModel):
        tokenizer = model.tokenizer if tokenizer is None else tokenizer
        model = model.model
    if tokenizer is None:
        raise ExportError("export_model needs the model's tokenizer, so that the folder loads on its own.")
    out = Path(folder).expanduser()
    if out.exists() and not overwrite:
        raise OutputPathError(f"{out} already exists; pass overwrite=True or choose another folder.")
    save_dtype = _resolve_dtype(dtype, model)
    shape = model_shape(model)
    config = getattr(model, "config", None)
    target, notes = _target_config(shape, config)
    stock = target.model_type != MODEL_TYPE
    if not shape.uniform:
        notes.append(
            "widths differ per layer; exported with EfficientLlamaConfig (needs `import efficientllm`)."
        )

    with torch.device("meta"):
        clone = AutoModelForCausalLM.from_config(target, dtype=save_dtype)
    try:
        clone.load_state_dict(model.state_dict(), strict=True, assign=True)
    except RuntimeError as err:
        raise ExportError(
            f"the model's tensors do not fit the exported {type(target).__name__} ({err}). Export a plain "
            "compacted model (no extra buffers, adapters or wrappers); if it is one, please report this with "
            "the model's module shapes."
        ) from err
    if shape.tied_embeddings:
        clone.tie_weights()
    clone.to(save_dtype)
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        clone.generation_config = copy.deepcopy(generation_config)
    num_parameters = sum(p.numel() for p in clone.parameters())

    max_diff: float | None = None
    with atomic_directory(out, replace=overwrite) as tmp:
        clone.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if verify:
            max_diff = _verify(model, tmp, save_dtype, shape.vocab_size)
        report = ExportReport(
            folder=out,
            uniform=shape.uniform,
            stock=stock,
            model_type=target.model_type,
            config_class=type(target).__name__,
            num_parameters=int(num_parameters),
            hidden_size=shape.hidden_size,
            head_dim=shape.head_dim,
            vocab_size=shape.vocab_size,
            tied_embeddings=shape.tied_embeddings,
            layers=shape.layers,
            dtype=str(save_dtype).removeprefix("torch."),
            max_logit_diff=max_diff,
            notes=tuple(notes),
        )
        atomic_write_json(Path(tmp) / EXPORT_REPORT_FILE, report.to_dict())
    return report


def load_exported(
    folder: str | os.PathLike[str], *, dtype: str | torch.dtype = "auto", device: str | torch.device = "auto"
) -> LanguageModel:
    """Load an exported folder (stock or per-layer) as a `LanguageModel`, with `load_lm`'s checks."""
    return load_lm(folder, dtype=dtype, device=device)


def _resolve_dtype(dtype: torch.dtype | str | None, model: nn.Module) -> torch.dtype:
    if dtype is None:
        return next(model.parameters()).dtype
    if isinstance(dtype, torch.dtype):
        return dtype
    names: Mapping[str, torch.dtype] = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype not in names:
        raise ConfigError(
            f"unknown dtype {dtype!r}; use float32, bfloat16 or float16 (or None: as in memory)."
        )
    return names[dtype]


@torch.no_grad()
def _verify(model: nn.Module, folder: Path, save_dtype: torch.dtype, vocab: int) -> float:
    """Reload the checkpoint, compare its logits with `model`'s on a fixed probe batch; the max difference."""
    device = input_device(model)
    source_dtype = next(model.parameters()).dtype
    reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=source_dtype).to(device).eval()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (2, 16), generator=generator).to(device)
    was_training = model.training
    model.eval()
    try:
        want = model(input_ids=ids).logits.float()
    finally:
        model.train(was_training)
    got = reloaded(input_ids=ids).logits.float()
    del reloaded
    diff = float((got - want).abs().max())
    scale = 1.0 + float(want.abs().max())
    if save_dtype != source_dtype:
        tolerance = 0.1 * scale  # weights rounded to another dtype: only gross errors are caught
    elif source_dtype in (torch.float32, torch.float64):
        tolerance = 1e-4 * scale
    else:
        tolerance = 5e-2 * scale
    if not diff <= tolerance:
        raise ExportError(
            f"the saved checkpoint does not reproduce the model: max logit difference {diff:.3g} (tolerance "
            f"{tolerance:.3g}). Nothing was written. Check that the compacted model is consistent (RMSNorm "
            "eps after hidden pruning, num_key_value_groups) or export with verify=False to inspect it."
        )
    return diff
