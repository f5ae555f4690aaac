"""The observational reshuffle test: is a text likelier under Alice's model than under reshuffled copies?

From the checkpoint before Alice's last phase, the phase is retrained once in the original order and K
times in fresh random orders (one identical pipeline). Each candidate scores the suspect text (summed
continuation log-probability, averaged over samples); under H0 the K+1 scores are exchangeable, so:

- exact rank p = (1 + #{k : s_k >= s_0}) / (K + 1): the primary p (`pvalue`), valid for any score
  distribution, but never below 1/(K+1) (`min_pvalue`): K = 19 copies give at best 0.05;
- t-corrected p = P(T_{K-1} >= (s_0 - mean) / (sd_ddof1 * sqrt(1 + 1/K))) (`t_corrected_pvalue`):
  calibrated only when the scores are Gaussian; anti-conservative for heavy-tailed scores (about 0.02
  false positives at alpha 0.01 with t(3) scores, K = 9 or 19);
- the paper's Gaussian approximation p = P(Z >= (s_0 - mean) / sd_ddof0) (`normal_pvalue`):
  anti-conservative for small K even with Gaussian scores.

The standardised score ignores how much text was scored: once the text is long, the spread of the K
copies' scores comes from the copies themselves (which documents each saw last), not from the text, so
the t and Gaussian p-values stop falling with more text; only more retrains (K) lower the rank p's floor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
from transformers import PreTrainedTokenizerBase

from palimpsest.transcript import same_tokenizer
from reprokit.errors import ConfigError, DataError
from reprokit.lm import LanguageModel, require_lm
from reprokit.scoring import score_texts, score_token_ids
from reprokit.stats import t_logsf

logger = logging.getLogger(__name__)

__all__ = [
    "ReshuffleResult",
    "ReshuffleScores",
    "reshuffle_pvalue_arrays",
    "reshuffle_pvalues",
    "reshuffle_test",
    "retrain_last_phase",
    "score_candidates",
    "text_scores",
]

_LN10 = math.log(10.0)


@dataclass(frozen=True)
class ReshuffleResult:
    """The reshuffle test's p-values, primary first: the exact rank p, then the t-corrected and the paper's.

    `pvalue` (exact rank) is valid whatever the score distribution and never below `min_pvalue` = 1/(K+1);
    `t_corrected_pvalue` is calibrated for Gaussian scores only (anti-conservative for heavy tails);
    `normal_pvalue` is the paper's Gaussian approximation (anti-conservative for small K).
    """

    k: int
    pvalue: float
    log10_pvalue: float
    min_pvalue: float
    t_corrected_pvalue: float
    log10_t_corrected_pvalue: float
    normal_pvalue: float
    log10_normal_pvalue: float
    t_statistic: float
    score_original: float
    scores_reshuffled: tuple[float, ...] = field(repr=False)
    n_texts: int = 0
    n_tokens: int = 0

    @property
    def rank_pvalue(self) -> float:
        """Alias of `pvalue` (the exact rank p), kept for callers of the first version."""
        return self.pvalue

    @property
    def t_pvalue(self) -> float:
        """Alias of `t_corrected_pvalue`, kept for callers of the first version."""
        return self.t_corrected_pvalue

    @property
    def log10_t_pvalue(self) -> float:
        """Alias of `log10_t_corrected_pvalue`, kept for callers of the first version."""
        return self.log10_t_corrected_pvalue

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the primary (exact rank) p first."""
        return asdict(self)


def reshuffle_pvalue_arrays(
    original: Sequence[float] | np.ndarray, reshuffled: Sequence[Sequence[float]] | np.ndarray
) -> dict[str, np.ndarray]:
    """Vectorised p-values of R reshuffle tests at once: `original` (R,) against `reshuffled` (R, K).

    Returns arrays of shape (R,): `pvalue` (exact rank), `t_statistic`, `log10_t_corrected_pvalue` and
    `log10_normal_pvalue` (NaN where K < 2 or the copies have no spread). Used by `reshuffle_pvalues`
    and by calibration studies over many simulated nulls.
    """
    s = np.asarray(reshuffled, dtype=np.float64)
    s = s.reshape(1, -1) if s.ndim == 1 else s
    s0 = np.asarray(original, dtype=np.float64).reshape(-1)
    if s.ndim != 2 or s0.size != s.shape[0]:
        raise DataError(
            f"one original score per row of reshuffled scores is needed; got {s0.size} original scores "
            f"for reshuffled scores of shape {s.shape}."
        )
    n_tests, k = s.shape
    if k < 1:
        raise DataError(
            "the reshuffle test needs K >= 1 reshuffled copies; retrain the last phase at least once."
        )
    if not (np.isfinite(s0).all() and np.isfinite(s).all()):
        raise DataError("reshuffle scores must be finite; check the scored texts are not empty.")
    rank_p = (1.0 + np.count_nonzero(s >= s0[:, None], axis=1)) / (k + 1.0)
    t = np.full(n_tests, math.nan)
    log_t = np.full(n_tests, math.nan)
    log_n = np.full(n_tests, math.nan)
    if k >= 2:
        sd1 = s.std(axis=1, ddof=1)
        ok = sd1 > 0
        if not ok.all():
            logger.warning("reshuffle test: copies with no spread; their t and normal p-values are NaN")
        diff = s0[ok] - s[ok].mean(axis=1)
        t[ok] = diff / (sd1[ok] * math.sqrt(1.0 + 1.0 / k))
        log_n[ok] = scipy.stats.norm.logsf(diff / s[ok].std(axis=1, ddof=0))
        log_t[ok] = scipy.stats.t.logsf(t[ok], k - 1)
        far = ok & (log_t < -600.0)  # scipy's logsf underflows there: integrate the tail instead
        log_t[far] = [t_logsf(float(x), k - 1) for x in t[far]]
    else:
        logger.warning("reshuffle test: K=%d copies give no spread; t and normal p-values are NaN", k)
    return {
        "pvalue": rank_p,
        "t_statistic": t,
        "log10_t_corrected_pvalue": log_t / _LN10,
        "log10_normal_pvalue": log_n / _LN10,
    }


def reshuffle_pvalues(
    original_score: float,
    reshuffled_scores: Sequence[float] | np.ndarray,
    *,
    n_texts: int = 0,
    n_tokens: int = 0,
) -> ReshuffleResult:
    """Exact rank p (primary), t-corrected p and the paper's Gaussian-approx. p of s_0 against K copies."""
    s = np.asarray(reshuffled_scores, dtype=np.float64).ravel()
    s0 = float(original_score)
    p = reshuffle_pvalue_arrays([s0], s.reshape(1, -1))
    rank_p = float(p["pvalue"][0])
    log_t = float(p["log10_t_corrected_pvalue"][0])
    log_n = float(p["log10_normal_pvalue"][0])
    return ReshuffleResult(
        k=s.size,
        pvalue=rank_p,
        log10_pvalue=math.log10(rank_p),
        min_pvalue=1.0 / (s.size + 1.0),
        t_corrected_pvalue=10.0**log_t,
        log10_t_corrected_pvalue=log_t,
        normal_pvalue=10.0**log_n,
        log10_normal_pvalue=log_n,
        t_statistic=float(p["t_statistic"][0]),
        score_original=s0,
        scores_reshuffled=tuple(float(x) for x in s),
        n_texts=n_texts,
        n_tokens=n_tokens,
    )


def _check_texts(texts: Sequence[str], prompts: Sequence[str] | None) -> None:
    if isinstance(texts, str):
        raise DataError("texts must be a list of strings, not one string; wrap it in a list.")
    if len(texts) == 0:
        raise DataError("no suspect text given; pass at least one non-empty text.")
    if any(not t for t in texts):
        raise DataError("a suspect text is empty; drop empty samples before testing.")
    if prompts is not None and len(prompts) != len(texts):
        raise DataError(f"{len(prompts)} prompts for {len(texts)} texts; pass one prompt per text.")


def text_scores(
    lm: LanguageModel,
    texts: Sequence[str] | Sequence[Sequence[int]],
    *,
    prompts: Sequence[str] | Sequence[int] | None = None,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-prob of each text (its continuation after the prompt, if given) and its scored token count.

    `texts` are strings, or token-id lists with `prompts` the prompt lengths in tokens.
    """
    if len(texts) == 0:
        raise DataError("no suspect text given; pass at least one non-empty text.")
    if isinstance(texts[0], str):
        _check_texts(texts, prompts)  # type: ignore[arg-type]
        scores = score_texts(lm, texts, prompts=prompts, batch_size=batch_size)  # type: ignore[arg-type]
    else:
        lengths = [0] * len(texts) if prompts is None else [int(p) for p in prompts]  # type: ignore[union-attr]
        if any(len(t) <= max(p, 1) for t, p in zip(texts, lengths, strict=True)):
            raise DataError(
                "a suspect text has no tokens after its prompt; drop empty samples before testing."
            )
        scores = score_token_ids(
            require_lm(lm, "text_scores: lm"),
            [list(t) for t in texts],  # type: ignore[arg-type]
            prompt_lengths=lengths,
            batch_size=batch_size,
        )
    return scores.sum_logprob, scores.n_tokens


@dataclass(frozen=True)
class ReshuffleScores:
    """Per-text scores under the original-order model (row 0) and the K reshuffled copies (rows 1..K)."""

    scores: np.ndarray  # (K + 1, n_texts) summed log-probs
    n_tokens: np.ndarray  # (n_texts,) scored tokens per text

    def test(self, index: Sequence[int] | np.ndarray | None = None) -> ReshuffleResult:
        """The reshuffle test on the texts `index` (all by default): s_k = mean summed log-prob."""
        idx = np.arange(self.scores.shape[1]) if index is None else np.asarray(index, dtype=np.int64)
        if idx.size == 0:
            raise DataError("no texts selected; pass at least one text index.")
        s = self.scores[:, idx].mean(axis=1)
        return reshuffle_pvalues(s[0], s[1:], n_texts=int(idx.size), n_tokens=int(self.n_tokens[idx].sum()))

    def subsample(self, n_tokens: int, *, seed: int = 0) -> np.ndarray:
        """Indices of a random subset of texts holding about `n_tokens` scored tokens (at least one text)."""
        rng = np.random.default_rng(seed)
        perm = rng.permutation(self.scores.shape[1])
        cum = np.cumsum(self.n_tokens[perm])
        return perm[: max(1, int(np.searchsorted(cum, n_tokens)) + 1)]


def score_candidates(
    original: LanguageModel,
    reshuffled: Sequence[LanguageModel],
    texts: Sequence[str] | Sequence[Sequence[int]],
    *,
    prompts: Sequence[str] | Sequence[int] | None = None,
    batch_size: int = 32,
) -> ReshuffleScores:
    """Score the suspect texts under the original-order retrain and each reshuffled retrain.

    All K+1 candidates come from one pipeline, so they share Alice's tokenizer; one that does not is
    refused (its scores would not be comparable).
    """
    original = require_lm(original, "the original-order retrain")
    if isinstance(reshuffled, LanguageModel) or len(reshuffled) < 1:
        raise DataError(
            "the reshuffle test needs K >= 1 reshuffled copies; retrain the last phase at least once."
        )
    for i, candidate in enumerate(reshuffled):
        candidate = require_lm(candidate, f"reshuffled copy {i}")
        if not same_tokenizer(candidate.tokenizer, original.tokenizer):
            raise DataError(
                f"reshuffled copy {i} ({candidate.name}) has another tokenizer than the original-order "
                f"retrain ({original.name}); every retrain must use Alice's tokenizer."
            )
    rows, n_tok = [], None
    for lm in [original, *reshuffled]:
        s, n_tok = text_scores(lm, texts, prompts=prompts, batch_size=batch_size)
        rows.append(s)
    return ReshuffleScores(np.vstack(rows), np.asarray(n_tok))


def reshuffle_test(
    original: LanguageModel,
    reshuffled: Sequence[LanguageModel],
    texts: Sequence[str] | Sequence[Sequence[int]],
    *,
    prompts: Sequence[str] | Sequence[int] | None = None,
    batch_size: int = 32,
) -> ReshuffleResult:
    """Score the suspect text under the K+1 candidates: the exact rank p first, then the t and normal p."""
    return score_candidates(original, reshuffled, texts, prompts=prompts, batch_size=batch_size).test()


def retrain_last_phase(
    alice: Any,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Any],
    config: Any,
    *,
    checkpoint_step: int,
    k: int,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> tuple[Any, list[Any]]:
    """Retrain Alice's last phase with `reprokit.zoo`: once in her order and K times reshuffled.

    `alice` is a `reprokit.zoo.TrainedModel` saved with a checkpoint at `checkpoint_step`; `examples` and
    `config` are what she was trained on. Returns (original-order retrain, [K reshuffled retrains]), all
    cached `TrainedModel`s from the same pipeline, so exchangeability holds even with nondeterminism.
    """
    from reprokit.seed import derive_seed
    from reprokit.zoo import train_cached

    if k < 1:
        raise ConfigError(f"k must be >= 1 reshuffled copies, got {k}.")
    ckpt = alice.checkpoint(checkpoint_step)
    order = np.asarray(alice.order, dtype=np.int64)
    cut = checkpoint_step * config.batch_size
    if not 0 < cut < order.size:
        raise ConfigError(
            f"checkpoint_step {checkpoint_step} leaves no last phase to retrain ({order.size} examples)."
        )
    init = ckpt / "model"
    plain = replace(config, lora_r=0)
    original = train_cached(
        init,
        tokenizer,
        examples,
        plain,
        name="retrain-original",
        order=order,
        resume_from=ckpt,
        cache_dir=cache_dir,
    )
    copies = []
    for i in range(k):
        rng = np.random.default_rng(derive_seed(seed, "reshuffle", checkpoint_step, i))
        new_order = np.concatenate([order[:cut], rng.permutation(order[cut:])])
        copies.append(
            train_cached(
                init,
                tokenizer,
                examples,
                plain,
                name=f"retrain-shuffle{i}",
                order=new_order,
                resume_from=ckpt,
                cache_dir=cache_dir,
            )
        )
    logger.info(
        "retrained the last %d examples %d+1 times from step %d", order.size - cut, k, checkpoint_step
    )
    return original, copies
