"""Where a decoder-only model keeps its layers, MLPs, attention blocks and input embedding.

Module paths differ per architecture (``model.layers.3.mlp`` in llama, ``gpt_neox.layers.3.attention``,
``transformer.h.3.attn`` in gpt2). `find_layout` finds them by walking the model instead of a table per
model type: the decoder layers are the largest `torch.nn.ModuleList` of identical blocks, each block's MLP
and attention are its children with a conventional name, and the input embedding is the model's own
`get_input_embeddings()`. What it cannot find is a `ModelLoadError` that names the missing part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from reprokit.errors import ConfigError, ModelLoadError

__all__ = ["ATTN_NAMES", "KINDS", "MLP_NAMES", "Kind", "ModelLayout", "find_layout"]

#: Kinds of state that tracing restores: the residual stream (a decoder layer's output), MLP or attention.
Kind = Literal["hidden", "mlp", "attn"]
KINDS: tuple[str, ...] = ("hidden", "mlp", "attn")
#: Child names of a decoder block that hold its MLP, in the order they are tried.
MLP_NAMES: tuple[str, ...] = ("mlp", "feed_forward", "ffn", "block_sparse_moe")
#: Child names of a decoder block that hold its attention, in the order they are tried.
ATTN_NAMES: tuple[str, ...] = ("self_attn", "attention", "attn", "self_attention")


@dataclass(frozen=True)
class ModelLayout:
    """Module names (as in ``model.named_modules()``) of the parts that tracing and unlearning touch."""

    embedding: str
    layers: str
    num_layers: int
    mlp_child: str
    attn_child: str

    def layer(self, index: int) -> str:
        """Name of decoder layer `index` (its output is the residual stream after the layer)."""
        self.check_layer(index)
        return f"{self.layers}.{index}"

    def module(self, kind: str, index: int) -> str:
        """Name of the `kind` (hidden, mlp, attn) module of layer `index`."""
        if kind == "hidden":
            return self.layer(index)
        if kind == "mlp":
            return f"{self.layer(index)}.{self.mlp_child}"
        if kind == "attn":
            return f"{self.layer(index)}.{self.attn_child}"
        raise ConfigError(f"unknown module kind {kind!r}; choose one of {', '.join(KINDS)}.")

    def check_layer(self, index: int) -> None:
        """A `ConfigError` unless ``0 <= index < num_layers``."""
        if not isinstance(index, int) or not 0 <= index < self.num_layers:
            raise ConfigError(
                f"layer {index!r} is out of range: the model has {self.num_layers} layers "
                f"(0..{self.num_layers - 1})."
            )


def find_layout(model: torch.nn.Module) -> ModelLayout:
    """The `ModelLayout` of a decoder-only model, found by walking its modules (no per-model table)."""
    names = {id(module): name for name, module in model.named_modules()}
    what = type(model).__name__
    layers_name, blocks = _decoder_layers(model)
    if layers_name is None:
        raise ModelLoadError(
            f"{what}: found no decoder layers (a torch.nn.ModuleList of identical blocks); tracing needs a "
            "decoder-only transformer such as llama, olmo, qwen2, gpt_neox or gpt2."
        )
    children = dict(blocks[0].named_children())
    mlp = next((n for n in MLP_NAMES if n in children), None)
    attn = next((n for n in ATTN_NAMES if n in children), None)
    missing = [
        f"{part} (a child named {' or '.join(options)})"
        for part, found, options in (("an MLP", mlp, MLP_NAMES), ("an attention block", attn, ATTN_NAMES))
        if found is None
    ]
    if missing:
        raise ModelLoadError(
            f"{what}: the decoder layers {layers_name}.* ({type(blocks[0]).__name__}) have no "
            f"{' and no '.join(missing)}; their children are {', '.join(children) or 'none'}. This layout is "
            "not supported; use a llama, olmo, olmo2, qwen2, gpt_neox or gpt2 style model."
        )
    embedding = _embedding_name(model, names)
    if embedding is None:
        raise ModelLoadError(
            f"{what}: found no input embedding (get_input_embeddings() is missing or not a module of the "
            "model); tracing adds its noise to the embedding output, so the model must expose one."
        )
    return ModelLayout(embedding, layers_name, len(blocks), mlp, attn)  # type: ignore[arg-type]


def _decoder_layers(model: torch.nn.Module) -> tuple[str | None, list[torch.nn.Module]]:
    """The ModuleList of same-class blocks holding the most parameters (ties: the longest list)."""
    best: tuple[int, int] = (-1, -1)
    found: tuple[str | None, list[torch.nn.Module]] = (None, [])
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        blocks = list(module)
        if len({type(b) for b in blocks}) != 1 or not list(blocks[0].children()):
            continue
        size = (sum(p.numel() for p in module.parameters()), len(blocks))
        if size > best:
            best, found = size, (name, blocks)
    return found


def _embedding_name(model: torch.nn.Module, names: dict[int, str]) -> str | None:
    try:
        embedding = model.get_input_embeddings()  # type: ignore[operator]
    except (AttributeError, NotImplementedError, TypeError):
        return None
    return names.get(id(embedding)) if isinstance(embedding, torch.nn.Module) else None
