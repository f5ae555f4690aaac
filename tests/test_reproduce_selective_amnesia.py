"""reproduce/selective_amnesia.py through the shared runner: the smoke config end to end; bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from reprokit.testing import check_bad_reproduce_config, check_smoke_output, run_reproduce

ROOT = Path(__file__).resolve().parents[1]
TABLES = [
    "table_trace_summary",
    "table_trace",
    "table_main",
    "table_subtasks",
    "table_ablation_layers",
    "table_ablation_kind",
    "table_ablation_alpha",
    "table_ablation_epochs",
    "table_cost",
]
FIGURES = [
    "figure_trace_aggregate.png",
    "figure_trace_example.png",
    "figure_trace_second.png",
    "figure_unlearning_curves.png",
]
CLAIMS = [
    "tracing_band",
    "tracing_early",
    "constrained_task_aggregate",
    "constrained_keeps_knowledge",
    "constrained_mia",
    "baselines_collapse",
    "constrained_beats_baselines",
    "traced_beats_untraced",
    "mlp_beats_attention",
]
METHODS = [
    "original",
    "gradient ascent",
    "gradient difference",
    "KL minimisation",
    "NPO",
    "constrained (paper, alpha_max 2.8)",
    "constrained (code, alpha_max 2.3)",
]


def _script(*args: str | Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_reproduce(ROOT, "selective-amnesia", *args, cache=cache)


@pytest.mark.slow
def test_reproduce_selective_amnesia_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    proc = _script("--smoke", "--out", out, cache=cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_smoke_output(out, "selective-amnesia", TABLES, FIGURES)

    main = pd.read_csv(out / "table_main_per_seed.csv")
    assert sorted(main["seed"].unique()) == [0, 1]
    assert list(main[main["seed"] == 0]["method"]) == METHODS
    # the final score is the mean of its three parts, in every row of every seed
    parts = main[["task_aggregate", "mia", "knowledge"]].mean(axis=1)
    assert (main["final"] - parts).abs().max() < 1e-9
    share = main.set_index(["seed", "method"])["trainable_share"]
    assert share[(0, "gradient ascent")] == pytest.approx(1.0)  # the baselines train everything
    assert 0 < share[(0, "constrained (paper, alpha_max 2.8)")] < 0.5  # constrained: a few MLPs only
    summary = pd.read_csv(out / "table_trace_summary_per_seed.csv")
    assert set(summary[summary["seed"] == 0]["model"]) == {"target", "second"}  # second arch: first seed
    assert set(summary[summary["seed"] == 1]["model"]) == {"target"}

    claims = json.loads((out / "claims.json").read_text())["claims"]
    assert [c["id"] for c in claims] == CLAIMS
    for c in claims:
        assert isinstance(c["holds"], bool) and isinstance(c["holds_interval"], bool), c["id"]
        assert len(c["per_seed"]) == 2, c["id"]
        assert c["measured"] == pytest.approx(sum(c["per_seed"]) / 2), c["id"]

    report = (out / "REPORT.md").read_text()
    assert "Ours vs paper" in report and "Traced layers" in report

    # A second run resumes every finished unlearning run (same tables), and --fresh recomputes them.
    again = _script("--smoke", "--out", tmp_path / "again", cache=cache)
    assert again.returncode == 0, again.stderr[-3000:]
    first = pd.read_csv(out / "table_main_per_seed.csv")
    second = pd.read_csv(tmp_path / "again" / "table_main_per_seed.csv")
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize(
    ("toml", "phrase"),
    [
        ("[tiny]\ntop_kk = 2\n", "unknown config key(s) ['top_kk'] in [tiny]"),
        ("[tiny.unlearn]\nmodule_kind = 'mpl'\n", "unknown module kind 'mpl'"),
        ("[tiny.unlearn]\nalpha_min = 3.0\n", "alpha bounds reversed"),
        ("[tiny]\ntrace_role = 'subject'\n", "trace_role 'subject' is not a token role"),
        ("[tiny.scoring]\nmmlu_format = 'letters'\n", "mmlu_format must be 'letter'"),
        ("[tiny.unlearn]\nmethod = 'npo'\n", "method must be 'constrained'"),
    ],
)
def test_config_errors_exit_2_with_one_line(tmp_path: Path, toml: str, phrase: str) -> None:
    check_bad_reproduce_config(ROOT, "selective-amnesia", tmp_path, toml, phrase)


def test_paper_scale_preflight_names_the_gated_model_and_data(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _script("--scale", "paper", "--out", out, cache=tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    for name in ("olmo-1B-model-semeval25-unlearning", "semeval25-unlearning-dataset-public", "cais/mmlu"):
        assert name in line, line
    assert not out.exists()
