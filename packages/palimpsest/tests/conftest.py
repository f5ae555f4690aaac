"""Session fixtures: one tiny Alice, a reference and a null model, trained once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from palimpsest.tiny import TinyConfig, TinySetup

TEST_CONFIG = TinyConfig(
    n_people=160,
    n_people_other=60,
    vocab_size=400,
    alice_recipe="llama-0.3m",
    batch_size=8,
    lr=5e-3,
    retrain_fractions=(0.1,),
    references=(("same-recipe", "llama-0.3m", "same"),),
    nulls=(("null-llama", "llama-0.3m"),),
)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinySetup:
    """A small trained setup (about 220 documents, 0.3M-parameter llama models)."""
    return TinySetup(TEST_CONFIG, cache_dir=tmp_path_factory.mktemp("reprokit-cache"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models train several times faster on one thread when the CPU is shared (no OpenMP spinning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
