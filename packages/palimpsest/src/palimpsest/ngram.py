"""The observational n-gram (partition) test: do the suspect text's n-gram matches sit late in Alice's run?

Definition (the paper's Algorithm 2 as the official `partition.py` / `tracing/index.py` run it), all
defaults here:

- at each position p of a suspect text, the greedy longest span `text[p:p+n]` that occurs in Alice's
  documents, for n = `max_n` (9, the official k + 1 with k = 8) down to `min_length` (2: the official
  loop never tries single tokens); spans never cross a document end;
- only positions with a full `max_n`-token window (the official loop stops `max_n - 1` tokens before a
  text's end; `skip_tail=False` queries every position);
- every occurrence of the span counts once at its document's training step;
- rho = Spearman(step, match count) over every step from the first to the last (steps that hold no
  document count 0, as in the official `counts = np.zeros(n_steps)`; `empty_steps="drop"` leaves them
  out). The p-value permutes which documents sit at which step (within blocks for stage-wise shuffles),
  which is exact under a uniformly random order; the t-approximation p is reported beside it.

Where we differ on purpose (options): `max_occurrences` skips positions whose span occurs more often
(the official 10 ms lookup timeout drops such popular spans, hardware-dependently; default: keep all).

`NGramIndex` is a suffix array over all documents built by `pydivsufsort` (libdivsufsort); longest
matches are found for all positions at once by vectorized binary search, and occurrences are counted per
document with a difference array, so popular spans cost nothing extra. About 6-8 bytes per token.
`InfiniGramIndex` adapts an on-disk infini-gram index (optional `infini-gram` package) for corpora that
do not fit in memory; it looks up one span length and one occurrence per call, which makes it hundreds
to thousands of times slower per position (benchmarks/palimpsest_ngram_index.py).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import scipy.stats

from reprokit.errors import ConfigError, DataError
from reprokit.stats import permutation_pvalue, t_logsf

logger = logging.getLogger(__name__)

__all__ = ["InfiniGramIndex", "MatchIndex", "NGramIndex", "NGramResult", "match_counts", "ngram_test"]

EmptySteps = Literal["keep", "drop"]
_EMPTY_STEPS = ("keep", "drop")
_CHUNK = 1 << 15  # query positions per vectorized batch (memory ~ _CHUNK * max_n * 8 bytes per array)


class MatchIndex(Protocol):
    """What the n-gram test needs from an index: greedy longest matches with document ids."""

    n_documents: int
    doc_steps: np.ndarray
    max_n: int

    def longest_match(
        self,
        tokens: Sequence[int],
        start: int,
        *,
        min_length: int = 1,
        max_occurrences: int | None = None,
    ) -> tuple[int, np.ndarray]:
        """(length, document id of every occurrence) of the longest span (>= min_length) at `start`.

        Length 0 when no span of at least `min_length` tokens occurs; no documents when the span occurs
        more than `max_occurrences` times.
        """
        ...


_Flat = tuple[np.ndarray, np.ndarray, np.ndarray]


def _flatten(texts: Sequence[Sequence[int]]) -> _Flat:
    """(all tokens concatenated plus one pad, offset of each text, length of each text)."""
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    parts = [np.asarray(t, dtype=np.int64).ravel() for t in texts]
    return np.concatenate([*parts, np.zeros(1, np.int64)]), np.cumsum(lengths) - lengths, lengths


def _query_positions(lengths: np.ndarray, max_n: int, skip_tail: bool) -> tuple[np.ndarray, np.ndarray]:
    """(text index, start) of every queried position; with `skip_tail` only full `max_n` windows."""
    n_pos = np.maximum(lengths - (max_n - 1), 0) if skip_tail else lengths
    text_of = np.repeat(np.arange(lengths.size), n_pos)
    first = np.cumsum(n_pos) - n_pos
    start = np.arange(int(n_pos.sum())) - np.repeat(first, n_pos)
    return text_of, start


class NGramIndex:
    """Suffix array over tokenized documents, each tagged with a training step (and optionally a block).

    Built with `pydivsufsort`; memory is the token stream (2 bytes per token for vocabularies below
    65,534 tokens, else 4) plus the suffix array (4 bytes per token below 2**31 tokens), so tens of
    millions of tokens index in seconds on a laptop.
    """

    def __init__(
        self,
        documents: Sequence[Sequence[int]],
        steps: Sequence[int] | np.ndarray,
        *,
        max_n: int = 9,
        blocks: Sequence[Any] | np.ndarray | None = None,
    ) -> None:
        from pydivsufsort import divsufsort

        if max_n < 1:
            raise ConfigError(f"max_n must be >= 1, got {max_n}.")
        if len(documents) == 0:
            raise DataError("NGramIndex needs at least one document.")
        steps_arr = np.asarray(steps)
        if steps_arr.shape != (len(documents),):
            raise DataError(
                f"steps must have one entry per document ({len(documents)}), got {steps_arr.shape}."
            )
        if not np.issubdtype(steps_arr.dtype, np.integer) and not (
            np.issubdtype(steps_arr.dtype, np.number) and np.all(steps_arr == np.round(steps_arr))
        ):
            raise DataError(f"steps must be whole numbers (training steps), got {steps_arr[:3]!r}...")
        lengths = np.array([len(d) for d in documents], dtype=np.int64)
        n_tok = int(lengths.sum())
        if n_tok == 0:
            raise DataError("all documents are empty; index at least one token.")
        tokens = np.concatenate([np.asarray(d, dtype=np.int64).ravel() for d in documents if len(d)])
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= np.iinfo(np.int32).max:
            raise DataError(
                f"token ids must lie in [0, 2**31 - 1), got {lo}..{hi}; pass the documents' token ids."
            )
        self.max_n = int(max_n)
        self.n_documents = len(documents)
        self.n_tokens = n_tok
        self.doc_steps = steps_arr.astype(np.int64)
        self.blocks = None if blocks is None else np.asarray(blocks)
        if self.blocks is not None and self.blocks.shape != (self.n_documents,):
            raise DataError(
                f"blocks must have one entry per document ({self.n_documents}), got {self.blocks.shape}."
            )
        # stream: a 0 separator before each document, token t stored as t + 1, then max_n zeros of padding;
        # the largest value of the dtype never occurs and stands for query tokens the index does not hold
        dtype = np.uint16 if hi + 1 < np.iinfo(np.uint16).max else np.uint32
        self._absent = int(np.iinfo(dtype).max)
        total = n_tok + self.n_documents
        self._stream = np.zeros(total + self.max_n, dtype=dtype)
        doc_of_token = np.repeat(np.arange(self.n_documents, dtype=np.int64), lengths)
        self._stream[np.arange(n_tok) + doc_of_token + 1] = tokens + 1
        self._starts = np.cumsum(lengths + 1) - lengths  # stream offset of each document's first token
        del tokens, doc_of_token
        sa = divsufsort(self._stream[:total])
        sa = sa[self._stream[sa] != 0]
        self._sa = sa.astype(np.int32 if total < np.iinfo(np.int32).max else np.int64)
        del sa
        # first-token buckets of the suffix array narrow every search before it starts
        self._vocab = hi + 2
        self._bucket = np.concatenate(
            [[0], np.cumsum(np.bincount(self._stream[self._sa], minlength=self._vocab))]
        ).astype(np.int64)
        self._cols = np.arange(self.max_n)
        logger.info("indexed %d tokens of %d documents", n_tok, self.n_documents)

    @property
    def nbytes(self) -> int:
        """Memory held by the index arrays (stream, suffix array, document offsets, buckets)."""
        return int(
            self._stream.nbytes
            + self._sa.nbytes
            + self._starts.nbytes
            + self._bucket.nbytes
            + self.doc_steps.nbytes
        )

    # ------------------------------------------------------------------------------ vectorized search
    def _windows(self, flat: _Flat, text_of: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, ...]:
        """Query windows (q, max_n) in the stream's encoding, and how many tokens each holds."""
        tokens, offsets, lengths = flat
        valid = (start[:, None] + self._cols) < lengths[text_of][:, None]
        pos = np.minimum(offsets[text_of][:, None] + start[:, None] + self._cols, tokens.size - 1)
        win = np.where(valid, tokens[pos] + 1, self._absent)
        win = np.where((win < 1) | (win >= self._vocab), self._absent, win)
        return win.astype(self._stream.dtype), valid.sum(axis=1)

    def _compare(self, rank: np.ndarray, win: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, ...]:
        """LCP (<= length) of suffix `sa[rank]` with each window, and whether the suffix sorts first."""
        corpus = self._stream[self._sa[rank][:, None] + self._cols]
        differ = (corpus != win) | (self._cols >= length[:, None])
        lcp = np.where(differ.any(axis=1), differ.argmax(axis=1), self.max_n)
        rows = np.arange(win.shape[0])
        j = np.minimum(lcp, self.max_n - 1)
        less = (lcp < length) & (corpus[rows, j] < win[rows, j])
        return lcp, less

    def _bound(self, win, length, lo, hi, *, upper: bool) -> np.ndarray:
        """First rank in [lo, hi) whose suffix is >= the window's first `length` tokens (> with `upper`)."""
        lo, hi = lo.copy(), hi.copy()
        while True:
            act = np.flatnonzero(lo < hi)
            if act.size == 0:
                return lo
            mid = (lo[act] + hi[act]) // 2
            lcp, less = self._compare(mid, win[act], length[act])
            right = (less | (lcp >= length[act])) if upper else less
            lo[act] = np.where(right, mid + 1, lo[act])
            hi[act] = np.where(right, hi[act], mid)

    def _match_ranges(self, win: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, ...]:
        """(match length, first rank, end rank) of the greedy longest match of each window."""
        q = win.shape[0]
        first = win[:, 0].astype(np.int64)
        known = first < self._vocab
        lo = np.where(known, self._bucket[np.minimum(first, self._vocab - 1)], 0)
        hi = np.where(known, self._bucket[np.minimum(first + 1, self._vocab)], 0)
        found = np.flatnonzero((hi > lo) & (length > 0))
        best = np.zeros(q, dtype=np.int64)
        start, end = np.zeros(q, dtype=np.int64), np.zeros(q, dtype=np.int64)
        if found.size == 0:
            return best, start, end
        w, ln, blo, bhi = win[found], length[found], lo[found], hi[found]
        ins = self._bound(w, ln, blo, bhi, upper=False)
        # the longest common prefix with any suffix is reached next to the insertion point
        below = np.maximum(ins - 1, blo)
        above = np.minimum(ins, bhi - 1)
        lcp = np.maximum(self._compare(below, w, ln)[0], self._compare(above, w, ln)[0])
        best[found] = lcp
        start[found] = self._bound(w, lcp, blo, ins, upper=False)
        end[found] = self._bound(w, lcp, ins, bhi, upper=True)
        return best, start, end

    def _docs_of_ranks(self, ranks: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._starts, self._sa[ranks], side="right") - 1

    # ------------------------------------------------------------------------------------ public API
    def longest_match(
        self,
        tokens: Sequence[int],
        start: int,
        *,
        min_length: int = 1,
        max_occurrences: int | None = None,
    ) -> tuple[int, np.ndarray]:
        """Greedy longest match of `tokens[start:start+max_n]`: (length, document id of each occurrence).

        (0, none) when no span of at least `min_length` tokens occurs; (length, none) when the span occurs
        more than `max_occurrences` times.
        """
        flat = _flatten([tokens])
        win, length = self._windows(flat, np.zeros(1, np.int64), np.array([start], np.int64))
        best, lo, hi = self._match_ranges(win, length)
        n = int(best[0])
        if n < min_length or n == 0:
            return 0, np.zeros(0, dtype=np.int64)
        if max_occurrences is not None and hi[0] - lo[0] > max_occurrences:
            return n, np.zeros(0, dtype=np.int64)
        return n, self._docs_of_ranks(np.arange(lo[0], hi[0])).astype(np.int64)

    def count(self, ngram: Sequence[int]) -> int:
        """Number of occurrences of an n-gram (n <= max_n) in the indexed documents."""
        if not 0 < len(ngram) <= self.max_n:
            raise ValueError(f"n-gram length must be in 1..{self.max_n}, got {len(ngram)}.")
        length, docs = self.longest_match(list(ngram), 0)
        return int(docs.size) if length == len(ngram) else 0

    def document_counts(
        self,
        texts: Sequence[Sequence[int]],
        *,
        min_length: int = 2,
        skip_tail: bool = True,
        max_occurrences: int | None = None,
    ) -> tuple[np.ndarray, int]:
        """(occurrences per document of every position's longest match, number of positions queried).

        All positions are searched together; occurrences are summed per document through a difference
        array over the suffix array, so a span with a million occurrences costs no more than a rare one.
        """
        flat = _flatten(texts)
        text_of, start = _query_positions(flat[2], self.max_n, skip_tail)
        n_sa = self._sa.size
        starts, ends = [], []
        for c in range(0, text_of.size, _CHUNK):
            win, length = self._windows(flat, text_of[c : c + _CHUNK], start[c : c + _CHUNK])
            best, lo, hi = self._match_ranges(win, length)
            keep = best >= max(min_length, 1)
            if max_occurrences is not None:
                keep &= hi - lo <= max_occurrences
            starts.append(lo[keep])
            ends.append(hi[keep])
        diff = np.bincount(np.concatenate([*starts, [0]]), minlength=n_sa + 1)
        diff -= np.bincount(np.concatenate([*ends, [0]]), minlength=n_sa + 1)
        mult = np.cumsum(diff[:-1])
        ranks = np.flatnonzero(mult)
        counts = np.bincount(
            self._docs_of_ranks(ranks), weights=mult[ranks].astype(np.float64), minlength=self.n_documents
        )
        return counts, int(text_of.size)


class InfiniGramIndex:
    """Adapter for an `infini-gram` engine (optional: `pip install 'palimpsest[infinigram]'`).

    `engine` is an `infini_gram.engine.InfiniGramEngine` over Alice's documents; `doc_steps[d]` is the
    training step of the engine's document d. :meth:`build` makes one from token ids.
    """

    def __init__(
        self,
        engine: Any,
        doc_steps: Sequence[int] | np.ndarray,
        *,
        max_n: int = 9,
        blocks: Sequence[Any] | np.ndarray | None = None,
    ):
        if max_n < 1:
            raise ConfigError(f"max_n must be >= 1, got {max_n}.")
        self.engine = engine
        self.doc_steps = np.asarray(doc_steps, dtype=np.int64)
        self.n_documents = int(self.doc_steps.size)
        self.max_n = int(max_n)
        self.blocks = None if blocks is None else np.asarray(blocks)

    @classmethod
    def build(
        cls,
        documents: Sequence[Sequence[int]],
        steps: Sequence[int] | np.ndarray,
        index_dir: str | Path,
        *,
        max_n: int = 9,
        blocks: Sequence[Any] | np.ndarray | None = None,
        mem_gib: int = 4,
    ) -> InfiniGramIndex:
        """Write the documents as an infini-gram index in `index_dir` (token ids < 65535) and open it."""
        import os
        import resource
        import subprocess
        import sys

        try:
            from infini_gram.engine import InfiniGramEngine
        except ImportError as err:
            raise ConfigError(
                "InfiniGramIndex needs the infini-gram package: pip install 'palimpsest[infinigram]'."
            ) from err
        out = Path(index_dir)
        out.mkdir(parents=True, exist_ok=True)
        offsets, pos = [], 0
        with open(out / "tokenized.0", "wb") as f:
            for doc in documents:
                arr = np.asarray(doc, dtype=np.int64)
                if arr.size and (arr.min() < 0 or arr.max() >= 65535):
                    raise DataError("infini-gram u16 indexes hold token ids in [0, 65535).")
                chunk = b"\xff\xff" + arr.astype("<u2").tobytes()
                offsets.append(pos)
                pos += len(chunk)
                f.write(chunk)
        np.asarray(offsets, dtype="<u8").tofile(out / "offset.0")
        (out / "empty").mkdir(exist_ok=True)  # the tokenizing step is skipped: its input folder stays empty
        cmd = [sys.executable, "-m", "infini_gram.indexing", "--data_dir", str((out / "empty").resolve())]
        cmd += ["--save_dir", str(out.resolve()), "--token_dtype", "u16", "--mem", str(mem_gib)]
        cpus = (os.cpu_count() or 1) if pos > 1 << 24 else 1  # its parallel merge fails on tiny data
        cmd += ["--cpus", str(cpus)]
        cmd += ["--ulimit", str(resource.getrlimit(resource.RLIMIT_NOFILE)[1])]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not (out / "table.0").exists():
            raise DataError(f"infini-gram indexing failed in {out}: {done.stderr.strip()[-500:]}")
        engine = InfiniGramEngine(index_dir=str(out), eos_token_id=0, vocab_size=65535)
        return cls(engine, steps, max_n=max_n, blocks=blocks)

    def longest_match(
        self,
        tokens: Sequence[int],
        start: int,
        *,
        min_length: int = 1,
        max_occurrences: int | None = None,
    ) -> tuple[int, np.ndarray]:
        """Longest span (min_length..max_n tokens) that occurs, and the document ids of its occurrences."""
        for n in range(min(self.max_n, len(tokens) - start), max(min_length, 1) - 1, -1):
            found = self.engine.find(input_ids=[int(t) for t in tokens[start : start + n]])
            if found.get("cnt", 0) > 0:
                if max_occurrences is not None and found["cnt"] > max_occurrences:
                    return n, np.zeros(0, dtype=np.int64)
                docs = [
                    self.engine.get_doc_by_rank(s=s, rank=rank, max_disp_len=1)["doc_ix"]
                    for s, (a, b) in enumerate(found["segment_by_shard"])
                    for rank in range(a, b)
                ]
                return n, np.asarray(docs, dtype=np.int64)
        return 0, np.zeros(0, dtype=np.int64)


def match_counts(
    index: MatchIndex,
    texts: Sequence[Sequence[int]],
    *,
    min_length: int = 2,
    skip_tail: bool = True,
    max_occurrences: int | None = None,
) -> np.ndarray:
    """Occurrences of the suspect texts' greedy longest matches, per indexed document.

    Matches shorter than `min_length` tokens are ignored; with `skip_tail` only positions with a full
    `max_n`-token window are queried (as the official code does).
    """
    return _match_counts(index, texts, min_length, skip_tail, max_occurrences)[0]


def _check_options(index: MatchIndex, min_length: int, max_occurrences: int | None) -> None:
    if min_length < 1:
        raise ConfigError(f"min_length must be >= 1, got {min_length}.")
    if min_length > index.max_n:
        raise ConfigError(f"min_length ({min_length}) is longer than the longest span max_n ({index.max_n}).")
    if max_occurrences is not None and max_occurrences < 1:
        raise ConfigError(f"max_occurrences must be >= 1 or None, got {max_occurrences}.")


def _match_counts(
    index: MatchIndex,
    texts: Sequence[Sequence[int]],
    min_length: int,
    skip_tail: bool,
    max_occurrences: int | None,
) -> tuple[np.ndarray, int]:
    _check_options(index, min_length, max_occurrences)
    if isinstance(index, NGramIndex):
        return index.document_counts(
            texts, min_length=min_length, skip_tail=skip_tail, max_occurrences=max_occurrences
        )
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    text_of, start = _query_positions(lengths, index.max_n, skip_tail)
    found: list[np.ndarray] = []
    for t, p in zip(text_of.tolist(), start.tolist(), strict=True):
        _, docs = index.longest_match(texts[t], p, min_length=min_length, max_occurrences=max_occurrences)
        if docs.size:
            found.append(docs)
    if not found:
        return np.zeros(index.n_documents, dtype=np.float64), int(text_of.size)
    counts = np.bincount(np.concatenate(found), minlength=index.n_documents).astype(np.float64)
    return counts, int(text_of.size)


@dataclass(frozen=True)
class NGramResult:
    """Spearman of match count against step; the permutation p-value is the exact one."""

    statistic: float
    pvalue: float
    log10_pvalue: float
    spearman_pvalue: float
    n_matches: int
    n_tokens: int
    n_positions: int
    n_steps: int
    n_permutations: int
    max_n: int
    min_length: int
    skip_tail: bool
    empty_steps: str
    max_occurrences: int | None
    null: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scalar fields."""
        d = asdict(self)
        d.pop("null")
        return d


def _spearman_sparse(step_idx: np.ndarray, weights: np.ndarray, n_steps: int) -> float:
    """Spearman rho of (0..n_steps-1, per-step total of `weights` at `step_idx`), zeros never stored.

    Equal to scipy's `spearmanr(np.arange(n_steps), counts)` with average ranks for the tied zeros, in
    O(m log m) for m steps with a count, so a million steps cost no more than a hundred.
    """
    if n_steps <= max(4 * step_idx.size, 1 << 16):  # a dense histogram is cheaper than sorting
        dense = np.bincount(step_idx, weights=weights, minlength=n_steps)
        steps = np.flatnonzero(dense)
        values = dense[steps]
    else:
        steps, inv = np.unique(step_idx, return_inverse=True)
        values = np.bincount(inv, weights=weights)
        nz = values != 0
        steps, values = steps[nz], values[nz]
    s = float(n_steps)
    zeros = s - steps.size
    if steps.size == 0 or (zeros == 0 and np.all(values == values[0])):
        return 0.0
    zero_rank = (zeros + 1.0) / 2.0
    ry = zeros + scipy.stats.rankdata(values)
    center = (s + 1.0) / 2.0
    num = float(np.dot(steps + 1.0 - center, ry - zero_rank))
    sxx = s * (s * s - 1.0) / 12.0
    syy = zeros * zero_rank**2 + float(np.dot(ry, ry)) - s * center**2
    if syy <= 0:
        return 0.0
    return max(-1.0, min(1.0, num / math.sqrt(sxx * syy)))


def _t_pvalue(rho: float, n_steps: int) -> float:
    """One-sided (rho > 0) t-approximation p of Spearman's rho over n_steps points."""
    if rho >= 1.0:
        return 0.0
    if rho <= -1.0:
        return 1.0
    df = n_steps - 2
    t = rho * math.sqrt(df / ((1.0 - rho) * (1.0 + rho)))
    return float(math.exp(t_logsf(t, df)))


def ngram_test(
    index: MatchIndex,
    texts: Sequence[Sequence[int]],
    *,
    n_permutations: int = 999,
    min_length: int = 2,
    skip_tail: bool = True,
    max_occurrences: int | None = None,
    empty_steps: EmptySteps = "keep",
    blocks: Sequence[Any] | np.ndarray | None = None,
    seed: int = 0,
) -> NGramResult:
    """Spearman(step, match count per step) with a document-level permutation p-value (H1: rho > 0).

    `texts` are the suspect's token ids (same tokenizer as the index). Permuting which documents sit at
    which step is exact under Alice's uniformly random order (within `blocks`, default the index's).
    `empty_steps="keep"` correlates over every step from the first to the last (the paper's histogram);
    `"drop"` only over steps that hold a document.
    """
    if isinstance(texts, str) or len(texts) == 0 or all(len(t) == 0 for t in texts):
        raise DataError("no suspect tokens given; pass a non-empty list of token-id sequences.")
    if n_permutations < 1:
        raise ConfigError(f"n_permutations must be >= 1, got {n_permutations}.")
    if empty_steps not in _EMPTY_STEPS:
        raise ConfigError(f"empty_steps must be one of {_EMPTY_STEPS}, got {empty_steps!r}.")
    _check_options(index, min_length, max_occurrences)
    doc_steps = np.asarray(index.doc_steps, dtype=np.int64)
    distinct, dense = np.unique(doc_steps, return_inverse=True)
    if distinct.size < 3:
        raise DataError(
            f"the transcript has {distinct.size} distinct training steps; the rank test needs at least 3 "
            "(check the step column)."
        )
    if empty_steps == "keep":  # every step from the first to the last, with or without documents
        axis, n_steps = doc_steps - distinct[0], int(distinct[-1] - distinct[0]) + 1
    else:
        axis, n_steps = dense.astype(np.int64), int(distinct.size)
    if blocks is None:
        blocks = getattr(index, "blocks", None)
    blk = None if blocks is None else np.asarray(blocks)
    if blk is not None and blk.shape != (doc_steps.size,):
        raise DataError(f"blocks must have one entry per document ({doc_steps.size}), got {blk.shape}.")
    doc_counts, n_positions = _match_counts(index, texts, min_length, skip_tail, max_occurrences)
    n_tok = int(sum(len(t) for t in texts))
    matched = np.flatnonzero(doc_counts)
    weights = doc_counts[matched]
    common = {
        "n_matches": int(doc_counts.sum()),
        "n_tokens": n_tok,
        "n_positions": n_positions,
        "n_steps": n_steps,
        "n_permutations": n_permutations,
        "max_n": int(index.max_n),
        "min_length": min_length,
        "skip_tail": skip_tail,
        "empty_steps": empty_steps,
        "max_occurrences": max_occurrences,
    }
    if matched.size == 0:
        logger.warning("n-gram test: no suspect span matched the index; p = 1")
        return NGramResult(0.0, 1.0, 0.0, 1.0, **common)  # type: ignore[arg-type]
    observed = _spearman_sparse(axis[matched], weights, n_steps)
    # under H0 the matched documents' steps are a uniform draw without replacement from their block's
    if blk is None:
        groups = [np.arange(doc_steps.size)]
    else:
        groups = [np.flatnonzero(blk == b) for b in np.unique(blk)]
    member = [np.flatnonzero(np.isin(matched, g, assume_unique=True)) for g in groups]
    pools = [(axis[g], m) for g, m in zip(groups, member, strict=True) if m.size]
    rng = np.random.default_rng(seed)
    new_axis = np.empty(matched.size, dtype=np.int64)
    null = np.empty(n_permutations)
    for i in range(n_permutations):
        for pool, m in pools:
            new_axis[m] = pool[rng.choice(pool.size, size=m.size, replace=False)]
        null[i] = _spearman_sparse(new_axis, weights, n_steps)
    p = permutation_pvalue(observed, null, "greater")
    return NGramResult(
        statistic=observed,
        pvalue=p,
        log10_pvalue=math.log10(p),
        spearman_pvalue=_t_pvalue(observed, n_steps),
        null=null,
        **common,  # type: ignore[arg-type]
    )
