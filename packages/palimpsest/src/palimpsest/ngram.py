"""The observational n-gram (partition) test: do the suspect text's n-gram matches sit late in Alice's run?

`NGramIndex` keeps Alice's training documents, each tagged with its training step, as a k-truncated
suffix array (every token position sorted by the following `max_n` tokens, never crossing a document
end). For each position of the suspect text, the greedy longest match (up to `max_n` tokens) is found
by narrowing the sorted range one token at a time, and the steps of all its occurrences are counted.
The statistic is Spearman's rho between step and match count; its p-value comes from permuting the
documents' steps (within blocks when the run was shuffled by stage), which is exact under A1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import scipy.stats

from reprokit.errors import ConfigError, DataError
from reprokit.stats import permutation_pvalue, spearman_test

logger = logging.getLogger(__name__)

__all__ = ["InfiniGramIndex", "MatchIndex", "NGramIndex", "NGramResult", "match_counts", "ngram_test"]

_PAD = -1


class MatchIndex(Protocol):
    """What the n-gram test needs from an index: greedy longest matches with document ids."""

    n_documents: int
    doc_steps: np.ndarray

    def longest_match(self, tokens: Sequence[int], start: int) -> tuple[int, np.ndarray]:
        """(match length, document id of every occurrence) of the longest span starting at `start`."""
        ...


class NGramIndex:
    """In-memory k-truncated suffix array over tokenized documents, each tagged with a training step.

    Memory is about 4 * (max_n + 2) bytes per token (tens of millions of tokens fit in a few GB).
    """

    def __init__(
        self,
        documents: Sequence[Sequence[int]],
        steps: Sequence[int] | np.ndarray,
        *,
        max_n: int = 8,
        blocks: Sequence[Any] | np.ndarray | None = None,
    ) -> None:
        if max_n < 1:
            raise ConfigError(f"max_n must be >= 1, got {max_n}.")
        if len(documents) == 0:
            raise DataError("NGramIndex needs at least one document.")
        steps_arr = np.asarray(steps)
        if steps_arr.shape != (len(documents),):
            raise DataError(
                f"steps must have one entry per document ({len(documents)}), got {steps_arr.shape}."
            )
        lengths = np.array([len(d) for d in documents], dtype=np.int64)
        if lengths.sum() == 0:
            raise DataError("all documents are empty; index at least one token.")
        self.max_n = int(max_n)
        self.n_documents = len(documents)
        self.doc_steps = steps_arr.astype(np.int64)
        self.blocks = None if blocks is None else np.asarray(blocks)
        stream = np.concatenate([np.asarray(d, dtype=np.int64) for d in documents if len(d)])
        if stream.min() < 0 or stream.max() >= np.iinfo(np.int32).max:
            raise DataError(
                f"token ids must lie in [0, 2**31 - 1), got {int(stream.min())}..{int(stream.max())}; "
                "pass the documents' token ids."
            )
        doc_of = np.repeat(np.arange(self.n_documents, dtype=np.int32), lengths)
        # a token's window stops at its document end: pad positions with -1 (sorts first)
        end_of = np.repeat(np.cumsum(lengths), lengths)
        n_tok = stream.size
        windows = np.full((n_tok, self.max_n), _PAD, dtype=np.int32)
        pos = np.arange(n_tok)
        for j in range(self.max_n):
            ok = pos + j < end_of
            windows[ok, j] = stream[pos[ok] + j]
        order = np.lexsort(windows.T[::-1])
        self._sorted = np.ascontiguousarray(
            windows[order].T
        )  # (max_n, n_tok): column j sorted within prefix ties
        self._doc_sorted = doc_of[order]
        self.n_tokens = int(n_tok)
        logger.info("indexed %d tokens of %d documents (max_n=%d)", n_tok, self.n_documents, self.max_n)

    def longest_match(self, tokens: Sequence[int], start: int) -> tuple[int, np.ndarray]:
        """Greedy longest match of `tokens[start:start+max_n]`: (length, document id of each occurrence)."""
        lo, hi, length = 0, self.n_tokens, 0
        end = min(len(tokens), start + self.max_n)
        for j in range(start, end):
            col = self._sorted[j - start]
            t = tokens[j]
            new_lo = lo + int(np.searchsorted(col[lo:hi], t, side="left"))
            new_hi = lo + int(np.searchsorted(col[lo:hi], t, side="right"))
            if new_lo >= new_hi:
                break
            lo, hi, length = new_lo, new_hi, length + 1
        if length == 0:
            return 0, np.zeros(0, dtype=np.int64)
        return length, self._doc_sorted[lo:hi].astype(np.int64)

    def count(self, ngram: Sequence[int]) -> int:
        """Number of occurrences of an n-gram (n <= max_n) in the indexed documents."""
        if not 0 < len(ngram) <= self.max_n:
            raise ValueError(f"n-gram length must be in 1..{self.max_n}, got {len(ngram)}.")
        length, docs = self.longest_match(list(ngram), 0)
        return int(docs.size) if length == len(ngram) else 0


class InfiniGramIndex:
    """Adapter for an `infini-gram` engine (optional extra; `pip install infini-gram`).

    `engine` is an `infini_gram.engine.InfiniGramEngine` built over Alice's documents; `doc_steps[d]` is
    the training step of the engine's document d. Untested here: the project's tests have no engine.
    """

    def __init__(
        self,
        engine: Any,
        doc_steps: Sequence[int] | np.ndarray,
        *,
        max_n: int = 8,
        max_occurrences: int = 1000,
    ):
        self.engine = engine
        self.doc_steps = np.asarray(doc_steps, dtype=np.int64)
        self.n_documents = int(self.doc_steps.size)
        self.max_n = max_n
        self.max_occurrences = max_occurrences

    def longest_match(self, tokens: Sequence[int], start: int) -> tuple[int, np.ndarray]:
        """Longest span (<= max_n) that occurs, and the document ids of its occurrences (capped)."""
        for n in range(min(self.max_n, len(tokens) - start), 0, -1):
            found = self.engine.find(input_ids=list(tokens[start : start + n]))
            if found.get("cnt", 0) > 0:
                docs = []
                for s, (a, b) in enumerate(found["segment_by_shard"]):
                    for rank in range(a, min(b, a + self.max_occurrences)):
                        docs.append(self.engine.get_doc_by_rank(s=s, rank=rank, max_disp_len=1)["doc_ix"])
                return n, np.asarray(docs, dtype=np.int64)
        return 0, np.zeros(0, dtype=np.int64)


def match_counts(index: MatchIndex, texts: Sequence[Sequence[int]], *, min_length: int = 1) -> np.ndarray:
    """Occurrences of the suspect texts' greedy longest matches, per indexed document.

    Matches shorter than `min_length` tokens are ignored (short n-grams occur everywhere).
    """
    found: list[np.ndarray] = []
    for text in texts:
        for p in range(len(text)):
            length, docs = index.longest_match(text, p)
            if length >= min_length and docs.size:
                found.append(docs)
    if not found:
        return np.zeros(index.n_documents, dtype=np.float64)
    return np.bincount(np.concatenate(found), minlength=index.n_documents).astype(np.float64)


@dataclass(frozen=True)
class NGramResult:
    """Spearman of match count against step; the permutation p-value is the exact one."""

    statistic: float
    pvalue: float
    log10_pvalue: float
    spearman_pvalue: float
    n_matches: int
    n_tokens: int
    n_steps: int
    n_permutations: int
    null: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scalar fields."""
        d = asdict(self)
        d.pop("null")
        return d


def _step_counts(doc_counts: np.ndarray, doc_steps: np.ndarray, n_steps: int) -> np.ndarray:
    return np.bincount(doc_steps, weights=doc_counts, minlength=n_steps)


def ngram_test(
    index: MatchIndex,
    texts: Sequence[Sequence[int]],
    *,
    n_permutations: int = 999,
    min_length: int = 1,
    blocks: Sequence[Any] | np.ndarray | None = None,
    seed: int = 0,
) -> NGramResult:
    """Spearman(step, match count per step) with a document-level permutation p-value (H1: rho > 0).

    `texts` are the suspect's token ids (same tokenizer as the index). Permuting which documents sit at
    which step is exact under Alice's uniformly random order (within `blocks` if given).
    """
    if isinstance(texts, str) or len(texts) == 0 or all(len(t) == 0 for t in texts):
        raise DataError("no suspect tokens given; pass a non-empty list of token-id sequences.")
    if n_permutations < 1:
        raise ConfigError(f"n_permutations must be >= 1, got {n_permutations}.")
    doc_counts = match_counts(index, texts, min_length=min_length)
    _, steps = np.unique(index.doc_steps, return_inverse=True)  # dense step ids 0..S-1
    n_steps = int(steps.max()) + 1
    if n_steps < 3:
        raise DataError(
            f"the transcript has {n_steps} distinct training steps; the rank test needs at least 3 "
            "(check the step column)."
        )
    step_axis = np.arange(n_steps, dtype=np.float64)
    counts = _step_counts(doc_counts, steps, n_steps)
    n_tok = int(sum(len(t) for t in texts))
    if np.all(counts == counts[0]):
        logger.warning("n-gram test: every step has the same match count; p = 1")
        return NGramResult(0.0, 1.0, 0.0, 1.0, int(doc_counts.sum()), n_tok, n_steps, n_permutations)
    observed = spearman_test(step_axis, counts, alternative="greater")
    rx = scipy.stats.rankdata(step_axis)
    rx = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean())
    rng = np.random.default_rng(seed)
    blk = None if blocks is None else np.asarray(blocks)
    null = np.empty(n_permutations)
    for i in range(n_permutations):
        if blk is None:
            perm_steps = rng.permutation(steps)
        else:
            perm_steps = steps.copy()
            for b in np.unique(blk):
                g = np.flatnonzero(blk == b)
                perm_steps[g] = rng.permutation(steps[g])
        c = _step_counts(doc_counts, perm_steps, n_steps)
        ry = scipy.stats.rankdata(c)
        ry = ry - ry.mean()
        norm = np.linalg.norm(ry)
        null[i] = float(rx @ ry / norm) if norm > 0 else 0.0
    p = permutation_pvalue(observed.statistic, null, "greater")
    return NGramResult(
        statistic=observed.statistic,
        pvalue=p,
        log10_pvalue=math.log10(p),
        spearman_pvalue=observed.pvalue,
        n_matches=int(doc_counts.sum()),
        n_tokens=n_tok,
        n_steps=n_steps,
        n_permutations=n_permutations,
        null=null,
    )
