"""Load a causal LM and its tokenizer from a hub id or a local folder, safely.

Safetensors only (a pickle checkpoint is refused, never unpickled), remote code never enabled, dtype
and device resolved from "auto", and errors that say what to do when a model is not available offline.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


class ModelNotFoundError(FileNotFoundError):
    """The model is neither a local folder nor available in the local Hugging Face cache."""


class UnsafeCheckpointError(ValueError):
    """The checkpoint is stored as a pickle, which we refuse to load."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit device that is unavailable raises."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; pass --device cpu.")
    return dev


def resolve_dtype(dtype: str | torch.dtype = "auto", device: str | torch.device = "cpu") -> torch.dtype:
    """'auto' is bfloat16 on a GPU that supports it and float32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        dev = resolve_device(device)
        if dev.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16.")
    return _DTYPES[dtype]


def _looks_like_path(name: str) -> bool:
    if name.startswith((".", "/", "~")) or Path(name).exists():
        return True
    return os.sep in name and name.count("/") != 1  # hub ids are "owner/name"


def _check_local_folder(path: Path) -> None:
    if not path.exists():
        raise ModelNotFoundError(
            f"model path {str(path)!r} does not exist; pass an existing folder or a hub id."
        )
    if path.is_file():
        if path.suffix in PICKLE_SUFFIXES:
            raise UnsafeCheckpointError(
                f"{path} is a pickle checkpoint; we only load safetensors. Convert it once in a trusted "
                "environment (load it and call model.save_pretrained(folder, safe_serialization=True))."
            )
        raise ModelNotFoundError(
            f"{path} is a file; pass the folder that holds config.json and *.safetensors."
        )
    if not (path / "config.json").exists():
        raise ModelNotFoundError(
            f"{path} holds no model (no config.json); pass a folder written by save_pretrained."
        )
    if not any(path.glob("*.safetensors")):
        pickles = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise UnsafeCheckpointError(
                f"{path} stores its weights as pickle ({', '.join(sorted(pickles))}); "
                "we only load safetensors. Convert once in a trusted environment with "
                "save_pretrained(..., safe_serialization=True)."
            )
        raise ModelNotFoundError(f"{path} has a config.json but no *.safetensors weights.")


def load_causal_lm(
    name_or_path: str | Path,
    *,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device = "auto",
    revision: str | None = None,
    tokenizer: str | Path | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM (eval mode) and its tokenizer; safetensors only, never remote code.

    `name_or_path` is a local folder or a hub id (resolved from the local cache when offline).
    `tokenizer` loads the tokenizer from elsewhere. A tokenizer without a pad token gets eos as pad.
    """
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    name = str(name_or_path)
    is_local = isinstance(name_or_path, Path) or _looks_like_path(name)
    if is_local:
        _check_local_folder(Path(name).expanduser())
        name = str(Path(name).expanduser())
    kwargs = {"revision": revision, "trust_remote_code": False}
    try:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, use_safetensors=True, **kwargs)
        tok = AutoTokenizer.from_pretrained(str(tokenizer) if tokenizer else name, **kwargs)
    except OSError as err:
        if is_local:
            raise ModelNotFoundError(f"could not load a model from {name}: {err}") from err
        text = str(err)
        if "safetensors" in text.lower() and (
            "not found" in text.lower() or "does not appear" in text.lower()
        ):
            raise UnsafeCheckpointError(
                f"{name!r} has no safetensors weights; we refuse pickle checkpoints. Pick a revision with "
                "safetensors or convert the weights in a trusted environment."
            ) from err
        raise ModelNotFoundError(
            f"{name!r} not found locally; pass a local path or set HF_HOME to a cache that holds it "
            f"(offline={os.environ.get('HF_HUB_OFFLINE', '0')}). Underlying error: {text.splitlines()[0]}"
        ) from err
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    model.to(dev)
    model.eval()
    logger.info("loaded %s (%s, %s)", name, torch_dtype, dev)
    return model, tok
