"""reproduce/nudging.py through the shared runner: the smoke config end to end, resume, bad configs and
a bad --out (exit 2, one line, nothing written)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from reprokit.testing import check_bad_reproduce_config, run_reproduce

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("table_knowledge", "table1", "table1_ci", "table_cross_family", "table_uncertainty")


def _run(*args: str, cache: Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    return run_reproduce(ROOT, "nudging", *args, cache=cache, **env_vars)


def _pieces_by_seed(cache: Path) -> dict[int, int]:
    """How many finished system/task pieces the resume store holds per seed."""
    counts: dict[int, int] = {}
    for path in (cache / "runs" / "nudging").glob("*.json"):
        seed = json.loads(path.read_text())["parts"]["seed"]
        counts[seed] = counts.get(seed, 0) + 1
    return counts


def test_reproduce_nudging_smoke(tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    proc = _run("--smoke", "--out", str(out), cache=cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed" not in proc.stderr
    for name in (*TABLES, "table_gamma_sweep"):
        for ext in ("csv", "md", "tex"):
            assert (out / f"{name}.{ext}").is_file(), f"{name}.{ext} missing"
        assert (out / f"{name}_per_seed.csv").is_file(), f"{name}_per_seed.csv missing"
    for name in ("figure_uncertainty.png", "figure_gamma_sweep.png", "manifest.json", "REPORT.md"):
        assert (out / name).is_file(), name

    # Two seeds (smoke.toml): the seed changes the world, so the seeds' tables differ; the mean table
    # averages them.
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["seeds"] == [0, 1]
    per_seed = pd.read_csv(out / "table1_per_seed.csv")
    assert sorted(per_seed["seed"].unique()) == [0, 1]
    questions = pd.read_csv(out / "examples.csv").groupby("seed")["question"].apply(list)
    assert questions[0] != questions[1]
    mean = pd.read_csv(out / "table1.csv")
    assert (mean["n_seeds"] == 2).all() and {"avg_lo", "avg_hi"} <= set(mean.columns)
    nudging = per_seed[(per_seed.family == "llama") & (per_seed.model == "nudging")]["avg"]
    averaged = mean.loc[(mean.family == "llama") & (mean.model == "nudging"), "avg"].item()
    assert averaged == pytest.approx(nudging.mean())

    # Item-level tables reach the claims and are saved, every seed stacked, but stay out of the report.
    items = pd.read_csv(out / "table1_items.csv")
    assert sorted(items["seed"].unique()) == [0, 1] and set(items["correct"]) <= {0.0, 1.0}
    report = (out / "REPORT.md").read_text()
    assert "### table1_items" not in report and "### examples" not in report and "Ours vs paper" in report

    claims = json.loads((out / "claims.json").read_text())
    assert claims["n_total"] == 15 and claims["n_sanity"] == 4 == len(claims["claims"]) - 15
    premise = [c["id"] for c in claims["claims"] if c["sanity"]]
    kinds = ("opening", "alignment_is_style")
    assert premise == [f"premise_{kind}_{f}" for f in ("llama", "neox") for kind in kinds]
    assert "The paper's premise, checked before its claims" in report
    for c in claims["claims"]:
        assert isinstance(c["holds"], bool) and isinstance(c["holds_interval"], bool), c["id"]
        low, high = c["interval"]
        assert low <= high and c["method"] and c["source"], c["id"]
        assert len(c["per_seed"]) == 2, c["id"]
    methods = {c["id"]: c["method"] for c in claims["claims"]}
    assert "paired bootstrap" in methods["llama_nudging_beats_small"]
    assert "exact binomial" in methods["llama_uncertain_positions_are_few"]
    assert "paired bootstrap" in methods["robust_gamma_0.2_0.5"]
    assert "paired bootstrap" in methods["premise_opening_llama"]
    assert methods["llama_small_nudged_share"] == "bootstrap over items, seeds stacked"
    assert not any("t over seeds" in m for m in methods.values())
    run_on = pd.read_csv(out / "table_run_on.csv")
    assert {"run_on_%", "accuracy", "accuracy_first_paragraph"} <= set(run_on.columns)
    assert "Run-on (`table_run_on`" in report
    knowledge = pd.read_csv(out / "table_knowledge_items.csv")
    assert set(knowledge["probe"]) == {"fact", "arithmetic", "arithmetic_after_opening"}
    sweep = pd.read_csv(out / "table_gamma_sweep_items.csv")
    assert sorted(sweep["gamma"].unique()) == [0.2, 0.5] and sorted(sweep["seed"].unique()) == [0, 1]

    # Every system/task piece is saved per seed; a second run resumes them all and writes the same
    # tables; --fresh recomputes them (same seeds, same tables).
    pieces = _pieces_by_seed(cache)
    assert set(pieces) == {0, 1} and pieces[0] == pieces[1] > 0
    again = _run("--smoke", "--out", str(tmp_path / "again"), cache=cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("resumed a finished piece") == sum(pieces.values())
    fresh = _run("--smoke", "--out", str(tmp_path / "fresh"), "--fresh", cache=cache)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "resumed" not in fresh.stderr
    same = ("table1_per_seed.csv", "table_cross_family.csv", "table_gamma_sweep.csv", "claims.json")
    for run in ("again", "fresh"):
        for name in same:
            assert (tmp_path / run / name).read_text() == (out / name).read_text(), (run, name)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[tiny]\nbogus = 1\n", "unknown config key(s) ['bogus'] in [tiny]; valid keys"),
        ('[tiny.nudging]\ngamma = "high"\n', "'tiny.nudging.gamma' must be float, got 'high'"),
        ("[tiny.setup]\nseed = 1\n", "unknown config key(s) ['seed'] in [tiny.setup]"),
        ("[tiny.setup]\nfinetune = { seed = 3 }\n", "remove `seed` from finetune"),
        ('[tiny]\ntasks = ["arithmetic", "gsm8k"]\n', "unknown task(s) ['gsm8k']"),
        ('[tiny]\ncross_tasks = ["coin_flip"]\ntasks = ["arithmetic"]\n', "must be among tasks"),
        ('[paper]\ncross = [["Gemma-2", "Mistral"]]\n', "names ['Mistral'], not among families"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, toml: str, message: str) -> None:
    check_bad_reproduce_config(ROOT, "nudging", tmp_path, toml, message)


def test_out_under_a_file_fails_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = _run("--smoke", "--out", str(blocker / "out"), cache=tmp_path / "cache")
    assert proc.returncode == 2
    assert "is a file" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_paper_scale_preflight_lists_every_missing_model_and_data_set(tmp_path: Path) -> None:
    out, empty_hf_cache = tmp_path / "out", str(tmp_path / "hf")
    proc = _run("--scale", "paper", "--out", str(out), cache=tmp_path / "cache", HF_HOME=empty_hf_cache)
    assert proc.returncode == 2, proc.stderr[-3000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("reproduce/nudging.py: error: 20 of 20 models/data sets")
    needed = ("model meta-llama/Llama-2-70b-hf (Llama-2 base)", "model google/gemma-2-2b-it", "cais/mmlu")
    assert all(n in error for n in needed), error
    assert not out.exists()
