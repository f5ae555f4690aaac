"""Unlearning losses on output tokens, and the adaptive retain weight α of Selective Amnesia.

A batch is ``input_ids``, ``attention_mask`` and ``labels`` (the output token ids, -100 over the input and
the padding), left- or right-padded: position ids follow the attention mask, so a row scores the same
alone or padded in a batch. Every loss reads only output tokens, with the usual one-position shift.

- `output_nll`: token-mean cross-entropy over all output tokens of the batch (``CrossEntropyLoss()`` over
  the flattened batch, as the released code and HF models compute it).
- `per_example_nll` / `sequence_logprob`: per-row token-mean NLL / summed log-likelihood.
- `kl_to_reference`: KL(reference ‖ model), token-mean over output tokens. open-unlearning's
  ``compute_kl_divergence`` has the same direction (``kl_div(log p_model, log p_ref, log_target=True)``) but
  averages over every position, prompt and padding included.
- `npo_loss`: -(2/β)·mean log σ(-β·(log π_θ(y|x) - log π_ref(y|x))), sequence log-likelihoods of the
  output tokens (open-unlearning's NPO = ``compute_dpo_loss`` with only a losing side).

The methods (`forget_term` + weight × `retain_term`):
gradient_ascent -NLL(forget); gradient_difference -NLL(forget) + w·NLL(retain); kl -NLL(forget) +
w·KL(ref ‖ model) on retain; npo NPO(forget) + w·NLL(retain); constrained -NLL(forget) + α·NLL(retain) with
α from `AlphaSchedule`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from reprokit.errors import ConfigError

if TYPE_CHECKING:
    from selective_amnesia.unlearning import UnlearnConfig

__all__ = [
    "IGNORE_INDEX",
    "AlphaSchedule",
    "forget_term",
    "forward_logits",
    "kl_to_reference",
    "npo_loss",
    "output_nll",
    "per_example_nll",
    "retain_term",
    "sequence_logprob",
]

#: Label value of positions that carry no loss (the input side and padding).
IGNORE_INDEX = -100

Batch = Mapping[str, torch.Tensor]


# ----------------------------------------------------------------------------------- building blocks
def forward_logits(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Logits of `batch` with position ids that follow the attention mask (padding-independent)."""
    mask = batch["attention_mask"]
    position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=position_ids, use_cache=False)
    return out.logits


def _output_positions(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float32 logits that predict an output token ([N, vocab]), those tokens ([N]) and their rows ([N])."""
    targets = labels[:, 1:].to(logits.device)
    scored = targets != IGNORE_INDEX
    rows = scored.nonzero()[:, 0]
    return logits[:, :-1][scored].float(), targets[scored], rows


def nll_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token-mean cross-entropy of the output tokens of the whole batch."""
    scored, targets, _ = _output_positions(logits, labels)
    return F.cross_entropy(scored, targets)


def logprob_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: summed log-likelihood of the output tokens, and how many there are."""
    scored, targets, rows = _output_positions(logits, labels)
    token_lp = -F.cross_entropy(scored, targets, reduction="none")
    n = labels.shape[0]
    total = torch.zeros(n, dtype=token_lp.dtype, device=token_lp.device).index_add(0, rows, token_lp)
    count = torch.zeros(n, dtype=token_lp.dtype, device=token_lp.device).index_add(
        0, rows, torch.ones_like(token_lp)
    )
    return total, count


def kl_from_logits(
    reference_logits: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """KL(reference ‖ model) of the next-token distributions, token-mean over output positions."""
    model_lp = F.log_softmax(_output_positions(logits, labels)[0], dim=-1)
    ref_lp = F.log_softmax(_output_positions(reference_logits, labels)[0], dim=-1)
    return F.kl_div(model_lp, ref_lp, reduction="batchmean", log_target=True)


def npo_from_logprobs(logprob: torch.Tensor, reference_logprob: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO: -(2/β)·mean log σ(-β·(log π_θ - log π_ref)); at π_θ = π_ref it is (2/β)·log 2."""
    return -(2.0 / beta) * F.logsigmoid(-beta * (logprob - reference_logprob)).mean()


# --------------------------------------------------------------------------------- public losses
def output_nll(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Token-mean NLL over all output tokens of `batch` (what gradient ascent raises)."""
    return nll_from_logits(forward_logits(model, batch), batch["labels"])


def per_example_nll(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Token-mean NLL of each row's output tokens ([batch]; NaN for a row without output tokens)."""
    total, count = logprob_from_logits(forward_logits(model, batch), batch["labels"])
    return -total / count


def sequence_logprob(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Summed log-likelihood of each row's output tokens ([batch])."""
    return logprob_from_logits(forward_logits(model, batch), batch["labels"])[0]


def kl_to_reference(model: torch.nn.Module, reference: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """KL(reference ‖ model) over the output tokens of `batch`; no gradient flows into `reference`."""
    with torch.no_grad():
        reference_logits = forward_logits(reference, batch)
    return kl_from_logits(reference_logits, forward_logits(model, batch), batch["labels"])


def npo_loss(model: torch.nn.Module, reference: torch.nn.Module, batch: Batch, beta: float) -> torch.Tensor:
    """NPO forget loss of `batch` against the frozen `reference` (Zhang et al. 2024)."""
    with torch.no_grad():
        reference_lp = sequence_logprob(reference, batch)
    return npo_from_logprobs(sequence_logprob(model, batch), reference_lp, beta)


# ------------------------------------------------------------------------------------ method terms
def forget_term(
    method: str,
    model: torch.nn.Module,
    batch: Batch,
    *,
    reference: torch.nn.Module | None = None,
    npo_beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The forget part of `method`'s loss on `batch`, and the forget NLL (for logging; one forward pass)."""
    logits = forward_logits(model, batch)
    nll = nll_from_logits(logits, batch["labels"])
    if method != "npo":
        return -nll, nll
    if reference is None:
        raise ConfigError("method 'npo' needs a reference model; pass reference= or let unlearn copy one.")
    with torch.no_grad():
        reference_lp = logprob_from_logits(forward_logits(reference, batch), batch["labels"])[0]
    logprob = logprob_from_logits(logits, batch["labels"])[0]
    return npo_from_logprobs(logprob, reference_lp, npo_beta), nll


def retain_term(
    method: str, model: torch.nn.Module, batch: Batch, *, reference: torch.nn.Module | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (unweighted) retain part of `method`'s loss, and the retain NLL: KL for ``kl``, else the NLL."""
    logits = forward_logits(model, batch)
    nll = nll_from_logits(logits, batch["labels"])
    if method != "kl":
        return nll, nll
    if reference is None:
        raise ConfigError("method 'kl' needs a reference model; pass reference= or let unlearn copy one.")
    with torch.no_grad():
        reference_logits = forward_logits(reference, batch)
    return kl_from_logits(reference_logits, logits, batch["labels"]), nll


# ---------------------------------------------------------------------------------- alpha schedule
class AlphaSchedule:
    """The retain weight α of the constrained method, per micro-batch (pure python).

    Epoch 0: α = `alpha_min` (1.2 in the code), and training batches accumulate the reference retain loss.
    Epochs ≥ 1: if the batch's retain loss exceeds the reference by ΔL > 0, γ = a·b^ΔL + c (rounded to one
    decimal when `round_gamma`, as the code does with python's ``round``) and α = clip(γ, alpha_min,
    alpha_max); otherwise α = alpha_min. `reference` ``"mean"`` is the mean of the epoch-0 batch losses;
    ``"per_example"`` is the released code's quirk: their sum divided by the number of retain *examples*.

    Only training batches (``training=True``) update the reference. The released code also fed the
    evaluation batches of epoch 0 into it (its ``compute_loss`` serves both); that is not offered here.
    A ``"fixed"`` schedule returns `fixed` always.
    """

    def __init__(
        self,
        *,
        a: float = 0.3,
        b: float = 6.0,
        c: float = 0.8,
        alpha_min: float = 1.2,
        alpha_max: float = 2.8,
        round_gamma: bool = True,
        reference: str = "mean",
        fixed: float | None = None,
    ) -> None:
        if reference not in ("mean", "per_example"):
            raise ConfigError(f"unknown alpha reference {reference!r}; choose mean, per_example.")
        if alpha_min > alpha_max:
            raise ConfigError(
                f"alpha bounds reversed: alpha_min {alpha_min} > alpha_max {alpha_max}; swap them."
            )
        self.a, self.b, self.c = a, b, c
        self.alpha_min, self.alpha_max = alpha_min, alpha_max
        self.round_gamma, self.reference_kind, self.fixed = round_gamma, reference, fixed
        self.loss_sum, self.n_batches, self.n_examples = 0.0, 0, 0

    @classmethod
    def from_config(cls, config: UnlearnConfig) -> AlphaSchedule:
        """The schedule an `UnlearnConfig` describes."""
        return cls(
            a=config.alpha_a,
            b=config.alpha_b,
            c=config.alpha_c,
            alpha_min=config.alpha_min,
            alpha_max=config.alpha_max,
            round_gamma=config.alpha_round,
            reference=config.alpha_reference,
            fixed=config.alpha_fixed if config.alpha_schedule == "fixed" else None,
        )

    @property
    def reference(self) -> float | None:
        """The reference retain loss accumulated in epoch 0 (None before any retain batch)."""
        if self.n_batches == 0:
            return None
        divisor = self.n_batches if self.reference_kind == "mean" else self.n_examples
        return self.loss_sum / divisor

    def gamma(self, delta: float) -> float:
        """γ = a·b^ΔL + c, rounded to one decimal if asked (inf when b^ΔL overflows)."""
        try:
            value = self.a * self.b**delta + self.c
        except OverflowError:
            return math.inf
        return round(value, 1) if self.round_gamma and math.isfinite(value) else value

    def __call__(self, retain_loss: float, *, epoch: int, n_retain: int = 1, training: bool = True) -> float:
        """α for a micro-batch with retain loss `retain_loss` over `n_retain` retain rows in `epoch`."""
        if self.fixed is not None:
            return self.fixed
        if epoch == 0:
            if training:
                self.loss_sum += float(retain_loss)
                self.n_batches += 1
                self.n_examples += int(n_retain)
            return self.alpha_min
        reference = self.reference
        if reference is None or not retain_loss > reference:
            return self.alpha_min
        return min(max(self.gamma(retain_loss - reference), self.alpha_min), self.alpha_max)
