"""`palimpsest ngram`: the step column is read (given or a 'step' column), and the paper's defaults hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from palimpsest.cli import main
from reprokit.testing import check_bad_input, run_main

N_DOCS, PER_STEP = 240, 4  # 240 documents at 60 steps


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ngram-cli")
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 40, size=12).tolist() for _ in range(N_DOCS)]
    order = rng.permutation(N_DOCS)
    rows = [{"index": int(i), "tokens": docs[i], "step": int(i) // PER_STEP} for i in order]
    late = [docs[i] for i in range(N_DOCS) if i // PER_STEP >= 45][:30]
    return {
        "dir": d,
        "with_step": _jsonl(d / "alice.jsonl", rows),
        "no_step": _jsonl(d / "alice-nostep.jsonl", [{k: r[k] for k in ("index", "tokens")} for r in rows]),
        "other_step": _jsonl(
            d / "alice-batch.jsonl",
            [{"index": r["index"], "tokens": r["tokens"], "batch": r["step"]} for r in rows],
        ),
        "texts": _jsonl(d / "bob.jsonl", [{"tokens": t} for t in late]),
    }


def _ngram(files: dict[str, Path], transcript: str, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "result.json"
    argv = ["ngram", "--transcript", str(files[transcript]), "--texts", str(files["texts"])]
    assert run_main(main, [*argv, "--permutations", "99", "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_a_step_column_is_read_without_being_named(files, tmp_path, capsys):
    res = _ngram(files, "with_step", tmp_path)
    assert res["n_steps"] == 60  # not 240 (one per position)
    assert res["steps_from"] == "column 'step'"
    assert "steps from column 'step': 60 steps" in capsys.readouterr().out
    # Bob copies late documents: with steps read correctly the test sees it
    assert res["statistic"] > 0.3 and res["pvalue"] == pytest.approx(0.01)


def test_paper_defaults_in_the_output(files, tmp_path):
    res = _ngram(files, "with_step", tmp_path)
    assert (res["max_n"], res["min_length"], res["skip_tail"], res["empty_steps"]) == (9, 2, True, "keep")
    assert res["n_positions"] == 30 * (12 - 8)
    assert res["max_occurrences"] is None
    tail = _ngram(files, "with_step", tmp_path, "--keep-tail", "--max-n", "4", "--min-length", "3")
    assert (tail["n_positions"], tail["max_n"], tail["min_length"]) == (30 * 12, 4, 3)


def test_named_step_column_and_positions_as_fallback(files, tmp_path):
    named = _ngram(files, "other_step", tmp_path, "--step-column", "batch")
    assert (named["n_steps"], named["steps_from"]) == (60, "column 'batch'")
    fallback = _ngram(files, "no_step", tmp_path)
    assert (fallback["n_steps"], fallback["steps_from"]) == (N_DOCS, "position column 'index'")
    dropped = _ngram(files, "no_step", tmp_path, "--empty-steps", "drop")
    assert dropped["empty_steps"] == "drop" and dropped["n_steps"] == N_DOCS


@pytest.mark.parametrize(
    ("transcript", "extra", "phrase"),
    [
        ("with_step", ["--step-column", "batch"], "step column 'batch' not in the transcript"),
        ("other_step", ["--step-column", "step"], "step column 'step' not in the transcript"),
        ("with_step", ["--min-length", "5", "--max-n", "4"], "--min-length 5 is longer than --max-n 4"),
        ("with_step", ["--empty-steps", "none"], "invalid choice"),
        ("with_step", ["--max-occurrences", "0"], "positive integer"),
    ],
)
def test_bad_ngram_options(files, tmp_path, capsys, transcript, extra, phrase):
    work = tmp_path / "work"
    work.mkdir()
    argv = ["ngram", "--transcript", str(files[transcript]), "--texts", str(files["texts"]), *extra]
    check_bad_input(
        main, argv, prog="palimpsest", phrase=phrase, workdir=work, inputs=files["dir"], capsys=capsys
    )
