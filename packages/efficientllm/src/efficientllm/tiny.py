"""The tiny-scale setup: the world's corpus and tasks, a byte-level BPE and a SmolLM-shaped source llama.

The paper prunes a pretrained SmolLM; here a llama of about a million parameters with SmolLM's layout
(tied embeddings, as many key/value heads as query heads unless set otherwise) is pretrained from scratch on
the tiny world's corpus by the same `prune_train` loop the arms use (no pruning). The source is cached on
disk under a hash of everything it depends on, written atomically, so a second run costs nothing and an
interrupted one leaves no half model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from efficientllm.training import PruneTrainConfig, pack_blocks, prune_train
from efficientllm.world import TinyWorld, TinyWorldConfig, make_tiny_world
from reprokit.errors import ConfigError

if TYPE_CHECKING:
    from transformers import LlamaConfig, PreTrainedModel, PreTrainedTokenizerFast

__all__ = ["TinyConfig", "TinySetup"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TinyConfig:
    """The tiny world, the source model's shape and its pretraining (same optimizer as every arm)."""

    world: TinyWorldConfig = field(default_factory=TinyWorldConfig)
    vocab_size: int = 512
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_key_value_heads: int = 4
    intermediate_size: int = 512
    tie_word_embeddings: bool = True
    pretrain: PruneTrainConfig = field(
        default_factory=lambda: PruneTrainConfig(
            steps=500, batch_size=8, seq_len=128, lr=2e-3, warmup_steps=25
        )
    )

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_key_value_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TinyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"TinyConfig.hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}"
            )
        if self.num_heads % self.num_key_value_heads:
            raise ConfigError(
                f"TinyConfig.num_heads {self.num_heads} must be a multiple of num_key_value_heads "
                f"{self.num_key_value_heads}"
            )

    def model_config(self, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
        """The source's transformers config for `tokenizer` (SmolLM layout: llama, tied embeddings)."""
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_key_value_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=max(256, self.pretrain.seq_len),
            tie_word_embeddings=self.tie_word_embeddings,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )


class TinySetup:
    """One seed's world, tokenizer, token blocks and pretrained source (lazily built; the source cached)."""

    def __init__(self, config: TinyConfig, *, seed: int = 0, cache_dir: str | Path | None = None) -> None:
        self.config = config
        self.seed = seed
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(tempfile.mkdtemp())

    @cached_property
    def world(self) -> TinyWorld:
        """The corpus and tasks of this seed (the world's seed is offset by the run seed)."""
        cfg = self.config.world
        return make_tiny_world(dataclasses.replace(cfg, seed=cfg.seed + self.seed))

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        """A byte-level BPE trained on the training texts (held-out and task texts never seen)."""
        from reprokit.tokenizer import train_tokenizer

        return train_tokenizer(self.world.train_texts, vocab_size=self.config.vocab_size)

    @cached_property
    def stream(self) -> np.ndarray:
        """The training corpus as one token stream (each text followed by eos), as `prune_train` packs it."""
        return pack_blocks(self.tokenizer, list(self.world.train_texts), 1).reshape(-1)

    def calibration(self, n_sequences: int, seq_len: int) -> list:
        """`n_sequences` blocks of `seq_len` tokens from the training stream (the one-shot baseline's set)."""
        import torch

        blocks = self.stream[: (len(self.stream) // seq_len) * seq_len].reshape(-1, seq_len)
        rng = np.random.default_rng([self.seed, 17])
        picked = rng.choice(len(blocks), size=min(n_sequences, len(blocks)), replace=False)
        return [torch.from_numpy(blocks[i : i + 1].copy()) for i in sorted(picked)]

    def _source_parts(self) -> dict:
        """What the pretrained source depends on: config, seed, tokenizer, code and library versions."""
        import torch
        import transformers

        import efficientllm
        from reprokit.results import code_fingerprint
        from reprokit.tokenizer import tokenizer_fingerprint

        return {
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
            "tokenizer": tokenizer_fingerprint(self.tokenizer),
            "code": code_fingerprint(efficientllm),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }

    @cached_property
    def source_folder(self) -> Path:
        """The pretrained source's folder (safetensors + tokenizer), trained now unless cached."""
        from transformers import AutoModelForCausalLM

        from reprokit.results import ResumeStore, atomic_directory, atomic_write_json

        key = ResumeStore(self.cache_dir / "efficientllm").path(self._source_parts()).stem
        folder = self.cache_dir / "efficientllm" / f"source-{key}"
        if (folder / "pretrain.json").is_file():
            logger.info("source model loaded from the cache: %s", folder)
            return folder
        import torch

        cfg = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1000 + self.seed)
            model = AutoModelForCausalLM.from_config(cfg.model_config(self.tokenizer))
        work = folder.with_name(folder.name + ".work")  # the resumable training checkpoint
        train = dataclasses.replace(cfg.pretrain, seed=1000 + self.seed)
        result = prune_train(model, self.tokenizer, self.stream, train, prune=None, output_dir=work)
        with atomic_directory(folder, replace=True) as tmp:
            result.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            summary = result.to_dict()
            summary["source_params"] = result.final_params
            atomic_write_json(Path(tmp) / "pretrain.json", summary)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        return folder

    def source(self) -> PreTrainedModel:
        """A fresh copy of the pretrained source (each arm prunes or trains its own copy)."""
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.source_folder, dtype="float32")
        return model.eval()

    @cached_property
    def pretrain_summary(self) -> dict:
        """The source's pretraining record (loss history, tokens, wall time)."""
        return json.loads((self.source_folder / "pretrain.json").read_text())
