"""ROME-style causal tracing, batched: where along (token, layer) does a model recall a fact?

For a fact (prompt, subject, answer) three kinds of run are compared, as in ROME (Meng et al. 2022):
- clean: the prompt as is; `high_score` = p(first answer token) at the last position;
- corrupted: Gaussian noise of std ``noise_scale x sigma`` added to the input embeddings of the subject's
  tokens, with sigma the std of subject-token embeddings; `low_score` = p(answer) averaged over
  `samples` noise draws;
- restored: corrupted, but the clean output of chosen modules copied back at one token; ``scores[t, l]``.

The residual stream ("hidden") is restored at one layer; MLP and attention outputs over a window of
`window` layers centred on ``l`` and clipped at the ends (ROME's convention; window 1 localises sharply).
The noise is drawn once per fact from `seed` and shared by every restoration and the corrupted baseline
(common random numbers, as ROME, which lowers the variance of the differences).

Batching: every restoration setting (kind, token, layer window) of a fact becomes `samples` rows of one
batch, up to `batch_size` rows per forward pass; one forward hook per module copies the clean states in
where a row's mask says so. The clean run is computed once per fact. Tokens before the subject are never
corrupted, so restoring them changes nothing: their scores are the corrupted score, not recomputed. A
restoration at token t cannot change positions before t: with `reuse_prefix` the corrupted run over them
is computed once per t and its key/value cache tiled over the rows, so each pass runs positions t.. only.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from reprokit.errors import ConfigError, DataError
from reprokit.hooks import get_module, trace
from reprokit.lm import LanguageModel, require_lm
from selective_amnesia.layout import KINDS, ModelLayout, find_layout

logger = logging.getLogger(__name__)

__all__ = [
    "Fact",
    "Skipped",
    "TraceResult",
    "TraceRun",
    "TracingConfig",
    "answer_token_id",
    "subject_embedding_std",
    "subject_token_range",
    "trace_fact",
    "trace_facts",
    "window_layers",
]


@dataclass(frozen=True)
class Fact:
    """A subject-relation-answer fact: the model should continue `prompt` with `answer`.

    `subject` must occur in `prompt` (its first occurrence is corrupted); `answer` is the gold
    continuation, with the leading space it has after the prompt (e.g. ``" Paris"``): only its first
    token is scored.
    """

    prompt: str
    subject: str
    answer: str
    id: str = ""


@dataclass(frozen=True)
class TracingConfig:
    """How to trace: ROME's defaults (3 sigma noise, 10 samples, window 10, argmax-known facts)."""

    samples: int = 10
    noise_scale: float = 3.0
    window: int = 10
    seed: int = 1
    #: Rows (restoration settings x samples) per forward pass; lower it if memory is short.
    batch_size: int = 256
    #: Facts whose clean p(answer token) is below this are skipped as not known.
    min_clean_prob: float = 0.0
    #: Skip facts whose answer token is not the model's arg-max next token (ROME's "known" test).
    require_argmax: bool = True
    #: Restorations at token t leave positions before t unchanged: compute that corrupted prefix once
    #: (its key/value cache, tiled over the rows) and run only positions t.. per restoration.
    reuse_prefix: bool = True

    def __post_init__(self) -> None:
        for name in ("samples", "window", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"TracingConfig.{name} must be a positive integer, got {value!r}.")
        if not (math.isfinite(self.noise_scale) and self.noise_scale >= 0):
            raise ConfigError(
                f"TracingConfig.noise_scale must be a finite number >= 0, got {self.noise_scale!r}."
            )
        if not 0.0 <= self.min_clean_prob <= 1.0:
            raise ConfigError(
                f"TracingConfig.min_clean_prob must lie in [0, 1], got {self.min_clean_prob!r}."
            )


@dataclass(frozen=True, eq=False)
class TraceResult:
    """One fact traced for one module kind: ``scores[t, l]`` = p(answer) with (t, l) restored."""

    fact: Fact
    kind: str
    window: int
    tokens: tuple[str, ...]
    #: Half-open token range ``[start, end)`` of the subject in the prompt.
    subject_range: tuple[int, int]
    scores: np.ndarray = field(repr=False)
    low_score: float
    high_score: float
    answer_token: str
    answer_token_id: int
    noise_std: float
    samples: int

    @property
    def num_layers(self) -> int:
        """Number of decoder layers (columns of the grid)."""
        return int(self.scores.shape[1])

    @property
    def indirect_effects(self) -> np.ndarray:
        """``scores - low_score``: what restoring (t, l) brings back of the answer's probability."""
        return self.scores - self.low_score

    @property
    def total_effect(self) -> float:
        """``high_score - low_score``: what the corruption takes away."""
        return self.high_score - self.low_score

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (grids as nested lists)."""
        return {
            "fact": asdict(self.fact),
            "kind": self.kind,
            "window": self.window,
            "tokens": list(self.tokens),
            "subject_range": list(self.subject_range),
            "answer_token": self.answer_token,
            "answer_token_id": self.answer_token_id,
            "noise_std": self.noise_std,
            "samples": self.samples,
            "low_score": self.low_score,
            "high_score": self.high_score,
            "total_effect": self.total_effect,
            "scores": self.scores.tolist(),
            "indirect_effects": self.indirect_effects.tolist(),
        }


@dataclass(frozen=True)
class Skipped:
    """A fact not traced because the model does not know it, with the reason."""

    fact: Fact
    reason: str
    clean_prob: float
    predicted_token: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**asdict(self), "fact": asdict(self.fact)}


@dataclass(frozen=True)
class TraceRun:
    """Every traced fact (one `TraceResult` per fact and kind) and every skipped fact."""

    results: tuple[TraceResult, ...]
    skipped: tuple[Skipped, ...]
    noise_std: float
    config: TracingConfig

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the count of traced and skipped facts."""
        traced = {id(r.fact): r.fact for r in self.results}
        return {
            "config": asdict(self.config),
            "noise_std": self.noise_std,
            "n_traced": len(traced),
            "n_skipped": len(self.skipped),
            "results": [r.to_dict() for r in self.results],
            "skipped": [s.to_dict() for s in self.skipped],
        }


# ------------------------------------------------------------------------------------------ helpers
def window_layers(layer: int, window: int, num_layers: int) -> range:
    """Layers restored for centre `layer`: ROME's ``[layer - window//2, layer + ceil(window/2))``, clipped."""
    return range(max(0, layer - window // 2), min(num_layers, layer - (-window // 2)))


def subject_token_range(lm: LanguageModel, prompt: str, subject: str) -> tuple[int, int]:
    """Half-open range of the tokens of ``lm.encode(prompt)`` that overlap the first `subject` in it."""
    start_char = prompt.find(subject) if subject else -1
    if start_char < 0:
        raise DataError(f"subject {subject!r} does not occur in the prompt {prompt!r}; fix the fact.")
    end_char = start_char + len(subject)
    encoding = lm.tokenizer(prompt, return_offsets_mapping=True)
    offsets = encoding["offset_mapping"]
    inside = [i for i, (a, b) in enumerate(offsets) if b > a and a < end_char and b > start_char]
    if not inside:
        raise DataError(f"no token of the prompt {prompt!r} covers the subject {subject!r}.")
    return inside[0], inside[-1] + 1


def answer_token_id(lm: LanguageModel, prompt: str, answer: str) -> int:
    """Id of the answer's first token as the model would produce it after `prompt`."""
    if not answer:
        raise DataError(f"the answer for the prompt {prompt!r} is empty; give the gold continuation.")
    prompt_ids = lm.encode(prompt)
    joint = lm.encode(prompt + answer)
    if joint[: len(prompt_ids)] == prompt_ids and len(joint) > len(prompt_ids):
        return int(joint[len(prompt_ids)])
    alone = lm.encode(answer, add_special_tokens=False)
    if not alone:
        raise DataError(f"the answer {answer!r} encodes to no tokens.")
    return int(alone[0])


def subject_embedding_std(
    lm: LanguageModel, subjects: Sequence[str], layout: ModelLayout | None = None
) -> float:
    """Std of the input embeddings of all tokens of `subjects` (each encoded alone), ROME's sigma."""
    lm = require_lm(lm)
    layout = layout or find_layout(lm.model)
    embedding = get_module(lm.model, layout.embedding)
    ids = [t for s in subjects for t in lm.encode(s, add_special_tokens=False)]
    if not ids:
        raise DataError("no subject tokens to measure the embedding std on; pass non-empty subjects.")
    with torch.inference_mode():
        vectors = embedding(torch.tensor(ids, device=lm.device))
    return float(vectors.float().std().item())


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------------------ tracing
def trace_fact(
    lm: LanguageModel,
    fact: Fact,
    config: TracingConfig = TracingConfig(),
    *,
    noise_std: float,
    kinds: Sequence[str] = KINDS,
    layout: ModelLayout | None = None,
) -> dict[str, TraceResult] | Skipped:
    """Trace one fact for each of `kinds`; a `Skipped` record if the model does not know the fact."""
    lm = require_lm(lm)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ConfigError(f"unknown module kinds {unknown or list(kinds)}; choose from {', '.join(KINDS)}.")
    layout = layout or find_layout(lm.model)
    model = lm.model
    ids = lm.encode(fact.prompt)
    start, end = subject_token_range(lm, fact.prompt, fact.subject)
    answer = answer_token_id(lm, fact.prompt, fact.answer)
    n_tokens, n_layers = len(ids), layout.num_layers
    input_ids = torch.tensor([ids], device=lm.device)
    names = sorted({layout.module(k, layer) for k in kinds for layer in range(n_layers)})

    with _eval_mode(model):
        with trace(model, [layout.embedding, *names]) as clean:
            logits = model(input_ids=input_ids, use_cache=False).logits[0, -1].float()
        probs = torch.softmax(logits, dim=-1)
        high = float(probs[answer])
        predicted = int(probs.argmax())
        skipped = _not_known(lm, fact, config, high, predicted, answer)
        if skipped is not None:
            return skipped
        clean_states = dict(clean.outputs)
        width = clean_states.pop(layout.embedding).shape[-1]

        settings: list[tuple[str, int, int] | None] = [None]  # None: the corrupted run, nothing restored
        settings += [
            (k, t, layer) for k in kinds for t in range(start, n_tokens) for layer in range(n_layers)
        ]
        generator = torch.Generator().manual_seed(config.seed)
        noise = torch.randn(config.samples, end - start, width, generator=generator)
        noise = (noise * config.noise_scale * noise_std).to(lm.device)
        per_pass = max(1, config.batch_size // config.samples)
        by_token: dict[int, list[int]] = {}  # the settings' indices, grouped by the restored token
        for i, setting in enumerate(settings):
            by_token.setdefault(start if setting is None else setting[1], []).append(i)
        found: dict[int, float] = {}
        for t, indices in by_token.items():
            prefix = (
                _corrupted_prefix(model, layout, input_ids, t, noise, start) if config.reuse_prefix else None
            )
            for first in range(0, len(indices), per_pass):
                part = indices[first : first + per_pass]
                chunk = [settings[i] for i in part]
                values = _restored_scores(
                    model, layout, input_ids, chunk, clean_states, noise, (start, end), answer, config, prefix
                )
                found.update(zip(part, values, strict=True))
        scores = [found[i] for i in range(len(settings))]

    low = scores[0]
    grids = {k: np.full((n_tokens, n_layers), low, dtype=np.float64) for k in kinds}
    for setting, score in zip(settings[1:], scores[1:], strict=True):
        kind, t, layer = setting  # type: ignore[misc]
        grids[kind][t, layer] = score
    tokens = tuple(lm.decode([i], skip_special_tokens=False) for i in ids)
    return {
        k: TraceResult(
            fact=fact,
            kind=k,
            window=1 if k == "hidden" else config.window,
            tokens=tokens,
            subject_range=(start, end),
            scores=grids[k],
            low_score=low,
            high_score=high,
            answer_token=lm.decode([answer], skip_special_tokens=False),
            answer_token_id=answer,
            noise_std=float(noise_std),
            samples=config.samples,
        )
        for k in kinds
    }


def _not_known(
    lm: LanguageModel, fact: Fact, config: TracingConfig, high: float, predicted: int, answer: int
) -> Skipped | None:
    shown = lm.decode([predicted], skip_special_tokens=False)
    reason = None
    if config.require_argmax and predicted != answer:
        reason = (
            f"the model's next token is {shown!r}, not the answer's first token "
            f"{lm.decode([answer], skip_special_tokens=False)!r} (p = {high:.3g})"
        )
    elif high < config.min_clean_prob:
        reason = f"clean p(answer token) = {high:.3g} is below min_clean_prob = {config.min_clean_prob}"
    return None if reason is None else Skipped(fact, reason, high, shown)


def _corrupted_prefix(
    model: torch.nn.Module,
    layout: ModelLayout,
    input_ids: torch.Tensor,
    t: int,
    noise: torch.Tensor,
    subject_start: int,
) -> Any | None:
    """The key/value cache of the corrupted run over positions ``[0, t)`` (one row per noise sample), or
    None when there is no prefix to reuse (t = 0). Restorations at t cannot change these positions."""
    if t == 0:
        return None
    samples = noise.shape[0]
    part = max(0, min(t, subject_start + noise.shape[1]) - subject_start)

    def edit(name: str, output: torch.Tensor) -> torch.Tensor | None:
        output = output.clone()
        output[:, subject_start : subject_start + part] += noise[:, :part].to(output.dtype)
        return output

    with trace(model, [layout.embedding], edit=edit, retain_output=False):
        out = model(input_ids=input_ids[:, :t].expand(samples, -1), use_cache=True)
    return out.cache


def _restored_scores(
    model: torch.nn.Module,
    layout: ModelLayout,
    input_ids: torch.Tensor,
    chunk: Sequence[tuple[str, int, int] | None],
    clean_states: dict[str, torch.Tensor],
    noise: torch.Tensor,
    subject: tuple[int, int],
    answer: int,
    config: TracingConfig,
    prefix: Any | None = None,
) -> list[float]:
    """Mean p(answer) over the noise samples for each restoration setting of `chunk`, in one pass.

    With a `prefix` cache (the corrupted run up to the chunk's token t, every setting restoring at t),
    only positions t.. are run. Rows are sample-major (row = sample x settings + setting), the order in
    which the cache's rows are repeated.
    """
    samples, n_tokens, k = config.samples, input_ids.shape[1], len(chunk)
    offset = 0
    if prefix is not None:
        offset = prefix.get_seq_length()
        prefix = copy.deepcopy(prefix)
        prefix.batch_repeat_interleave(k)
    width, rows = n_tokens - offset, k * samples
    masks: dict[str, torch.Tensor] = {}
    for i, setting in enumerate(chunk):
        if setting is None:
            continue
        kind, t, centre = setting
        layers = [centre] if kind == "hidden" else window_layers(centre, config.window, layout.num_layers)
        for layer in layers:
            name = layout.module(kind, layer)
            if name not in masks:
                masks[name] = torch.zeros(samples, k, width, dtype=torch.bool)
            masks[name][:, i, t - offset] = True
    masks = {name: mask.view(rows, width).to(input_ids.device)[..., None] for name, mask in masks.items()}
    clean = {name: clean_states[name][:, offset:] for name in masks}
    start, end = subject
    lo, hi = max(start, offset), end  # the noisy positions that this pass runs
    tiled = noise[:, lo - start : hi - start].repeat_interleave(k, dim=0)

    def edit(name: str, output: torch.Tensor) -> torch.Tensor | None:
        if name == layout.embedding:
            if hi <= lo:
                return None
            output = output.clone()
            output[:, lo - offset : hi - offset] += tiled.to(output.dtype)
            return output
        return torch.where(masks[name], clean[name].to(output.dtype), output)

    ids = input_ids[:, offset:].expand(rows, -1)
    kwargs: dict[str, Any] = {"use_cache": False}
    if prefix is not None:
        positions = torch.arange(offset, n_tokens, device=input_ids.device).expand(rows, -1)
        mask = torch.ones(rows, n_tokens, dtype=torch.long, device=input_ids.device)
        kwargs = {
            "cache": prefix,
            "position_ids": positions,
            "attention_mask": mask,
            "use_cache": True,
        }
    with trace(model, [layout.embedding, *masks], edit=edit, retain_output=False):
        logits = model(input_ids=ids, **kwargs).logits[:, -1].float()
    probs = torch.softmax(logits, dim=-1)[:, answer].view(samples, k).mean(dim=0)
    return [float(p) for p in probs.cpu()]


def trace_facts(
    lm: LanguageModel,
    facts: Sequence[Fact],
    config: TracingConfig = TracingConfig(),
    *,
    kinds: Sequence[str] = KINDS,
    noise_std: float | None = None,
) -> TraceRun:
    """Trace every fact; sigma is measured over the facts' subjects unless `noise_std` is given."""
    lm = require_lm(lm)
    if not facts:
        raise DataError("no facts to trace; pass at least one Fact.")
    layout = find_layout(lm.model)
    if noise_std is None:
        noise_std = subject_embedding_std(lm, [f.subject for f in facts], layout)
    results: list[TraceResult] = []
    skipped: list[Skipped] = []
    for fact in facts:
        outcome = trace_fact(lm, fact, config, noise_std=noise_std, kinds=kinds, layout=layout)
        if isinstance(outcome, Skipped):
            logger.info("skipped %r: %s", fact.prompt, outcome.reason)
            skipped.append(outcome)
        else:
            results.extend(outcome.values())
    logger.info("traced %d facts, skipped %d as not known", len(facts) - len(skipped), len(skipped))
    return TraceRun(tuple(results), tuple(skipped), float(noise_std), config)
