"""Smoke run of reproduce/nudging.py: every table, figure and claims.json is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _smoke(out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "REPROKIT_QUIET": "1"}
    argv = [sys.executable, str(ROOT / "reproduce" / "nudging.py"), "--smoke", "--out", str(out)]
    return subprocess.run(
        [*argv, "--cache-dir", str(cache), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_reproduce_nudging_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _smoke(out, tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed" not in proc.stderr
    for name in ("table1", "table1_ci", "table_cross_family", "table_uncertainty", "figure_gamma_sweep"):
        for ext in ("csv", "md", "tex"):
            assert (out / f"{name}.{ext}").is_file(), f"{name}.{ext} missing"
    for name in ("figure_uncertainty.png", "figure_gamma_sweep.png", "manifest.json", "REPORT.md"):
        assert (out / name).is_file(), name
    claims = json.loads((out / "claims.json").read_text())
    assert claims["n_total"] == len(claims["claims"]) > 0
    assert all(isinstance(c["holds"], bool) for c in claims["claims"])
    assert "Ours vs paper" in (out / "REPORT.md").read_text()

    # A second run with the same settings resumes every finished piece and writes the same tables;
    # --fresh recomputes them (same seed, same tables).
    again = _smoke(tmp_path / "again", tmp_path / "cache")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("resumed a finished piece") > 0
    fresh = _smoke(tmp_path / "fresh", tmp_path / "cache", "--fresh")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "resumed" not in fresh.stderr
    for run in ("again", "fresh"):
        for name in ("table1.csv", "table_cross_family.csv", "figure_gamma_sweep.csv", "claims.json"):
            assert (tmp_path / run / name).read_text() == (out / name).read_text(), (run, name)
