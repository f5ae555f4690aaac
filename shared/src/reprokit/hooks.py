"""Read or replace the outputs of named modules of a plain HF model, hooks always removed.

PyTorch hooks are global state on the module; `trace` installs forward hooks for the duration of a
`with` block and removes them in `finally`, also when the body raises.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

EditFn = Callable[[str, torch.Tensor], torch.Tensor | None]


def _main_tensor(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def get_module(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """The submodule called `name`; unknown names raise a KeyError with close matches."""
    modules = dict(model.named_modules())
    if name not in modules:
        close = difflib.get_close_matches(name, modules, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no module named {name!r} in {type(model).__name__}.{hint}")
    return modules[name]


@dataclass
class Trace:
    """Outputs (and optionally inputs) captured by `trace`, keyed by module name."""

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.outputs[name]


@contextmanager
def trace(
    model: torch.nn.Module,
    names: Sequence[str],
    *,
    edit: EditFn | None = None,
    retain_output: bool = True,
    retain_input: bool = False,
    detach: bool = True,
) -> Iterator[Trace]:
    """Capture and/or edit the outputs of the modules `names` during forward passes in the block.

    `edit(name, output)` may return a replacement tensor (or None to keep the output); for modules
    returning tuples (e.g. decoder layers) the first element is edited and the rest is kept. The
    captured tensors are those after editing. Hooks are removed on exit, also on exceptions.
    """
    record = Trace()
    handles = []

    def make_hook(name: str):
        def hook(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> Any:
            if retain_input and args:
                record.inputs[name] = args[0].detach() if detach else args[0]
            new_output = output
            if edit is not None:
                replacement = edit(name, _main_tensor(output))
                if replacement is not None:
                    new_output = (replacement, *output[1:]) if isinstance(output, tuple) else replacement
            if retain_output:
                main = _main_tensor(new_output)
                record.outputs[name] = main.detach() if detach else main
            return new_output if new_output is not output else None

        return hook

    try:
        for name in names:
            handles.append(get_module(model, name).register_forward_hook(make_hook(name)))
        yield record
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def replace_outputs(model: torch.nn.Module, replacements: dict[str, torch.Tensor]) -> Iterator[Trace]:
    """Overwrite the outputs of named modules with fixed tensors (broadcast to the output's shape)."""

    def edit(name: str, output: torch.Tensor) -> torch.Tensor:
        return replacements[name].to(output.dtype).to(output.device).expand_as(output).clone()

    with trace(model, list(replacements), edit=edit) as record:
        yield record
