"""reproduce/efficientllm.py through the shared runner: the smoke config end to end; bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from reprokit.testing import check_bad_reproduce_config, check_smoke_output, run_reproduce

ROOT = Path(__file__).resolve().parents[1]
TABLES = ["table_main", "table_scaling", "table_ablations", "table_pruning_order"]
FIGURES = ["figure_size_vs_tokens.png", "figure_pruned_share.png", "figure_training_curves.png"]
CLAIMS = [
    "pa_beats_post_training",
    "pa_beats_scratch",
    "auto_shape_beats_uniform",
    "more_continued_training_helps",
    "heads_pruned_before_ffn",
    "hidden_pruned_least",
]
METHODS = [
    "source (dense)",
    "pruning-aware (EfficientLLM)",
    "one-shot Taylor + training",
    "from scratch, auto-designed shape",
    "from scratch, uniform shape",
]


def _script(*args: str | Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_reproduce(ROOT, "efficientllm", *args, cache=cache)


@pytest.mark.slow
def test_reproduce_efficientllm_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    proc = _script("--smoke", "--out", out, cache=cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_smoke_output(out, "efficientllm", TABLES, FIGURES)

    main = pd.read_csv(out / "table_main_per_seed.csv")
    assert sorted(main["seed"].unique()) == [0, 1]
    seed0 = main[main["seed"] == 0].set_index("method")
    assert list(seed0.index) == METHODS
    source, pa = seed0.loc["source (dense)"], seed0.loc["pruning-aware (EfficientLLM)"]
    # the smoke config prunes to half the source; every baseline is within a few groups of the same size
    assert pa["params"] < 0.6 * source["params"]
    for method in METHODS[2:]:
        assert abs(seed0.loc[method, "params"] - pa["params"]) < 0.1 * pa["params"], method
        assert seed0.loc[method, "tokens"] == pa["tokens"] > 0, method
    assert source["tokens"] == 0
    # the average is the mean of the common-sense tasks (the knowledge test left out)
    tasks = ["fact_completion", "place_country", "arithmetic", "counting", "grammar", "odd_one_out"]
    assert (main[tasks].mean(axis=1) - main["average"]).abs().max() < 1e-9

    scaling = pd.read_csv(out / "table_scaling_per_seed.csv")
    assert list(scaling[scaling["seed"] == 0]["continued_tokens"]) == [0, 4 * 128, 2 * 4 * 128]
    order = pd.read_csv(out / "table_pruning_order_per_seed.csv")
    assert set(order["variant"]) == {"main", "second_order", "obs", "every_1"}
    assert order["pruned_share"].between(0, 1).all()

    claims = json.loads((out / "claims.json").read_text())["claims"]
    assert [c["id"] for c in claims] == CLAIMS
    for c in claims:
        assert isinstance(c["holds"], bool) and isinstance(c["holds_interval"], bool), c["id"]
        assert len(c["per_seed"]) == 2, c["id"]
    report = (out / "REPORT.md").read_text()
    assert "Ours vs paper" in report and "Pruned shares per variant" in report

    # A second run resumes every finished arm (same tables).
    again = _script("--smoke", "--out", tmp_path / "again", cache=cache)
    assert again.returncode == 0, again.stderr[-3000:]
    pd.testing.assert_frame_equal(main, pd.read_csv(tmp_path / "again" / "table_main_per_seed.csv"))


@pytest.mark.parametrize(
    ("toml", "phrase"),
    [
        ("[tiny]\nablation = ['obs']\n", "unknown config key(s) ['ablation'] in [tiny]"),
        ("[tiny]\nablations = ['obbs']\n", "unknown ablations ['obbs']"),
        ("[tiny.prune]\nevery = 0\n", "every must be >= 1"),
        ("[tiny.prune]\ntarget_ratio = 1.5\n", "target_ratio must be in (0, 1]"),
        ("[tiny.phase2]\nsteps = 100\nseq_len = 64\n", "phase1 and phase2 must use the same batch_size"),
        ("[tiny]\nscale_factor = 1\n", "scale_factor must be >= 2"),
    ],
)
def test_config_errors_exit_2_with_one_line(tmp_path: Path, toml: str, phrase: str) -> None:
    check_bad_reproduce_config(ROOT, "efficientllm", tmp_path, toml, phrase)


def test_paper_scale_preflight_names_the_source_and_corpus(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _script("--scale", "paper", "--out", out, cache=tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    for name in ("HuggingFaceTB/SmolLM-1.7B", "HuggingFaceTB/smollm-corpus"):
        assert name in line, line
    assert not out.exists()
