"""Tiny llama-family models (llama, SmolLM-shaped llama, qwen2, mistral, olmo2) from transformers configs.

Weights are redrawn at a scale where every tensor matters (unit-scale logits, norm weights away from 1,
non-zero biases), so equalities checked at 1e-5 are not met by accident.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Callable, Iterator

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Olmo2Config,
    PreTrainedModel,
    Qwen2Config,
)

VOCAB = 100

#: name -> (config class, shape, tied); "gqa" archs have 4 query heads over 2 key/value heads.
SHAPES: dict[str, tuple[type, dict, bool]] = {
    "llama": (
        LlamaConfig,
        {"hidden_size": 48, "num_hidden_layers": 3, "intermediate_size": 96, "num_key_value_heads": 2},
        False,
    ),
    "smollm": (
        LlamaConfig,
        {"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64, "num_key_value_heads": 4},
        True,
    ),
    "qwen2": (
        Qwen2Config,
        {"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64, "num_key_value_heads": 2},
        True,
    ),
    "mistral": (
        MistralConfig,
        {"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64, "num_key_value_heads": 4},
        False,
    ),
    "olmo2": (
        Olmo2Config,
        {"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64, "num_key_value_heads": 2},
        False,
    ),
}
ARCHS = tuple(SHAPES)


def randomize(model: PreTrainedModel, seed: int = 0) -> PreTrainedModel:
    """Redraw every parameter: matrices ~ N(0, 1/fan_in), norms ~ 1 + N(0, 0.3²), biases ~ N(0, 0.1²)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if param.dim() == 2:
                param.copy_(noise / param.shape[1] ** 0.5)
            elif "norm" in name:
                param.copy_(1.0 + 0.3 * noise)
            else:
                param.copy_(0.1 * noise)
    return model


def build_tiny(arch: str, *, tied: bool | None = None, seed: int = 0, **overrides) -> PreTrainedModel:
    """A fresh tiny model of `arch` (a key of SHAPES) in float32 eval mode; `tied` overrides the default."""
    config_class, shape, default_tied = SHAPES[arch]
    kwargs = {
        "vocab_size": VOCAB,
        "num_attention_heads": 4,
        "max_position_embeddings": 64,
        "tie_word_embeddings": default_tied if tied is None else tied,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": None,
        **shape,
        **overrides,
    }
    config = config_class(**kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return randomize(model, seed).eval()


def build_unsupported(arch: str) -> PreTrainedModel:
    """A tiny model of a layout efficientllm refuses (gpt2, gpt_neox)."""
    ids = {"bos_token_id": 0, "eos_token_id": 0}
    if arch == "gpt2":
        config = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4, **ids)
    else:
        config = GPTNeoXConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            **ids,
        )
    return AutoModelForCausalLM.from_config(config)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models run many times faster on one thread when the CPU is shared (no OpenMP spinning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny() -> Callable[..., PreTrainedModel]:
    """`build_tiny` as a fixture: ``tiny("qwen2", tied=False)``."""
    return build_tiny


@pytest.fixture
def tokens() -> torch.Tensor:
    """A fixed batch of token ids, shape (3, 12)."""
    return torch.randint(0, VOCAB, (3, 12), generator=torch.Generator().manual_seed(1))
