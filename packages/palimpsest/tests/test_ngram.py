"""The n-gram index against brute force, the paper's matching rules, and the test's validity and power."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from palimpsest import InfiniGramIndex, NGramIndex, match_counts, ngram_test
from palimpsest.ngram import _spearman_sparse


def _brute_longest(docs, text, start, max_n, min_length=1):
    best, occ = 0, []
    for n in range(1, min(max_n, len(text) - start) + 1):
        q = list(text[start : start + n])
        hits = [d for d, doc in enumerate(docs) for i in range(len(doc) - n + 1) if list(doc[i : i + n]) == q]
        if not hits:
            break
        best, occ = n, hits
    return (best, sorted(occ)) if best >= min_length else (0, [])


class BruteIndex:
    """The protocol by exhaustive search: the reference the suffix array must agree with."""

    def __init__(self, docs, steps, max_n):
        self.docs, self.doc_steps, self.max_n, self.n_documents = docs, np.asarray(steps), max_n, len(docs)

    def longest_match(self, tokens, start, *, min_length=1, max_occurrences=None):
        n, occ = _brute_longest(self.docs, tokens, start, self.max_n, min_length)
        if max_occurrences is not None and len(occ) > max_occurrences:
            occ = []
        return n, np.asarray(occ, dtype=np.int64)


def _random_docs(rng, n_docs=40, vocab=6, max_len=15):
    return [rng.integers(0, vocab, size=rng.integers(0, max_len)).tolist() for _ in range(n_docs)]


def test_longest_match_equals_brute_force():
    rng = np.random.default_rng(0)
    docs = _random_docs(rng)
    index = NGramIndex(docs, np.arange(40) // 4, max_n=5)
    for _ in range(300):
        text = rng.integers(0, 7, size=8).tolist()  # token 6 never occurs
        start = int(rng.integers(0, 8))
        min_length = int(rng.integers(1, 4))
        length, found = index.longest_match(text, start, min_length=min_length)
        exp_len, exp_docs = _brute_longest(docs, text, start, 5, min_length)
        assert length == exp_len
        assert sorted(found.tolist()) == exp_docs


@pytest.mark.parametrize("skip_tail", [True, False])
@pytest.mark.parametrize("min_length", [1, 2, 3])
@pytest.mark.parametrize("max_occurrences", [None, 3])
def test_vectorized_counts_equal_position_by_position(skip_tail, min_length, max_occurrences):
    rng = np.random.default_rng(min_length + 10 * skip_tail)
    docs = _random_docs(rng, n_docs=60, vocab=5)
    steps = np.arange(60) // 6
    texts = [rng.integers(0, 6, size=rng.integers(0, 12)).tolist() for _ in range(25)]
    kw = {"min_length": min_length, "skip_tail": skip_tail, "max_occurrences": max_occurrences}
    fast = match_counts(NGramIndex(docs, steps, max_n=4), texts, **kw)
    slow = match_counts(BruteIndex(docs, steps, 4), texts, **kw)
    np.testing.assert_array_equal(fast, slow)
    assert fast.sum() > 0


def test_large_vocabulary_and_unknown_tokens():
    """Token ids above 65,533 switch the stream to 32 bits; ids the index never saw never match."""
    rng = np.random.default_rng(3)
    docs = [(rng.integers(0, 4, size=10) * 40_000).tolist() for _ in range(30)]
    index = NGramIndex(docs, np.arange(30), max_n=4)
    text = [*docs[7][2:8], 10**9, -5, *docs[3][:3]]
    for p in range(len(text)):
        assert index.longest_match(text, p)[0] == _brute_longest(docs, text, p, 4)[0]
        got = sorted(index.longest_match(text, p)[1].tolist())
        assert got == _brute_longest(docs, text, p, 4)[1]


def test_count_and_document_boundaries():
    index = NGramIndex([[1, 2, 3], [4, 5], [], [1, 2]], [0, 1, 2, 3], max_n=4)
    assert index.count([1, 2]) == 2
    assert index.count([3, 4]) == 0  # never across a document end
    assert index.count([7]) == 0
    assert index.longest_match([1, 2, 3, 4], 0)[0] == 3
    length, docs = index.longest_match([5, 1, 2], 0, min_length=2)
    assert (length, docs.size) == (0, 0)
    np.testing.assert_array_equal(np.sort(index.longest_match([1, 2], 0)[1]), [0, 3])
    with pytest.raises(ValueError, match="n-gram length"):
        index.count([1, 2, 3, 4, 5])


def test_paper_defaults_skip_the_tail_and_single_tokens():
    """Spans of 2..9 tokens; only positions with a full 9-token window (the official loop)."""
    doc = list(range(20))
    index = NGramIndex([doc, [0], [50, 51]], [0, 1, 2])
    assert index.max_n == 9
    text = doc[:12]  # 12 tokens: positions 0..3 have a full window
    np.testing.assert_array_equal(match_counts(index, [text]), [4, 0, 0])
    # every position; the last one (a single token) is too short for min_length=2
    np.testing.assert_array_equal(match_counts(index, [text], skip_tail=False), [11, 0, 0])
    # position 0 of "0 99": longest span is the single token 0, counted only with min_length=1
    np.testing.assert_array_equal(match_counts(index, [[0, 99]], skip_tail=False), [0, 0, 0])
    np.testing.assert_array_equal(match_counts(index, [[0, 99]], skip_tail=False, min_length=1), [1, 1, 0])
    res = ngram_test(index, [text] * 3, n_permutations=9)
    assert (res.n_positions, res.n_tokens, res.max_n, res.min_length) == (12, 36, 9, 2)
    assert ngram_test(index, [text[:8]], n_permutations=9).n_positions == 0


def test_max_occurrences_skips_popular_spans():
    index = NGramIndex([[1, 2], [1, 2], [1, 2], [3, 4]], [0, 1, 2, 3], max_n=2)
    np.testing.assert_array_equal(match_counts(index, [[1, 2, 3, 4]]), [1, 1, 1, 1])
    np.testing.assert_array_equal(match_counts(index, [[1, 2, 3, 4]], max_occurrences=2), [0, 0, 0, 1])


@pytest.mark.parametrize("n_steps", [5, 40, 300_000])  # the last: sorted sparse path, no histogram
def test_sparse_spearman_equals_scipy_with_ties(n_steps):
    rng = np.random.default_rng(n_steps)
    for _ in range(50 if n_steps < 1000 else 5):
        step_idx = rng.integers(0, n_steps, size=rng.integers(1, 12))
        weights = rng.integers(1, 4, size=step_idx.size).astype(float)
        dense = np.bincount(step_idx, weights=weights, minlength=n_steps)
        expected = scipy.stats.spearmanr(np.arange(n_steps), dense).statistic
        expected = 0.0 if np.isnan(expected) else expected
        assert _spearman_sparse(step_idx, weights, n_steps) == pytest.approx(expected, abs=1e-12)


def test_empty_steps_kept_or_dropped():
    """Steps 0, 10, 20, ...: 'keep' correlates over all 91 steps (zeros between), 'drop' over the 10."""
    rng = np.random.default_rng(4)
    docs = [rng.integers(0, 30, size=8).tolist() for _ in range(10)]
    steps = np.arange(10) * 10
    index = NGramIndex(docs, steps, max_n=8)
    texts = [docs[9], docs[9], docs[8], docs[2]]
    counts = match_counts(index, texts)
    kept = ngram_test(index, texts, n_permutations=19)
    dropped = ngram_test(index, texts, n_permutations=19, empty_steps="drop")
    assert (kept.n_steps, dropped.n_steps) == (91, 10)
    dense = np.zeros(91)
    np.add.at(dense, steps, counts)
    assert kept.statistic == pytest.approx(scipy.stats.spearmanr(np.arange(91), dense).statistic)
    assert dropped.statistic == pytest.approx(scipy.stats.spearmanr(np.arange(10), counts).statistic)
    assert kept.statistic != pytest.approx(dropped.statistic)


def _corpus(rng, n_docs=300, length=12, vocab=50):
    return [rng.integers(0, vocab, size=length).tolist() for _ in range(n_docs)]


@pytest.mark.parametrize("empty_steps", ["keep", "drop"])
def test_ngram_null_calibrated(empty_steps):
    """Texts copied from random documents (independent of the order): permutation p ~ uniform."""
    rng = np.random.default_rng(1)
    docs = _corpus(rng)
    texts = [docs[i] for i in rng.choice(300, 40)]
    p = []
    for rep in range(60):
        steps = rng.permutation(300) // 10 * 3  # a fresh random order; steps 0, 3, 6, ...
        index = NGramIndex(docs, steps)
        res = ngram_test(index, texts, n_permutations=99, seed=rep, empty_steps=empty_steps)
        p.append(res.pvalue)
    assert scipy.stats.kstest(p, "uniform").pvalue > 0.001


def test_ngram_power_on_late_documents():
    rng = np.random.default_rng(2)
    docs = _corpus(rng)
    steps = rng.permutation(300) // 10
    late = np.flatnonzero(steps >= 20)
    texts = [docs[i] for i in rng.choice(late, 60)]
    res = ngram_test(NGramIndex(docs, steps), texts, n_permutations=199)
    assert res.statistic > 0.5
    assert res.pvalue == pytest.approx(1 / 200)
    assert res.spearman_pvalue < 1e-3


def test_blocks_permute_only_within_stages():
    """Stage 2 holds the late steps; matching only stage-2 documents is no evidence within stages."""
    rng = np.random.default_rng(5)
    docs = _corpus(rng, n_docs=200)
    blocks = np.repeat([0, 1], 100)
    steps = np.concatenate([rng.permutation(100) // 10, 10 + rng.permutation(100) // 10])
    texts = [docs[i] for i in rng.choice(np.arange(100, 200), 40)]
    free = ngram_test(NGramIndex(docs, steps), texts, n_permutations=199)
    staged = ngram_test(NGramIndex(docs, steps, blocks=blocks), texts, n_permutations=199)
    assert free.pvalue == pytest.approx(1 / 200)
    assert staged.pvalue > 0.05
    # the null never moves a stage-2 document out of steps 10..19, so it is as late as the observed rho
    assert staged.null.mean() > 0.5


def test_ngram_bad_inputs():
    index = NGramIndex([[1, 2], [3, 4], [5, 6]], [0, 1, 2])
    with pytest.raises(ValueError, match="no suspect tokens"):
        ngram_test(index, [])
    with pytest.raises(ValueError, match="no suspect tokens"):
        ngram_test(index, [[]])
    with pytest.raises(ValueError, match="empty_steps"):
        ngram_test(index, [[1, 2]], empty_steps="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="longer than the longest span"):
        ngram_test(NGramIndex([[1]], [0], max_n=2), [[1, 2]], min_length=3)
    with pytest.raises(ValueError, match="max_occurrences"):
        match_counts(index, [[1, 2]], max_occurrences=0)
    with pytest.raises(ValueError, match="2 distinct training steps"):
        ngram_test(NGramIndex([[1, 2], [3, 4], [5, 6]], [0, 7, 7]), [[1, 2]])
    with pytest.raises(ValueError, match="max_n"):
        NGramIndex([[1]], [0], max_n=0)
    with pytest.raises(ValueError, match="one entry per document"):
        NGramIndex([[1], [2]], [0])
    with pytest.raises(ValueError, match="whole numbers"):
        NGramIndex([[1], [2]], [0.5, 1.0])
    with pytest.raises(ValueError, match="token ids must lie"):
        NGramIndex([[1, -1]], [0])


def test_no_match_gives_p_one():
    index = NGramIndex([[1, 2], [3, 4], [5, 6]], [0, 1, 2])
    res = ngram_test(index, [[7, 8, 9, 7, 8, 9, 7, 8, 9]], n_permutations=9)
    assert (res.pvalue, res.n_matches, res.n_positions) == (1.0, 0, 1)


def test_infinigram_adapter_agrees_with_suffix_array(tmp_path):
    pytest.importorskip("infini_gram.engine")
    rng = np.random.default_rng(6)
    docs = _random_docs(rng, n_docs=50, vocab=5)
    steps = np.arange(50) // 5
    texts = [rng.integers(0, 6, size=12).tolist() for _ in range(10)]
    ig = InfiniGramIndex.build(docs, steps, tmp_path / "ig", max_n=4)
    sa = NGramIndex(docs, steps, max_n=4)
    for kw in ({}, {"min_length": 1, "skip_tail": False}, {"max_occurrences": 3}):
        np.testing.assert_array_equal(match_counts(ig, texts, **kw), match_counts(sa, texts, **kw))
