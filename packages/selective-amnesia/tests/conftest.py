"""Tiny untrained models of several architectures and one tokenizer, built once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, Olmo2Config

from reprokit.lm import LanguageModel
from reprokit.tokenizer import train_tokenizer
from reprokit.zoo import Recipe, build_model

CORPUS = [
    f"{name} was born in {city}. {name} works as a {job}. The capital of {country} is {city}."
    for name in ("Alice Smith", "Bob Jones", "Carla Diaz", "Dmitri Ivanov")
    for city, country in (("Paris", "France"), ("Oslo", "Norway"), ("Riga", "Latvia"))
    for job in ("baker", "pilot")
] * 4

#: Architectures built from the reprokit zoo (4 layers, hidden 32) and directly from a transformers config.
ZOO = ("llama", "gpt_neox", "olmo", "qwen2", "gemma2")
ALL = (*ZOO, "olmo2", "gpt2")


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(CORPUS, vocab_size=300)


def _build(arch: str, tokenizer) -> torch.nn.Module:
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if arch == "gpt2":
            config = GPT2Config(
                vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=4, n_head=2, **ids
            )
            return GPT2LMHeadModel(config).eval()
        if arch == "olmo2":
            config = Olmo2Config(
                vocab_size=len(tokenizer),
                hidden_size=32,
                num_hidden_layers=4,
                num_attention_heads=2,
                intermediate_size=64,
                pad_token_id=tokenizer.pad_token_id,
                **ids,
            )
            return AutoModelForCausalLM.from_config(config).eval()
    return build_model(Recipe(f"{arch}-test", arch, 32, 4, 2, 64, 128), tokenizer, seed=0).eval()


def _sharpen(model: torch.nn.Module) -> torch.nn.Module:
    """Scale the weight matrices up so that an untrained model's next-token distribution is peaked and
    corrupting or restoring a state moves p(answer) measurably (at the default init it stays uniform)."""
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.mul_(8.0)
    return model


@pytest.fixture(scope="session")
def lms(tokenizer) -> dict[str, LanguageModel]:
    return {arch: LanguageModel(_sharpen(_build(arch, tokenizer)), tokenizer) for arch in ALL}
