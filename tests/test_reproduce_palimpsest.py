"""Smoke run of reproduce/palimpsest.py: every table, figure, claims, manifest and REPORT.md appear."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = [
    "table_query.csv",
    "table_query.md",
    "table_query.tex",
    "table_reference_ablation.csv",
    "table_null_calibration.csv",
    "table_reshuffle_tokens.csv",
    "table_reshuffle_fraction.csv",
    "table_finetune_robustness.csv",
    "table_ngram_tokens.csv",
    "figure1.png",
    "figure_null_qq.png",
    "figure_tokens.png",
    "claims.json",
    "manifest.json",
    "REPORT.md",
]


@pytest.mark.slow
def test_reproduce_palimpsest_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "REPROKIT_QUIET": "1"}
    cmd = [sys.executable, str(ROOT / "reproduce" / "palimpsest.py"), "--smoke", "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--cache-dir", str(tmp_path / "cache")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    missing = [name for name in EXPECTED if not (out / name).is_file()]
    assert not missing, missing
    claims = json.loads((out / "claims.json").read_text())
    assert claims["n_total"] == len(claims["claims"]) >= 8
    assert all({"id", "measured", "holds"} <= set(c) for c in claims["claims"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["paper"] == "palimpsest" and manifest["scale"] == "tiny"
    assert "Ours vs paper" in (out / "REPORT.md").read_text()
