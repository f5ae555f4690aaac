"""reproduce/palimpsest.py through the shared runner: the smoke config end to end; bad input refused early."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from reprokit.testing import check_bad_reproduce_config, check_smoke_output, run_reproduce

ROOT = Path(__file__).resolve().parents[1]
TABLES = [
    "table_query",
    "table_reference_ablation",
    "table_null_calibration",
    "table_reshuffle_tokens",
    "table_reshuffle_fraction",
    "table_finetune_robustness",
    "table_ngram_tokens",
]
FIGURES = ["figure1.png", "figure_null_qq.png", "figure_tokens.png"]
CLAIMS = [
    "query_derived_tiny_p",
    "reference_gain",
    "same_data_reference_best",
    "null_uniform",
    "null_fpr",
    "null_models_not_flagged",
    "reshuffle_few_hundred_tokens",
    "ngram_needs_more_tokens",
    "finetune_weakens_reshuffle",
    "distillation_weakens_query",
]


def _script(*args: str | Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_reproduce(ROOT, "palimpsest", *args, cache=cache)


@pytest.mark.slow
def test_reproduce_palimpsest_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _script("--smoke", "--out", out, cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = check_smoke_output(out, "palimpsest", TABLES, FIGURES)
    assert "seed" not in manifest["config"]["tiny"]["setup"]  # the seed comes from --seed only

    # Per-seed tables hold both seeds, and seeds differ (each seed is its own world and training);
    # the mean table has the across-seed interval.
    per_seed = pd.read_csv(out / "table_query_per_seed.csv")
    assert sorted(per_seed["seed"].unique()) == [0, 1]
    alice = per_seed[per_seed["suspect"] == "alice"].set_index("seed")["log10_p"]
    assert alice[0] != alice[1]
    mean = pd.read_csv(out / "table_query.csv").set_index("suspect")
    assert mean.loc["alice", "log10_p"] == pytest.approx(alice.mean())
    assert mean.loc["alice", "log10_p_lo"] < alice.mean() < mean.loc["alice", "log10_p_hi"]
    assert "p" not in mean.columns and "p" in per_seed.columns  # text columns have no mean
    tokens = pd.read_csv(out / "table_reshuffle_tokens.csv")
    assert list(tokens["target"]) == ["100", "all"] and (tokens["n_seeds"] == 2).all()

    claims = json.loads((out / "claims.json").read_text())["claims"]
    assert [c["id"] for c in claims] == CLAIMS
    for c in claims:
        assert isinstance(c["holds"], bool) and isinstance(c["holds_interval"], bool), c["id"]
        assert c["source"].startswith("arXiv 2510.19796"), c["id"]
        assert len(c["per_seed"]) == 2 or c["id"] == "null_fpr", c["id"]
        assert c["method"] in ("Student-t across seeds", "exact binomial"), c["id"]
    fpr = next(c for c in claims if c["id"] == "null_fpr")
    low, high = fpr["interval"]
    assert low <= fpr["measured"] <= high and fpr["method"] == "exact binomial"
    assert {c["id"] for c in claims if c["sanity"]} == {"null_uniform", "null_fpr"}  # not paper claims
    ngram = pd.read_csv(out / "table_ngram_tokens.csv")
    assert {"perm_p", "perm_p_single"} <= set(ngram.columns)
    sweep = pd.read_csv(out / "table_finetune_robustness.csv").set_index("suspect")
    assert sweep.loc["ft-lr0.1-tok0.05", "lr_fraction"] == pytest.approx(0.1)
    assert 0.02 < sweep.loc["ft-lr1-tok0.5", "token_fraction"] < 1.0
    t = next(c for c in claims if c["id"] == "reference_gain")
    assert t["measured"] == pytest.approx(sum(t["per_seed"]) / 2)

    report = (out / "REPORT.md").read_text()
    assert "Ours vs paper" in report and "mean over 2 independent seeds" in report
    assert "**Sanity checks**" in report
    assert "shared/papers" not in report


def _bad_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("toml", "phrase"),
    [
        ("[tiny]\nn_seed = 2\n", "unknown config key(s) ['n_seed'] in [tiny]"),
        ("[tiny.setup]\nseed = 3\n", "unknown config key(s) ['seed'] in [tiny.setup]"),
        ("[tiny]\nk = 'nineteen'\n", "'tiny.k' must be int, got 'nineteen'"),
        ("[tiny.setup]\nlr = true\n", "'tiny.setup.lr' must be float, got True"),
        ("[paper.query]\nbatch_size = 1.5\n", "'paper.query.batch_size' must be int"),
        ("[tiny]\nreference = 'nope'\n", "reference 'nope' is not one of setup.references"),
    ],
)
def test_config_errors_exit_2_with_one_line(tmp_path: Path, toml: str, phrase: str) -> None:
    check_bad_reproduce_config(ROOT, "palimpsest", tmp_path, toml, phrase)


def test_out_under_a_file_fails_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    proc = _script("--smoke", "--out", blocker / "out", cache=tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "is a file" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert blocker.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no cache, no staging folder


def test_paper_scale_preflight_lists_every_missing_model(tmp_path: Path) -> None:
    config = _bad_config(
        tmp_path,
        "[paper]\nsuspects = ['nobody/suspect-a', 'nobody/suspect-b']\nreference = 'nobody/reference'\n"
        "nulls = []\nablation_references = []\nolmo_revisions = []\n",
    )
    out = tmp_path / "out"
    proc = _script("--scale", "paper", "--config", config, "--out", out, cache=tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    for name in ("nobody/suspect-a", "nobody/suspect-b", "nobody/reference", "hij/sequence_samples"):
        assert name in line
    assert not out.exists()
