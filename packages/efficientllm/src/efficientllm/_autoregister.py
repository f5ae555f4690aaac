"""Register the per-layer `efficientllm` model type with transformers as soon as transformers is imported.

``import efficientllm`` must be all `from_pretrained` needs to load a per-layer checkpoint, but importing
transformers (and torch) takes seconds, which a command's ``--help`` should not pay. So the registration
runs now when transformers is already loaded, and otherwise right after its first import, through a
one-shot import hook that wraps the transformers loader and removes itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from types import ModuleType

__all__ = ["register_with_transformers"]

_TARGET = "transformers"


class _AfterTransformers(importlib.abc.MetaPathFinder):
    """Finds nothing itself: on the import of transformers, wraps its loader to register afterwards."""

    def find_spec(self, fullname: str, path: object = None, target: ModuleType | None = None):
        if fullname != _TARGET:
            return None
        _remove_hook()
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            exec_module(module)
            loader.exec_module = exec_module  # type: ignore[method-assign]  # one shot
            import efficientllm.modeling  # noqa: F401  registers the classes

        loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterTransformers)]


def register_with_transformers() -> None:
    """Register `efficientllm.modeling`'s classes now if transformers is loaded, else when it is."""
    if _TARGET in sys.modules:
        import efficientllm.modeling  # noqa: F401

        return
    if not any(isinstance(f, _AfterTransformers) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterTransformers())
