"""The paper scale's source: a SmolLM source model, the SmolLM corpus and the paper's zero-shot tasks.

The paper does not name its source; a 1.7B llama with SmolLM's tokenizer and layout fits every number it
gives (see the brief), so the config defaults to ``HuggingFaceTB/SmolLM-1.7B`` and says so. Training text is
streamed from the corpus with `datasets` into one token stream of at most ``train_tokens`` tokens (held in
memory as int32), evaluation runs lm-evaluation-harness on an exported copy of each model.
"""

from __future__ import annotations

import logging
import tempfile
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reprokit.errors import DataError
from reprokit.reproduce import Requirement

if TYPE_CHECKING:
    from torch import nn

    from reprokit.lm import LanguageModel
    from reprokit.reproduce import RunContext

__all__ = ["PaperSource", "TinySource", "paper_requirements"]

logger = logging.getLogger(__name__)


def paper_requirements(section: Any) -> list[Requirement]:
    """The source model and the corpus, looked up before any work starts."""
    return [
        Requirement("model", section.source_model, why="the source model that is pruned while it trains"),
        Requirement("dataset", section.dataset, why="pretraining text for both phases (SmolLM-Corpus)"),
    ]


class TinySource:
    """The tiny scale's world, tokenizer, source and in-process evaluation (an `experiments.Source`)."""

    def __init__(self, setup: Any, eval_batch_size: int = 64) -> None:
        from efficientllm.experiments import MCSuite

        self.setup = setup
        self.suite = MCSuite(setup.world.tasks, setup.world.heldout_texts, batch_size=eval_batch_size)

    @property
    def tokenizer(self) -> Any:
        """The world's byte-level BPE."""
        return self.setup.tokenizer

    @property
    def train_data(self) -> np.ndarray:
        """The training corpus as one token stream."""
        return self.setup.stream

    @property
    def task_names(self) -> tuple[str, ...]:
        """The world's tasks, the knowledge test last."""
        return tuple(self.setup.world.tasks)

    def source(self) -> nn.Module:
        """A fresh copy of the pretrained source."""
        return self.setup.source()

    def source_config(self) -> Any:
        """The source's transformers config."""
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.setup.source_folder)

    def calibration(self, n_sequences: int, seq_len: int) -> list:
        """Blocks of training text for the one-shot baseline."""
        return self.setup.calibration(n_sequences, seq_len)

    def evaluate(self, lm: LanguageModel) -> dict[str, float]:
        """Accuracy per task and held-out perplexity."""
        return self.suite.evaluate(lm)


class PaperSource:
    """The paper's source model, streamed corpus and lm-evaluation-harness tasks (an `experiments.Source`)."""

    def __init__(self, section: Any, ctx: RunContext) -> None:
        self.section = section
        self.ctx = ctx

    @cached_property
    def tokenizer(self) -> Any:
        """The source model's tokenizer."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.section.source_model, trust_remote_code=False)

    def source(self) -> nn.Module:
        """The source model in float32 master weights (mixed precision comes from accelerate)."""
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(
            self.section.source_model, dtype="float32", trust_remote_code=False
        )

    def source_config(self) -> Any:
        """The source's transformers config (no weights loaded)."""
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.section.source_model, trust_remote_code=False)

    @property
    def task_names(self) -> tuple[str, ...]:
        """The paper's tasks (Table 2), MMLU last."""
        return tuple(self.section.tasks)

    def _documents(self, skip: int, limit_tokens: int) -> np.ndarray:
        from datasets import load_dataset

        eos = self.tokenizer.eos_token_id
        per_config = limit_tokens // max(1, len(self.section.dataset_configs))
        chunks: list[np.ndarray] = []
        for name in self.section.dataset_configs:
            data = load_dataset(self.section.dataset, name, split="train", streaming=True)
            taken = 0
            for i, row in enumerate(data):
                if i < skip:
                    continue
                text = row.get(self.section.text_column)
                if not text:
                    continue
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
                chunks.append(np.asarray(ids, dtype=np.int32))
                taken += len(ids)
                if taken >= per_config:
                    break
        if not chunks:
            raise DataError(
                f"{self.section.dataset} {self.section.dataset_configs}: no text in column "
                f"{self.section.text_column!r}; set [paper] text_column."
            )
        return np.concatenate(chunks)

    @cached_property
    def train_data(self) -> np.ndarray:
        """Up to ``train_tokens`` tokens of the corpus mixture (documents after the held-out ones)."""
        self.ctx.log("streaming %s tokens of %s", f"{self.section.train_tokens:,}", self.section.dataset)
        return self._documents(self.section.heldout_documents, self.section.train_tokens)

    def calibration(self, n_sequences: int, seq_len: int) -> list:
        """The first blocks of the training stream (the one-shot baseline's calibration set)."""
        import torch

        stream = self.train_data[: n_sequences * seq_len].astype(np.int64)
        return [torch.from_numpy(b.reshape(1, -1)) for b in stream.reshape(-1, seq_len)]

    def evaluate(self, lm: LanguageModel) -> dict[str, float]:
        """The paper's zero-shot tasks through lm-evaluation-harness (acc_norm where Table 2 uses it)."""
        from efficientllm.evaluation import lm_eval_tasks
        from efficientllm.export import export_model

        with tempfile.TemporaryDirectory(prefix="efficientllm-eval-") as tmp:
            folder = Path(tmp) / "model"
            export_model(lm, None, folder, dtype="bfloat16", verify=False)
            results = lm_eval_tasks(
                folder, self.section.tasks, batch_size="auto", device=self.ctx.device, dtype="bfloat16"
            )
        out: dict[str, float] = {}
        for task in self.section.tasks:
            metrics = results.get(task, {})
            metric = "acc_norm" if task in self.section.acc_norm_tasks and "acc_norm" in metrics else "acc"
            out[task] = float(metrics.get(metric, float("nan")))
        out["perplexity"] = float(
            "nan"
        )  # the paper reports none; lm-eval's wikitext could be added as a task
        return out
