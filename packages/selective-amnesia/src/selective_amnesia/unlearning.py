"""Stage 2 of Selective Amnesia: unlearn a forget set in chosen parameters, with a `transformers.Trainer`.

`unlearn(lm, data, config, output_dir=...)` freezes everything but the chosen parameters (`params`), mixes
forget rows (flag -1) and retain rows (flag +1) into one shuffled dataset as the released code does, and
trains with `UnlearningTrainer`, a `Trainer` whose `compute_loss` splits each micro-batch by flag into two
forward passes and combines them as the method says (`losses`). Because it is a plain `Trainer`,
accelerate and DeepSpeed (ZeRO-1/2) launch it unchanged.

What follows the released code (``LAB-FLAIR/Constrained-Unlearning-for-LLM``, ``unlearn.py``): MLPs of
layers 0-5, 8 epochs, lr 1.5e-5 with linear decay, batch 12 x accumulation 10, AdamW, gradient clipping
1.0, the input through the chat template with the loss on output tokens only, left padding, the α
schedule, an evaluation of the method's own loss every 4 optimizer steps and the lowest one kept (the
evaluation rows in order, forget rows first, in batches of `batch_size`).

Where it differs, on purpose:
- model selection is kept in memory: a CPU copy of the *trainable* parameters at the best evaluation,
  not a full checkpoint on disk every 4 steps (for OLMo-7B 1.6 GB instead of 13.8 GB per save). Only the
  chosen model is written, to ``output_dir/best/`` (safetensors + tokenizer). This assumes unsharded
  parameters (single device, ``device_map``, DDP, ZeRO-1/2), not ZeRO-3 or FSDP;
- the last optimizer step is evaluated too (transformers 5's step-based evaluation does this);
- position ids follow the attention mask, so a left-padded row trains as it is scored alone;
- the α reference counts training batches only, and is by default a mean over batches (`alpha_reference`
  ``"per_example"`` restores the code's division by the number of retain rows); α_max is the paper's 2.8
  (`RELEASED_CODE` has the code's 2.3);
- without eval data, the evaluation rows are a seeded `eval_fraction` sample of each split that stays in
  training, as the code samples them from the training data (`eval_holdout=True` removes them instead);
  given eval data is not appended to the training data (the code appends ``--validation_dir``);
- a NaN or infinite training loss stops the run (the code trains on) and keeps the best model so far.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import re
import resource
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

from reprokit.errors import ConfigError, DataError, OutputPathError
from reprokit.lm import LanguageModel, require_lm
from reprokit.results import atomic_directory, atomic_write_json
from reprokit.seed import derive_seed
from selective_amnesia.losses import IGNORE_INDEX, AlphaSchedule, forget_term, retain_term
from selective_amnesia.params import TrainableShare, freeze, select_parameters

logger = logging.getLogger(__name__)

__all__ = [
    "FORGET",
    "LR_SCHEDULES",
    "METHODS",
    "MODULE_KINDS",
    "PAPER",
    "RELEASED_CODE",
    "RETAIN",
    "AlphaSchedule",
    "LossParts",
    "TrainableShare",
    "UnlearnConfig",
    "UnlearnResult",
    "UnlearningCollator",
    "UnlearningTrainer",
    "encode_rows",
    "freeze",
    "select_parameters",
    "unlearn",
]

METHODS: tuple[str, ...] = ("constrained", "gradient_ascent", "gradient_difference", "kl", "npo")
MODULE_KINDS: tuple[str, ...] = ("mlp", "attn", "all")
ALPHA_SCHEDULES: tuple[str, ...] = ("adaptive", "fixed")
ALPHA_REFERENCES: tuple[str, ...] = ("mean", "per_example")
LR_SCHEDULES: tuple[str, ...] = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
)
#: Methods that compare against a frozen copy of the starting model.
REFERENCE_METHODS: tuple[str, ...] = ("kl", "npo")
#: Row flags in the mixed dataset, as in the released code.
FORGET, RETAIN = -1, 1


# ------------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class UnlearnConfig:
    """Everything an unlearning run depends on; the defaults are the released code's (paper's α_max).

    Parameters: the `module_kind` (mlp, attn, all) modules of `layers` (None = every layer), or every
    parameter whose name `param_pattern` (a regex) matches. Loss: `method` (see `METHODS`); `retain_weight`
    weighs the retain term of gradient_difference, kl and npo; constrained weighs it by α
    (`alpha_schedule` adaptive: a·b^ΔL + c clipped to [alpha_min, alpha_max], see `AlphaSchedule`; fixed:
    `alpha_fixed`). Data: the input through the tokenizer's chat template (`chat_template`) or raw, the
    output (+ EOS if `add_eos`) scored, `max_length` tokens at most. Selection: the method's loss on the
    evaluation rows every `eval_steps` optimizer steps, lowest kept (`select_best`). `bf16` turns on bf16
    autocast (the released code instead loaded the weights in bf16: pass such a model to get that).
    """

    method: str = "constrained"
    layers: tuple[int, ...] | None = (0, 1, 2, 3, 4, 5)
    module_kind: str = "mlp"
    param_pattern: str | None = None
    epochs: float = 8
    lr: float = 1.5e-5
    lr_schedule: str = "linear"
    warmup_steps: int = 0
    batch_size: int = 12
    grad_accum: int = 10
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    alpha_schedule: str = "adaptive"
    alpha_a: float = 0.3
    alpha_b: float = 6.0
    alpha_c: float = 0.8
    alpha_min: float = 1.2
    alpha_max: float = 2.8
    alpha_fixed: float = 1.2
    alpha_round: bool = True
    alpha_reference: str = "mean"
    retain_weight: float = 1.0
    npo_beta: float = 0.1
    chat_template: bool = True
    add_eos: bool = True
    max_length: int = 512
    eval_fraction: float = 0.1
    eval_holdout: bool = False
    eval_steps: int = 4
    select_best: bool = True
    seed: int = 0
    bf16: bool = False
    logging_steps: int = 1
    show_progress: bool = False

    def __post_init__(self) -> None:
        _choice("method", self.method, METHODS)
        _choice("module kind", self.module_kind, MODULE_KINDS)
        _choice("alpha schedule", self.alpha_schedule, ALPHA_SCHEDULES)
        _choice("alpha reference", self.alpha_reference, ALPHA_REFERENCES)
        _choice("lr schedule", self.lr_schedule, LR_SCHEDULES)
        if self.layers is not None:
            layers = tuple(self.layers) if isinstance(self.layers, (list, tuple, range)) else None
            if not layers or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
                raise ConfigError(
                    f"layers must be a non-empty tuple of layer indices (or None for every layer), got "
                    f"{self.layers!r}."
                )
            negative = [i for i in layers if i < 0]
            if negative:
                raise ConfigError(f"negative layer index {negative[0]} in layers; layers count from 0.")
            object.__setattr__(self, "layers", tuple(sorted(set(layers))))
        if self.param_pattern is not None:
            if not isinstance(self.param_pattern, str) or not self.param_pattern:
                raise ConfigError("param_pattern must be a non-empty regular expression (or None).")
            try:
                re.compile(self.param_pattern)
            except re.error as err:
                raise ConfigError(
                    f"param_pattern {self.param_pattern!r} is not a valid regex: {err}."
                ) from err
        _positive("epochs", self.epochs)
        _positive("lr", self.lr)
        _positive_int("batch_size", self.batch_size)
        _positive_int("grad_accum", self.grad_accum)
        _positive_int("eval_steps", self.eval_steps)
        _positive_int("logging_steps", self.logging_steps)
        _non_negative_int("warmup_steps", self.warmup_steps)
        _non_negative_int("seed", self.seed)
        _non_negative("weight_decay", self.weight_decay)
        _non_negative("max_grad_norm", self.max_grad_norm, "0 turns clipping off")
        _non_negative("retain_weight", self.retain_weight)
        _non_negative("alpha_fixed", self.alpha_fixed)
        _non_negative("alpha_a", self.alpha_a)
        _positive("alpha_b", self.alpha_b)
        _positive("alpha_min", self.alpha_min)
        _positive("alpha_max", self.alpha_max)
        _positive("npo_beta", self.npo_beta)
        if not math.isfinite(self.alpha_c):
            raise ConfigError(f"alpha_c must be a finite number, got {self.alpha_c!r}.")
        if self.alpha_min > self.alpha_max:
            raise ConfigError(
                f"alpha bounds reversed: alpha_min {self.alpha_min} > alpha_max {self.alpha_max}; swap them "
                "(the paper uses 1.2 and 2.8, the released code 1.2 and 2.3)."
            )
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 2:
            raise ConfigError(
                f"max_length must be an int >= 2 (input plus output tokens), got {self.max_length!r}."
            )
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(
                "eval_fraction must be in [0, 1) (the share of each split evaluated for model selection), "
                "got "
                f"{self.eval_fraction!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON types."""
        return dataclasses.asdict(self)


def _choice(what: str, value: object, options: Sequence[str]) -> None:
    if value not in options:
        raise ConfigError(f"unknown {what} {value!r}; choose {', '.join(options)}")


def _number(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value!r}.")
    return float(value)


def _positive(what: str, value: object) -> None:
    if not _number(what, value) > 0:
        raise ConfigError(f"{what} must be > 0, got {value!r}.")


def _non_negative(what: str, value: object, note: str = "") -> None:
    if _number(what, value) < 0:
        raise ConfigError(f"{what} must be >= 0{f' ({note})' if note else ''}, got {value!r}.")


def _positive_int(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive int, got {value!r}.")


def _non_negative_int(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{what} must be an int >= 0, got {value!r}.")


#: The paper's setting (α_max 2.8, α reference a mean over epoch-0 batches).
PAPER = UnlearnConfig()
#: The released code's setting: α_max 2.3 and the per-example α reference.
RELEASED_CODE = UnlearnConfig(alpha_max=2.3, alpha_reference="per_example")


# -------------------------------------------------------------------------------------------- data
def encode_rows(
    lm: LanguageModel, rows: Sequence[Any], flag: int, config: UnlearnConfig, *, what: str = "rows"
) -> list[dict[str, Any]]:
    """Token ids and labels of each row: the input (chat template or raw) then the output (+ EOS).

    Labels are -100 over the input; only output tokens carry loss. With the chat template the input is
    ``apply_chat_template([{"role": "user", "content": input}], add_generation_prompt=True)``; raw input
    is tokenized with the tokenizer's special tokens (its BOS), as the official scorer prompts. Rows longer
    than `max_length` lose the end of their output.
    """
    tok = lm.tokenizer
    if config.chat_template and not lm.chat_template:
        raise ConfigError(
            f"{lm.name}'s tokenizer has no chat template, but chat_template=True formats inputs with it; set "
            "chat_template=False to train on the raw input, or give the tokenizer a template."
        )
    eos = [tok.eos_token_id if tok.eos_token_id is not None else min(lm.eos_ids)] if config.add_eos else []
    out, truncated = [], 0
    for i, row in enumerate(rows):
        text_in, text_out = getattr(row, "input", None), getattr(row, "output", None)
        if not isinstance(text_in, str) or not isinstance(text_out, str):
            raise DataError(
                f"{what} {i} is a {type(row).__name__}, not a row with string input and output; pass "
                "selective_amnesia.records.Row objects."
            )
        if config.chat_template:
            prompt = tok.apply_chat_template(
                [{"role": "user", "content": text_in}], add_generation_prompt=True, tokenize=False
            )
            prompt_ids = list(tok(prompt, add_special_tokens=False)["input_ids"])
        else:
            prompt_ids = list(tok(text_in)["input_ids"])
        output_ids = [*tok(text_out, add_special_tokens=False)["input_ids"], *eos]
        row_id = getattr(row, "id", i)
        if not output_ids:
            raise DataError(
                f"{what} {i} (id {row_id!r}) has an empty output and add_eos=False, so it has no token to "
                "learn or unlearn; drop the row or set add_eos=True."
            )
        if len(prompt_ids) >= config.max_length:
            raise DataError(
                f"{what} {i} (id {row_id!r}) has {len(prompt_ids)} input tokens, which leaves no room for "
                f"its output within max_length={config.max_length}; raise max_length."
            )
        ids = [*prompt_ids, *output_ids]
        if len(ids) > config.max_length:
            ids, truncated = ids[: config.max_length], truncated + 1
        labels = [IGNORE_INDEX] * len(prompt_ids) + ids[len(prompt_ids) :]
        out.append({"input_ids": ids, "labels": labels, "flag": flag})
    if truncated:
        logger.warning(
            "%d of %d %s are longer than max_length=%d tokens; the end of their output was cut off.",
            truncated,
            len(out),
            what,
            config.max_length,
        )
    return out


class _Rows(Dataset):
    """A list of encoded rows as a torch dataset (the Trainer shuffles it)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


@dataclass(frozen=True)
class UnlearningCollator:
    """Left-pads `input_ids` (with `pad_id`), `attention_mask` (0) and `labels` (-100); stacks the flags."""

    pad_id: int

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        for row, f in enumerate(features):
            start = width - len(f["input_ids"])
            ids[row, start:] = torch.tensor(f["input_ids"], dtype=torch.long)
            mask[row, start:] = 1
            labels[row, start:] = torch.tensor(f["labels"], dtype=torch.long)
        flag = torch.tensor([int(f["flag"]) for f in features], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "flag": flag}


def _subset(batch: dict[str, torch.Tensor], rows: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """The rows of a left-padded batch where `rows` is true, without columns that are padding in all."""
    if not bool(rows.any()):
        return None
    part = {k: batch[k][rows] for k in ("input_ids", "attention_mask", "labels")}
    used = part["attention_mask"].any(dim=0).nonzero()
    start = int(used[0]) if len(used) else 0
    return {k: v[:, start:] for k, v in part.items()}


# ----------------------------------------------------------------------------------------- trainer
@dataclass(frozen=True)
class LossParts:
    """One micro-batch: the joint loss, forget and retain NLL, the retain weight applied (α or w)."""

    loss: torch.Tensor
    forget_nll: float | None
    retain_nll: float | None
    weight: float | None


class _Means:
    """Running means of the logged quantities between two log calls."""

    KEYS = ("loss", "forget_loss", "retain_loss", "alpha")

    def __init__(self) -> None:
        self.sums = dict.fromkeys(self.KEYS, 0.0)
        self.counts = dict.fromkeys(self.KEYS, 0)

    def add(self, parts: LossParts) -> None:
        values = (float(parts.loss.detach()), parts.forget_nll, parts.retain_nll, parts.weight)
        for key, value in zip(self.KEYS, values, strict=True):
            if value is not None:
                self.sums[key] += value
                self.counts[key] += 1

    def pop(self) -> dict[str, float | None]:
        out = {k: (self.sums[k] / self.counts[k] if self.counts[k] else None) for k in self.KEYS}
        self.__init__()
        return out


class _Snapshot:
    """CPU copies of the trainable parameters at the best evaluation so far (the start until then)."""

    def __init__(self, params: dict[str, torch.nn.Parameter]) -> None:
        self.params = params
        self.step, self.loss = 0, math.inf
        self.state = self._copy()

    def _copy(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().to("cpu", copy=True) for name, p in self.params.items()}

    def offer(self, step: int, loss: float) -> bool:
        """Keep the current parameters if `loss` is finite and lower than the best so far."""
        if not math.isfinite(loss) or loss >= self.loss:
            return False
        self.step, self.loss, self.state = step, loss, self._copy()
        return True

    @torch.no_grad()
    def restore(self) -> None:
        """Copy the kept parameters back into the model."""
        for name, param in self.params.items():
            param.copy_(self.state[name].to(param.device))


class _Control(TrainerCallback):
    """Tracks the epoch index, stops after a divergence, and keeps the best evaluation's parameters."""

    def __init__(self, trainer: UnlearningTrainer) -> None:
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.trainer.epoch_index = round(state.epoch or 0.0)

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer.diverged_at_step is not None:
            control.should_evaluate = control.should_save = False
            control.should_training_stop = True

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        snapshot = self.trainer.snapshot
        loss = (metrics or {}).get("eval_loss")
        if snapshot is not None and loss is not None and self.trainer.diverged_at_step is None:
            snapshot.offer(state.global_step, float(loss))


class UnlearningTrainer(Trainer):
    """A `Trainer` whose loss is an unlearning method's, on micro-batches of flagged forget/retain rows.

    `compute_loss` splits the batch by ``flag`` (-1 forget, +1 retain) into two forward passes, as the
    released ``AscentPlusDescentTrainer``; a micro-batch without rows of one kind drops that term.
    Evaluation runs the same loss without gradients (and without touching the α reference). A NaN or
    infinite training loss stops training; `diverged_at_step` says at which optimizer step.
    """

    #: The loss is a per-micro-batch mean: the Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args: Any,
        unlearn_config: UnlearnConfig,
        reference_model: torch.nn.Module | None = None,
        trainable: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.unlearn_config = unlearn_config
        self.alpha_schedule = AlphaSchedule.from_config(unlearn_config)
        if unlearn_config.method in REFERENCE_METHODS and reference_model is None:
            raise ConfigError(f"method {unlearn_config.method!r} needs a reference model.")
        if reference_model is not None:
            reference_model.requires_grad_(False).eval()
            if self.is_deepspeed_enabled:
                reference_model = self.accelerator.prepare_model(reference_model, evaluation_mode=True)
            else:
                reference_model = reference_model.to(self.args.device)
        self.reference_model = reference_model
        self.epoch_index = 0
        self.diverged_at_step: int | None = None
        self.diverged_loss: float | None = None
        self.history: list[dict[str, Any]] = []
        self.eval_history: list[dict[str, Any]] = []
        self._means = {True: _Means(), False: _Means()}
        params = dict(self.model.named_parameters())
        self.trainable_params = {name: params[name] for name in trainable}
        self.snapshot = _Snapshot(self.trainable_params) if trainable else None
        if not unlearn_config.show_progress:
            self.remove_callback(PrinterCallback)  # it prints every log line when tqdm is off
        self.add_callback(_Control(self))

    def loss_parts(
        self, model: torch.nn.Module, inputs: dict[str, torch.Tensor], *, training: bool
    ) -> LossParts:
        """The method's loss on one micro-batch, with its parts for logging."""
        config, flag = self.unlearn_config, inputs["flag"]
        forget, retain = _subset(inputs, flag == FORGET), _subset(inputs, flag == RETAIN)
        terms, forget_nll, retain_nll, weight = [], None, None, None
        if forget is not None:
            term, nll = forget_term(
                config.method, model, forget, reference=self.reference_model, npo_beta=config.npo_beta
            )
            terms.append(term)
            forget_nll = float(nll.detach())
        if retain is not None and config.method != "gradient_ascent":
            term, nll = retain_term(config.method, model, retain, reference=self.reference_model)
            retain_nll = float(nll.detach())
            if config.method == "constrained":
                n_retain = int(retain["input_ids"].shape[0])
                weight = self.alpha_schedule(
                    retain_nll, epoch=self.epoch_index, n_retain=n_retain, training=training
                )
            else:
                weight = config.retain_weight
            terms.append(weight * term)
        loss = sum(terms[1:], terms[0]) if terms else self._zero_loss()
        return LossParts(loss, forget_nll, retain_nll, weight)

    def _zero_loss(self) -> torch.Tensor:
        """A zero loss tied to every trainable parameter (so distributed gradient hooks still fire)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            return torch.zeros((), device=self.args.device)
        return torch.stack([p.sum() for p in params]).sum() * 0.0

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The method's joint loss (a micro-batch mean; `num_items_in_batch` is not used)."""
        training = model.training
        parts = self.loss_parts(model, inputs, training=training)
        loss = parts.loss
        if training and not bool(torch.isfinite(loss.detach())):
            loss = self._diverge(float(loss.detach()))
        else:
            self._means[training].add(parts)
        return (loss, None) if return_outputs else loss

    def _diverge(self, value: float) -> torch.Tensor:
        """Record a non-finite loss, ask the loop to stop, and return a loss that changes nothing."""
        if self.diverged_at_step is None:
            self.diverged_at_step, self.diverged_loss = self.state.global_step + 1, value
            logger.warning(
                "unlearning diverged: the training loss is %s at optimizer step %d (epoch %d); training "
                "stops here and the best model so far is kept. Try a lower learning rate (now %g) or "
                "max_grad_norm.",
                value,
                self.diverged_at_step,
                self.epoch_index,
                self.unlearn_config.lr,
            )
        self.control.should_training_stop = True
        return torch.zeros((), device=self.args.device, requires_grad=True)

    def prediction_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, None, None]:
        """Evaluation: the method's loss on the batch, no logits (model selection needs only the loss)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the means of forget/retain loss and α since the last log, and keep the history."""
        logs = dict(logs)
        if "eval_loss" in logs:
            means = self._means[False].pop()
            logs.update({f"eval_{k}": v for k, v in means.items() if k != "loss" and v is not None})
            entry = {
                "step": self.state.global_step,
                "epoch": self.state.epoch,
                "eval_loss": logs["eval_loss"],
            }
            entry.update({f"eval_{k}": means[k] for k in ("forget_loss", "retain_loss", "alpha")})
            self.eval_history.append(entry)
        elif "loss" in logs and (means := self._means[True].pop())["loss"] is not None:
            # (a step whose only micro-batch diverged has nothing to log)
            logs.update({k: v for k, v in means.items() if v is not None})
            self.history.append(
                {
                    "step": self.state.global_step,
                    "epoch": self.state.epoch,
                    "loss": means["loss"],
                    "forget_loss": means["forget_loss"],
                    "retain_loss": means["retain_loss"],
                    "alpha": means["alpha"],
                    "lr": logs.get("learning_rate"),
                }
            )
        super().log(logs, start_time)


# ------------------------------------------------------------------------------------------ result
@dataclass
class UnlearnResult:
    """What an unlearning run returns (and writes to ``output_dir/unlearn.json``).

    `lm` wraps the trained model (the same object that was passed in, now holding the chosen weights) in
    eval mode. `best_step` is the optimizer step of the kept weights (0 = the starting weights, kept when
    training diverged before any evaluation). `peak_memory_bytes` is ``torch.cuda.max_memory_allocated``
    during the run on CUDA, else the process's peak resident set size since it started (an upper bound).
    `wall_time_s` covers the whole call: encoding, training, evaluation and saving. `history` has one
    entry per logging step (step, epoch, loss, forget_loss and retain_loss = output-token NLLs, alpha =
    the retain weight applied: α for constrained, retain_weight otherwise, lr), means over its
    micro-batches; `eval_history` one per evaluation (eval_loss and the same parts).
    """

    lm: LanguageModel = field(repr=False)
    config: UnlearnConfig
    history: list[dict[str, Any]] = field(repr=False)
    eval_history: list[dict[str, Any]] = field(repr=False)
    best_step: int
    best_eval_loss: float | None
    steps: int
    trainable: TrainableShare
    parameters: tuple[str, ...] = field(repr=False)
    wall_time_s: float
    peak_memory_bytes: int
    diverged_at_step: int | None
    checkpoint: Path
    n_train: dict[str, int]
    n_eval: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, as plain JSON types (the model is at `checkpoint`)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "lm"}
        out["model"] = self.lm.name
        out["config"] = self.config.to_dict()
        out["trainable"] = dataclasses.asdict(self.trainable)
        out["checkpoint"] = str(self.checkpoint)
        return out


# ---------------------------------------------------------------------------------------- unlearn
def unlearn(
    lm: LanguageModel,
    data: Any,
    config: UnlearnConfig,
    *,
    output_dir: str | Path,
    eval_data: Any = None,
    reference: LanguageModel | None = None,
    callbacks: Iterable[TrainerCallback] = (),
) -> UnlearnResult:
    """Unlearn `data.forget` while keeping `data.retain`, training only the parameters `config` selects.

    `data` (and `eval_data`) is any object with ``.forget`` and ``.retain`` sequences of
    `selective_amnesia.records.Row` (e.g. `selective_amnesia.data.UnlearningData`). `lm.model` is trained
    in place. The weights with the lowest evaluation loss are loaded at the end and saved to
    ``output_dir/best/`` (safetensors + tokenizer); ``output_dir/unlearn.json`` records the result and the
    config. `reference` is the frozen model of the kl and npo methods (default: a deep copy of the
    starting model; a given one is frozen and moved to the training device in place). `callbacks` are
    extra `transformers.TrainerCallback`s. Like any `Trainer`, it seeds python, numpy and torch with
    `config.seed`.
    """
    start = time.perf_counter()
    lm = require_lm(lm, "unlearn: lm")
    if not isinstance(config, UnlearnConfig):
        raise TypeError(f"unlearn: config must be an UnlearnConfig, got {type(config).__name__}.")
    forget, retain = _splits(data, "data")
    if not forget:
        raise DataError("unlearn: data.forget is empty; there is nothing to unlearn.")
    if not retain and config.method not in ("gradient_ascent",):
        logger.warning(
            "unlearn: data.retain is empty, so method %r trains on the forget term only.", config.method
        )
    if eval_data is not None:
        eval_forget, eval_retain = _splits(eval_data, "eval_data")
        train_forget, train_retain = forget, retain
    else:
        (train_forget, eval_forget), (train_retain, eval_retain) = (
            _eval_sample(rows, config, name) for rows, name in ((forget, "forget"), (retain, "retain"))
        )
        if not train_forget:
            raise DataError(
                f"unlearn: holding out eval_fraction={config.eval_fraction} of {len(forget)} forget rows "
                "leaves none to train on; set eval_holdout=False or pass eval_data."
            )
    if config.select_best and not (eval_forget or eval_retain):
        raise ConfigError(
            "unlearn: select_best needs evaluation rows; pass eval_data, set eval_fraction > 0, or set "
            "select_best=False to keep the final model."
        )
    model = lm.model
    names = select_parameters(model, config)
    train_items = [
        *encode_rows(lm, train_forget, FORGET, config, what="forget rows"),
        *encode_rows(lm, train_retain, RETAIN, config, what="retain rows"),
    ]
    eval_items = [
        *encode_rows(lm, eval_forget, FORGET, config, what="eval forget rows"),
        *encode_rows(lm, eval_retain, RETAIN, config, what="eval retain rows"),
    ]
    ref_model = _reference(lm, reference, config)
    output_dir = _output_dir(output_dir)  # only once the inputs are known to be good
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    share = freeze(model, names)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    args = _training_args(config, output_dir, evaluate=config.select_best, cuda=cuda)
    trainer = UnlearningTrainer(
        model=model,
        args=args,
        data_collator=UnlearningCollator(lm.pad_id),
        train_dataset=_Rows(train_items),
        eval_dataset=_Rows(eval_items) if config.select_best else None,
        processing_class=lm.tokenizer,
        callbacks=list(callbacks),
        unlearn_config=config,
        reference_model=ref_model,
        trainable=names,
    )
    try:
        trainer.train()
    finally:
        for name, param in model.named_parameters():
            param.requires_grad_(flags.get(name, param.requires_grad))
    snapshot, diverged, steps = trainer.snapshot, trainer.diverged_at_step, trainer.state.global_step
    history, eval_history = trainer.history, trainer.eval_history
    del trainer, ref_model  # free the reference copy before saving
    if snapshot is None:  # select_parameters never returns an empty list
        raise RuntimeError("unlearn: no trainable parameters were tracked")
    if config.select_best or diverged is not None:
        snapshot.restore()
        best_step = snapshot.step
        best_loss = snapshot.loss if math.isfinite(snapshot.loss) else None
        if best_step == 0:
            logger.warning(
                "unlearn: no evaluation %s, so the starting weights are kept.",
                "before the divergence" if diverged is not None else "had a finite loss",
            )
    else:
        best_step, best_loss = steps, None
    model.eval()
    checkpoint = _save(lm, output_dir / "best")
    _remove_trainer_checkpoints(output_dir)
    result = UnlearnResult(
        lm=LanguageModel(model, lm.tokenizer, name=lm.name),
        config=config,
        history=history,
        eval_history=eval_history,
        best_step=best_step,
        best_eval_loss=best_loss,
        steps=steps,
        trainable=share,
        parameters=tuple(names),
        wall_time_s=time.perf_counter() - start,
        peak_memory_bytes=_peak_memory(cuda),
        diverged_at_step=diverged,
        checkpoint=checkpoint,
        n_train={"forget": len(train_forget), "retain": len(train_retain)},
        n_eval={"forget": len(eval_forget), "retain": len(eval_retain)},
    )
    atomic_write_json(output_dir / "unlearn.json", result.to_dict())
    return result


def _output_dir(path: str | Path) -> Path:
    """The output folder, created; an `OutputPathError` if that is not possible."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputPathError(
            f"unlearn: cannot create the output folder {folder}: {err}; pick another."
        ) from err
    if not folder.is_dir():
        raise OutputPathError(f"unlearn: output_dir {folder} is not a folder; pick another path.")
    return folder


def _splits(data: Any, what: str) -> tuple[list[Any], list[Any]]:
    """`data.forget` and `data.retain` as lists; a `DataError` if `data` has no such fields."""
    try:
        forget, retain = list(data.forget), list(data.retain)
    except (AttributeError, TypeError) as err:
        raise DataError(
            f"unlearn: {what} must have .forget and .retain sequences of Row (e.g. "
            f"selective_amnesia.data.UnlearningData), got {type(data).__name__}."
        ) from err
    return forget, retain


def _eval_sample(rows: list[Any], config: UnlearnConfig, name: str) -> tuple[list[Any], list[Any]]:
    """(training rows, evaluation rows): a seeded `eval_fraction` sample, held out only if asked."""
    if not rows or config.eval_fraction == 0 or not config.select_best:
        return rows, []
    k = min(len(rows), max(1, round(config.eval_fraction * len(rows))))
    rng = np.random.default_rng(derive_seed(config.seed, "eval", name))
    chosen = sorted(rng.choice(len(rows), size=k, replace=False).tolist())
    picked = [rows[i] for i in chosen]
    if not config.eval_holdout:
        return rows, picked
    keep = set(range(len(rows))) - set(chosen)
    return [rows[i] for i in sorted(keep)], picked


def _reference(
    lm: LanguageModel, reference: LanguageModel | None, config: UnlearnConfig
) -> torch.nn.Module | None:
    """The frozen reference model of kl and npo: `reference` or a copy of the starting model."""
    if config.method not in REFERENCE_METHODS:
        return None
    if reference is None:
        return copy.deepcopy(lm.model)
    reference = require_lm(reference, "unlearn: reference")
    if reference.model is lm.model:
        raise ConfigError(
            "unlearn: the reference is the model being trained, so it would move with it; pass a separate "
            "copy, or leave reference=None to have one made."
        )
    rows, ref_rows = (m.get_input_embeddings().weight.shape[0] for m in (lm.model, reference.model))
    if rows != ref_rows:
        raise ConfigError(
            f"unlearn: the reference model has {ref_rows} embedding rows but the model has {rows}; the "
            "reference must share the model's tokenizer (by default a copy of the starting model is used)."
        )
    return reference.model


def _training_args(
    config: UnlearnConfig, output_dir: Path, *, evaluate: bool, cuda: bool
) -> TrainingArguments:
    """The `TrainingArguments` of a run: no checkpoints on disk, no reporting, seeded data order."""
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_schedule,
        warmup_steps=config.warmup_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=config.eval_steps if evaluate else None,
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        report_to="none",
        disable_tqdm=not config.show_progress,
        remove_unused_columns=False,
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.bf16,
        use_cpu=not cuda,
        dataloader_pin_memory=cuda,
    )


def _save(lm: LanguageModel, folder: Path) -> Path:
    """Model (safetensors) and tokenizer, written to a temporary folder and renamed into place."""
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # transformers shows a bar per shard written
    try:
        with atomic_directory(folder, replace=True) as tmp:
            lm.model.save_pretrained(tmp)
            lm.tokenizer.save_pretrained(tmp)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return folder


def _remove_trainer_checkpoints(output_dir: Path) -> None:
    """Delete ``checkpoint-*`` folders a Trainer may have left (this module saves none itself)."""
    for folder in output_dir.glob("checkpoint-*"):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def _peak_memory(cuda: bool) -> int:
    """CUDA peak allocated bytes of this run, or the process's peak RSS in bytes on CPU."""
    if cuda:
        return int(torch.cuda.max_memory_allocated())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
