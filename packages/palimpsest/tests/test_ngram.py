"""The n-gram index against brute force, and the n-gram test's validity and power."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from palimpsest import NGramIndex, match_counts, ngram_test


def _brute_longest(docs, text, start, max_n):
    best, occ = 0, []
    for n in range(1, min(max_n, len(text) - start) + 1):
        q = list(text[start : start + n])
        hits = [d for d, doc in enumerate(docs) for i in range(len(doc) - n + 1) if list(doc[i : i + n]) == q]
        if not hits:
            break
        best, occ = n, hits
    return best, sorted(occ)


def test_longest_match_equals_brute_force():
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 6, size=rng.integers(1, 15)).tolist() for _ in range(40)]
    index = NGramIndex(docs, np.arange(40) // 4, max_n=5)
    for _ in range(300):
        text = rng.integers(0, 7, size=8).tolist()  # token 6 never occurs
        start = int(rng.integers(0, 8))
        length, found = index.longest_match(text, start)
        exp_len, exp_docs = _brute_longest(docs, text, start, 5)
        assert length == exp_len
        assert sorted(found.tolist()) == exp_docs


def test_count_and_document_boundaries():
    index = NGramIndex([[1, 2, 3], [4, 5], [1, 2]], [0, 1, 2], max_n=4)
    assert index.count([1, 2]) == 2
    assert index.count([3, 4]) == 0  # never across a document end
    assert index.count([7]) == 0
    assert index.longest_match([1, 2, 3, 4], 0)[0] == 3
    with pytest.raises(ValueError, match="n-gram length"):
        index.count([1, 2, 3, 4, 5])


def test_match_counts_counts_every_occurrence():
    index = NGramIndex([[1, 2], [1, 2], [3]], [0, 1, 2], max_n=2)
    np.testing.assert_array_equal(match_counts(index, [[1, 2]]), [2, 2, 0])  # "1 2" then "2"


def _corpus(rng, n_docs=300, length=12, vocab=50):
    return [rng.integers(0, vocab, size=length).tolist() for _ in range(n_docs)]


def test_ngram_null_calibrated():
    """Texts copied from random documents (independent of the order): permutation p ~ uniform."""
    rng = np.random.default_rng(1)
    docs = _corpus(rng)
    texts = [docs[i] for i in rng.choice(300, 40)]
    p = []
    for rep in range(60):
        steps = rng.permutation(300) // 10  # a fresh random order each time
        index = NGramIndex(docs, steps, max_n=6)
        p.append(ngram_test(index, texts, n_permutations=99, seed=rep).pvalue)
    assert scipy.stats.kstest(p, "uniform").pvalue > 0.001


def test_ngram_power_on_late_documents():
    rng = np.random.default_rng(2)
    docs = _corpus(rng)
    steps = rng.permutation(300) // 10
    late = np.flatnonzero(steps >= 20)
    texts = [docs[i] for i in rng.choice(late, 60)]
    res = ngram_test(NGramIndex(docs, steps, max_n=6), texts, n_permutations=199)
    assert res.statistic > 0
    assert res.pvalue == pytest.approx(1 / 200)


def test_ngram_bad_inputs():
    index = NGramIndex([[1, 2], [3, 4], [5, 6]], [0, 1, 2])
    with pytest.raises(ValueError, match="no suspect tokens"):
        ngram_test(index, [])
    with pytest.raises(ValueError, match="no suspect tokens"):
        ngram_test(index, [[]])
    with pytest.raises(ValueError, match="max_n"):
        NGramIndex([[1]], [0], max_n=0)
    with pytest.raises(ValueError, match="one entry per document"):
        NGramIndex([[1], [2]], [0])
