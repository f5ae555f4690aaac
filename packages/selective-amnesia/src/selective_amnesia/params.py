"""Which parameters unlearning trains: the MLP and/or attention of chosen decoder layers, or a regex.

The released code trains ``model.layers.{i}.<kind>.*`` for i in ``--trainable_layers`` (default 0..5) and
kind ``mlp``, ``self_attn`` or ``all`` (the whole layer); here the module names come from
`selective_amnesia.layout.find_layout`, so the same setting works for llama, olmo, olmo2, qwen2, gpt_neox
and gpt2. A `param_pattern` (a regular expression searched in each parameter name, like open-unlearning's
``trainable_params_regex``) replaces layers and kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from reprokit.errors import ConfigError
from selective_amnesia.layout import find_layout

if TYPE_CHECKING:
    from selective_amnesia.unlearning import UnlearnConfig

__all__ = ["TrainableShare", "freeze", "select_parameters"]


@dataclass(frozen=True)
class TrainableShare:
    """How many parameters (elements) are trained, of how many, and the share (0..1)."""

    trainable: int
    total: int
    share: float


def select_parameters(model: torch.nn.Module, config: UnlearnConfig) -> list[str]:
    """Names (as in ``model.named_parameters()``) of the parameters that `config` trains, in model order.

    With `config.param_pattern` every parameter whose name the regex matches (``re.search``); otherwise the
    `config.module_kind` modules (``mlp``, ``attn``, or ``all`` = every parameter of the layer: MLP,
    attention and the layer's norms, as the released code's ``all``) of `config.layers` (None = all).
    """
    names = [name for name, _ in model.named_parameters()]
    if config.param_pattern is not None:
        pattern = re.compile(config.param_pattern)
        chosen = [name for name in names if pattern.search(name)]
        if not chosen:
            raise ConfigError(
                f"param_pattern {config.param_pattern!r} matches no parameter of {type(model).__name__}; "
                f"its parameters are named like {', '.join(_examples(names))}. Fix the pattern (a regular "
                "expression searched in each name) or use layers and module_kind instead."
            )
        return chosen
    layout = find_layout(model)
    layers = range(layout.num_layers) if config.layers is None else config.layers
    prefixes = []
    for index in layers:
        layout.check_layer(index)
        if config.module_kind == "all":
            prefixes.append(layout.layer(index) + ".")
        else:
            prefixes.append(layout.module(config.module_kind, index) + ".")
    chosen = [name for name in names if name.startswith(tuple(prefixes))]
    if not chosen:
        raise ConfigError(
            f"the {config.module_kind} modules of layers {list(layers)} of {type(model).__name__} have no "
            f"parameters (e.g. a non-parametric module); choose another module_kind or a param_pattern. "
            f"Parameters are named like {', '.join(_examples(names))}."
        )
    return chosen


def freeze(model: torch.nn.Module, names: Iterable[str]) -> TrainableShare:
    """Let only the parameters `names` require gradients; return how much of the model that is."""
    wanted = set(names)
    params = dict(model.named_parameters())
    unknown = sorted(wanted - params.keys())
    if unknown:
        raise ConfigError(
            f"{len(unknown)} parameter names are not in {type(model).__name__} "
            f"(e.g. {', '.join(unknown[:3])}); "
            f"its parameters are named like {', '.join(_examples(list(params)))}."
        )
    trainable = total = 0
    for name, param in params.items():
        param.requires_grad_(name in wanted)
        total += param.numel()
        trainable += param.numel() if name in wanted else 0
    return TrainableShare(trainable, total, trainable / total if total else 0.0)


def _examples(names: list[str], k: int = 4) -> list[str]:
    """A few parameter names from the start and the middle of the model, for error messages."""
    picks = [*names[:2], *names[len(names) // 2 : len(names) // 2 + k - 2]]
    return list(dict.fromkeys(picks))
