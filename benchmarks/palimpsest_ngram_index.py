"""n-gram index for the palimpsest n-gram test: lookups per second and bytes per token, on one synthetic text.

Indexes ~1M and ~10M tokens of Zipf-distributed tokens (vocabulary 50k, documents of 64 tokens) and
resolves greedy longest matches (2..9 tokens, every occurrence's document) at positions of a suspect text
made of corpus windows with 30% of tokens replaced. Candidates:

- suffix array (the default `NGramIndex`: pydivsufsort build, vectorized search, difference-array counts);
- v1: the index it replaces (k-truncated windows sorted with np.lexsort, one position per Python call),
  measured at 1M tokens only (about 40 bytes per token and minutes at 10M);
- the same suffix array built by numpy prefix doubling (no library), build time only;
- infini-gram (`pip install infini-gram`; skipped when absent): its own on-disk indexer, one `find` per
  span length and one `get_doc_by_rank` per occurrence (as the official code does).

Prints build seconds, lookups/s and bytes/token of each, and the ratios of the default to the others.
Every candidate's document counts are checked against the default's on a shared sample of positions.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from palimpsest.ngram import InfiniGramIndex, NGramIndex, match_counts

VOCAB, DOC_LEN, MAX_N = 50_000, 64, 9
SIZES = (1_000_000, 10_000_000)
N_FAST, N_V1, N_IG = 200_000, 1_500, 200  # positions timed: vectorized index, v1, infini-gram


def corpus(n_tokens: int, seed: int = 0) -> list[np.ndarray]:
    """Zipf(1.2) tokens folded into the vocabulary, in documents of DOC_LEN tokens."""
    rng = np.random.default_rng(seed)
    tokens = (rng.zipf(1.2, size=n_tokens) - 1) % VOCAB
    return list(tokens.reshape(-1, DOC_LEN))


def suspect(docs: list[np.ndarray], n_positions: int, seed: int = 1) -> list[list[int]]:
    """Texts of 2*MAX_N tokens copied from random documents with 30% of tokens replaced at random."""
    rng = np.random.default_rng(seed)
    n_texts = n_positions // (MAX_N + 1) + 1
    texts = []
    for d in rng.integers(0, len(docs), n_texts):
        start = int(rng.integers(0, DOC_LEN - 2 * MAX_N))
        text = docs[d][start : start + 2 * MAX_N].copy()
        swap = rng.random(text.size) < 0.3
        text[swap] = rng.integers(0, VOCAB, int(swap.sum()))
        texts.append(text.tolist())
    return texts


class V1Index:
    """The index before v2 (ngram.py at 5587d15), kept here only as the baseline."""

    def __init__(self, documents, steps, *, max_n: int = MAX_N):
        self.max_n, self.n_documents = max_n, len(documents)
        self.doc_steps = np.asarray(steps, dtype=np.int64)
        lengths = np.array([len(d) for d in documents], dtype=np.int64)
        stream = np.concatenate([np.asarray(d, dtype=np.int64) for d in documents])
        doc_of = np.repeat(np.arange(self.n_documents, dtype=np.int32), lengths)
        end_of = np.repeat(np.cumsum(lengths), lengths)
        windows = np.full((stream.size, max_n), -1, dtype=np.int32)
        pos = np.arange(stream.size)
        for j in range(max_n):
            ok = pos + j < end_of
            windows[ok, j] = stream[pos[ok] + j]
        order = np.lexsort(windows.T[::-1])
        self._sorted = np.ascontiguousarray(windows[order].T)
        self._doc_sorted = doc_of[order]
        self.n_tokens = int(stream.size)
        self.nbytes = self._sorted.nbytes + self._doc_sorted.nbytes + self.doc_steps.nbytes

    def longest_match(self, tokens, start, *, min_length=1, max_occurrences=None):
        lo, hi, length = 0, self.n_tokens, 0
        for j in range(start, min(len(tokens), start + self.max_n)):
            col = self._sorted[j - start]
            new_lo = lo + int(np.searchsorted(col[lo:hi], tokens[j], side="left"))
            new_hi = lo + int(np.searchsorted(col[lo:hi], tokens[j], side="right"))
            if new_lo >= new_hi:
                break
            lo, hi, length = new_lo, new_hi, length + 1
        if length < max(min_length, 1):
            return 0, np.zeros(0, dtype=np.int64)
        return length, self._doc_sorted[lo:hi].astype(np.int64)


def prefix_doubling_sa(index: NGramIndex) -> np.ndarray:
    """The suffix array of the same stream by numpy prefix doubling (sorted by 16-token prefixes)."""
    stream = index._stream[: index.n_tokens + index.n_documents].astype(np.int64)
    n, rank, h = stream.size, stream, 1
    while h < MAX_N:
        nxt = np.zeros(n, dtype=np.int64)
        nxt[: n - h] = rank[h:]
        key = rank * (int(rank.max()) + 1) + nxt
        order = np.argsort(key)
        sk = key[order]
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.concatenate([[0], np.cumsum(sk[1:] != sk[:-1])])
        h *= 2
    order = np.argsort(rank, kind="stable")
    return order[stream[order] != 0]


def timed(fn, *args, **kwargs):
    """(fn's result, wall seconds it took)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def lookups_per_s(index, texts, n_positions: int) -> tuple[float, np.ndarray]:
    """Positions resolved per second (longest match and every occurrence's document) on `n_positions`."""
    take, total = [], 0
    for t in texts:
        take.append(t)
        total += len(t) - MAX_N + 1
        if total >= n_positions:
            break
    counts, dt = timed(match_counts, index, take)
    return total / dt, counts


def main() -> None:
    have_ig = importlib.util.find_spec("infini_gram") is not None
    rows = []
    for n_tok in SIZES:
        docs = corpus(n_tok)
        steps = np.arange(len(docs))
        texts = suspect(docs, N_FAST)
        index, t_build = timed(NGramIndex, docs, steps, max_n=MAX_N)
        fast, _ = lookups_per_s(index, texts, N_FAST)
        ref = {n: lookups_per_s(index, texts, n)[1] for n in (N_V1, N_IG)}
        rows.append((n_tok, "suffix array (default)", t_build, fast, index.nbytes / n_tok))
        sa, t_double = timed(prefix_doubling_sa, index)
        cols = np.arange(MAX_N)
        same = np.array_equal(index._stream[sa[:, None] + cols], index._stream[index._sa[:, None] + cols])
        rows.append((n_tok, f"numpy prefix doubling (same order: {same})", t_double, None, None))
        del sa
        if n_tok <= 1_000_000:
            v1, t_v1 = timed(V1Index, docs, steps)
            rate, counts = lookups_per_s(v1, texts, N_V1)
            assert np.array_equal(counts, ref[N_V1]), "v1 and the suffix array disagree"
            rows.append((n_tok, "v1 (lexsort windows, per call)", t_v1, rate, v1.nbytes / n_tok))
            del v1
        if have_ig:
            folder = Path(tempfile.mkdtemp(prefix="ngram-bench-"))
            try:
                ig, t_ig = timed(InfiniGramIndex.build, docs, steps, folder, max_n=MAX_N)
                rate, counts = lookups_per_s(ig, texts, N_IG)
                assert np.array_equal(counts, ref[N_IG]), "infini-gram and the suffix array disagree"
                disk = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
                rows.append((n_tok, "infini-gram (on disk, per call)", t_ig, rate, disk / n_tok))
                del ig
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        del index, docs
    print(f"{'tokens':>10}  {'index':<42} {'build s':>8} {'lookups/s':>11} {'bytes/token':>12}")
    for n_tok, name, t_b, rate, bpt in rows:
        rate_s = f"{rate:11.0f}" if rate else f"{'-':>11}"
        bpt_s = f"{bpt:12.1f}" if bpt else f"{'-':>12}"
        print(f"{n_tok:>10}  {name:<42} {t_b:8.2f} {rate_s} {bpt_s}")
    for n_tok in SIZES:
        here = {name: (t_b, rate, bpt) for n, name, t_b, rate, bpt in rows if n == n_tok}
        t0, r0, b0 = here.pop("suffix array (default)")
        for name, (t_b, rate, bpt) in here.items():
            parts = [f"build {t_b / t0:5.1f}x slower"]
            if rate:
                parts.append(f"lookups {r0 / rate:6.1f}x slower")
            if bpt:
                parts.append(f"{bpt / b0:4.1f}x the bytes/token")
            print(f"{n_tok:>10}  {name:<42} vs default: " + ", ".join(parts))
    if not have_ig:
        print("infini-gram not installed (pip install 'palimpsest[infinigram]'): not measured")


if __name__ == "__main__":
    main()
