"""Transcript construction, sampling, loading and its clear errors (no models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from palimpsest import Transcript, TranscriptError


def _toy(n: int = 10) -> Transcript:
    return Transcript(positions=np.arange(n) * 3, token_ids=tuple((1, i + 2, i + 3) for i in range(n)))


def test_duplicate_positions_raise():
    with pytest.raises(TranscriptError, match="duplicate positions"):
        Transcript(positions=[0, 1, 1], token_ids=((1,), (2,), (3,)))


def test_empty_inputs_raise():
    with pytest.raises(TranscriptError, match="empty"):
        Transcript(positions=[], token_ids=())
    with pytest.raises(TranscriptError, match="no tokens"):
        Transcript(positions=[0, 1], token_ids=((1,), ()))
    with pytest.raises(TranscriptError, match="empty text"):
        Transcript(positions=[0, 1], texts=("a", ""))
    with pytest.raises(TranscriptError, match="token_ids or texts"):
        Transcript(positions=[0])
    with pytest.raises(TranscriptError, match="one entry per example"):
        Transcript(positions=[0, 1], token_ids=((1,),))


def test_sample_uniform_sorted_and_bounded():
    t = _toy(50)
    s = t.sample(20, seed=3)
    assert len(s) == 20 and np.all(np.diff(s.positions) > 0)
    assert t.sample(20, seed=3).token_ids == s.token_ids
    assert t.sample(None) is t
    with pytest.raises(TranscriptError, match="larger than the transcript"):
        t.sample(51)
    with pytest.raises(TranscriptError, match="too small"):
        t.sample(2)
    # uniform: each example is drawn with probability n/N
    hits = np.zeros(50)
    for seed in range(400):
        hits[t.sample(10, seed=seed).positions // 3] += 1
    assert hits.min() > 40 and hits.max() < 130


def test_first_occurrence_drops_repeats():
    examples = [(1, 5), (1, 6), (1, 7)]
    order = [2, 0, 1, 0, 2, 1]  # a second epoch
    t = Transcript.first_occurrence(examples, order, batch_size=2)
    assert t.token_ids == ((1, 7), (1, 5), (1, 6))
    np.testing.assert_array_equal(t.positions, [0, 1, 2])
    np.testing.assert_array_equal(t.steps, [0, 0, 1])
    with pytest.raises(TranscriptError, match="outside"):
        Transcript.first_occurrence(examples, [0, 3])


def test_load_jsonl_and_parquet_with_blocks_and_losses(tmp_path):
    import pandas as pd

    rows = [
        {"index": 10 * i, "tokens": [1, i + 2], "stage": i // 3, "loss_m_main": [0.5, 1.0 + i]}
        for i in range(6)
    ]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pd.DataFrame(rows).to_parquet(tmp_path / "t.parquet")
    for name in ("t.jsonl", "t.parquet"):
        t = Transcript.load(tmp_path / name, block_column="stage")
        np.testing.assert_array_equal(t.positions, [0, 10, 20, 30, 40, 50])
        np.testing.assert_array_equal(t.blocks, [0, 0, 0, 1, 1, 1])
        np.testing.assert_allclose(
            t.losses["loss_m_main"], [0.75 + i / 2 for i in range(6)]
        )  # per-token mean
    with pytest.raises(TranscriptError, match="block column"):
        Transcript.load(tmp_path / "t.jsonl", block_column="nope")
    (tmp_path / "t.csv").write_text("index,tokens\n")
    with pytest.raises(TranscriptError, match="unknown transcript format"):
        Transcript.load(tmp_path / "t.csv")


def test_missing_hub_dataset_offline_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TranscriptError, match="could not load transcript"):
        Transcript.load("nobody/no-such-transcript-dataset", subset="x")


def test_save_jsonl_roundtrip(tmp_path):
    t = _toy(5)
    back = Transcript.load(t.save_jsonl(tmp_path / "x.jsonl"))
    assert back.token_ids == t.token_ids
    np.testing.assert_array_equal(back.positions, t.positions)
