"""Smoke run of reproduce/nudging.py: every table, figure and claims.json is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_reproduce_nudging_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "REPROKIT_QUIET": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "reproduce" / "nudging.py"),
            "--smoke",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("table1", "table1_ci", "table_cross_family", "table_uncertainty", "figure_gamma_sweep"):
        for ext in ("csv", "md", "tex"):
            assert (out / f"{name}.{ext}").is_file(), f"{name}.{ext} missing"
    for name in ("figure_uncertainty.png", "figure_gamma_sweep.png", "manifest.json", "REPORT.md"):
        assert (out / name).is_file(), name
    claims = json.loads((out / "claims.json").read_text())
    assert claims["n_total"] == len(claims["claims"]) > 0
    assert all(isinstance(c["holds"], bool) for c in claims["claims"])
    assert "Ours vs paper" in (out / "REPORT.md").read_text()
