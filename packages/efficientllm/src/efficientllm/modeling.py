"""A Llama whose layers differ in width (per-layer heads, KV heads, FFN size), registered with transformers.

Pruning-aware pretraining can leave every layer with its own number of attention heads and FFN channels
(e.g. heads [8, 1, 4, 2]). Stock `LlamaConfig` holds one int per width (transformers 5 refuses a list), so
`EfficientLlamaConfig` adds per-layer lists and `EfficientLlamaForCausalLM` builds the stock model and then
resizes each layer's projections to its own widths before any weight is loaded. Importing this module
registers both with `AutoConfig` / `AutoModel` / `AutoModelForCausalLM` (model type ``"efficientllm"``), so
``import efficientllm`` is all `from_pretrained` needs: no remote code. q/k/v biases (``attention_bias``)
and an o_proj bias of its own (``attention_out_bias``, False for Qwen2-style checkpoints) are supported.
Limits: one ``head_dim`` for all layers, full (not sliding-window) attention, dynamic KV cache only (a
static cache sized from the config's max widths does not fit the narrower layers).
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, LlamaConfig
from transformers.models.llama.modeling_llama import LlamaForCausalLM, LlamaModel

__all__ = [
    "MODEL_TYPE",
    "EfficientLlamaConfig",
    "EfficientLlamaForCausalLM",
    "EfficientLlamaModel",
    "resize_layers",
]

#: The ``model_type`` written to config.json of a model with per-layer widths.
MODEL_TYPE = "efficientllm"

_LISTS = (
    ("layer_num_attention_heads", "num_attention_heads"),
    ("layer_num_key_value_heads", "num_key_value_heads"),
    ("layer_intermediate_size", "intermediate_size"),
)


@strict  # class validators are collected per decorated class: without it Llama's own would run
class EfficientLlamaConfig(LlamaConfig):
    """`LlamaConfig` plus per-layer widths; the scalar width fields hold the largest layer's value.

    Lists left out are filled from the scalar fields (a uniform model). ``head_dim`` is shared by all
    layers and may differ from ``hidden_size / num_attention_heads`` (hidden-channel pruning decouples
    them). ``attention_out_bias`` (None: same as ``attention_bias``) gives o_proj its own bias flag.
    """

    model_type = MODEL_TYPE

    layer_num_attention_heads: list[int] | None = None
    layer_num_key_value_heads: list[int] | None = None
    layer_intermediate_size: list[int] | None = None
    attention_out_bias: bool | None = None

    def __post_init__(self, **kwargs):
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:  # the stock rule, from the scalar as given, before it becomes the max
            self.head_dim = self.hidden_size // self.num_attention_heads
        for name, scalar in _LISTS:
            values = getattr(self, name)
            if values is None:
                setattr(self, name, [int(getattr(self, scalar))] * self.num_hidden_layers)
            else:
                setattr(self, name, [int(v) for v in values])
                if values:  # an empty list is refused by validate_architecture
                    setattr(self, scalar, max(int(v) for v in values))
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Per-layer lists: one entry per layer, each keeps >= 1 head, query heads fill whole KV groups."""
        n = self.num_hidden_layers
        for name, _ in _LISTS:
            values = getattr(self, name)
            if len(values) != n:
                raise ValueError(
                    f"EfficientLlamaConfig.{name} has {len(values)} entries but num_hidden_layers is {n}; "
                    "give one width per layer."
                )
            if any(v < 1 for v in values):
                layer = next(i for i, v in enumerate(values) if v < 1)
                raise ValueError(
                    f"EfficientLlamaConfig.{name}[{layer}] is {values[layer]}: every layer must keep at "
                    "least one head and one FFN channel (the pruner never removes a layer's last one); "
                    "remove the layer instead, which this config does not support."
                )
        for i, (q, kv) in enumerate(
            zip(self.layer_num_attention_heads, self.layer_num_key_value_heads, strict=True)
        ):
            if q % kv:
                raise ValueError(
                    f"EfficientLlamaConfig: layer {i} has {q} query heads and {kv} key/value heads; query "
                    "heads must be a whole multiple of KV heads (prune a KV group together with its query "
                    "heads)."
                )
        if not self.head_dim or self.head_dim < 1:
            raise ValueError(f"EfficientLlamaConfig.head_dim must be a positive int, got {self.head_dim!r}.")

    def layer_widths(self, layer: int) -> tuple[int, int, int]:
        """(query heads, key/value heads, FFN size) of `layer`."""
        return (
            self.layer_num_attention_heads[layer],
            self.layer_num_key_value_heads[layer],
            self.layer_intermediate_size[layer],
        )

    @property
    def is_uniform(self) -> bool:
        """Whether every layer has the same widths (then a stock `LlamaConfig` can hold them)."""
        return len({self.layer_widths(i) for i in range(self.num_hidden_layers)}) <= 1


def resize_layers(model: LlamaModel, config: EfficientLlamaConfig) -> None:
    """Give each decoder layer of `model` the widths `config` lists for it (fresh, uninitialised projections).

    Replaces q/k/v/o and gate/up/down with Linear modules of the layer's own size, on the device and in the
    dtype of the modules they replace (the meta device while `from_pretrained` builds the model), and sets
    what attention's forward reads per layer (`num_key_value_groups`). Run before weights are loaded.
    """
    hidden, head_dim = config.hidden_size, config.head_dim
    qkv_bias = bool(config.attention_bias)
    o_bias = qkv_bias if config.attention_out_bias is None else bool(config.attention_out_bias)
    mlp_bias = bool(config.mlp_bias)
    if len(model.layers) != config.num_hidden_layers:
        raise ValueError(f"model has {len(model.layers)} layers, config {config.num_hidden_layers}.")
    for i, layer in enumerate(model.layers):
        heads, kv_heads, ffn = config.layer_widths(i)
        attn, mlp = layer.self_attn, layer.mlp
        like = {"device": attn.q_proj.weight.device, "dtype": attn.q_proj.weight.dtype}
        attn.q_proj = nn.Linear(hidden, heads * head_dim, bias=qkv_bias, **like)
        attn.k_proj = nn.Linear(hidden, kv_heads * head_dim, bias=qkv_bias, **like)
        attn.v_proj = nn.Linear(hidden, kv_heads * head_dim, bias=qkv_bias, **like)
        attn.o_proj = nn.Linear(heads * head_dim, hidden, bias=o_bias, **like)
        attn.num_key_value_groups = heads // kv_heads
        attn.head_dim = head_dim
        attn.scaling = head_dim**-0.5
        like = {"device": mlp.gate_proj.weight.device, "dtype": mlp.gate_proj.weight.dtype}
        mlp.gate_proj = nn.Linear(hidden, ffn, bias=mlp_bias, **like)
        mlp.up_proj = nn.Linear(hidden, ffn, bias=mlp_bias, **like)
        mlp.down_proj = nn.Linear(ffn, hidden, bias=mlp_bias, **like)
        mlp.intermediate_size = ffn


class EfficientLlamaModel(LlamaModel):
    """`LlamaModel` (no LM head) with per-layer widths from an `EfficientLlamaConfig`."""

    config_class = EfficientLlamaConfig
    config: EfficientLlamaConfig

    def __init__(self, config: EfficientLlamaConfig):
        super().__init__(config)
        resize_layers(self, config)
        self.post_init()  # initialise the new projections (skipped on the meta device of from_pretrained)


class EfficientLlamaForCausalLM(LlamaForCausalLM):
    """`LlamaForCausalLM` with per-layer widths from an `EfficientLlamaConfig`; forward is Llama's."""

    config_class = EfficientLlamaConfig
    config: EfficientLlamaConfig

    def __init__(self, config: EfficientLlamaConfig):
        super().__init__(config)
        resize_layers(self.model, config)
        self.post_init()  # initialise the new projections (skipped on the meta device of from_pretrained)


def _register() -> None:
    """Register the config and models with the transformers Auto classes (idempotent)."""
    AutoConfig.register(MODEL_TYPE, EfficientLlamaConfig, exist_ok=True)
    AutoModel.register(EfficientLlamaConfig, EfficientLlamaModel, exist_ok=True)
    AutoModelForCausalLM.register(EfficientLlamaConfig, EfficientLlamaForCausalLM, exist_ok=True)


_register()
