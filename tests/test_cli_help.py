"""`--help` of every package command line answers without importing torch, transformers or datasets.

Importing those takes seconds, so a command that imports them before parsing its arguments makes
`--help` (and every usage error) slow. Checked by the modules that are loaded, not by timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "datasets", "pandas", "scipy")
PROBE = """
import json, runpy, sys
sys.argv = [{module!r}, *{args!r}]
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit as exit_:
    code = exit_.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("palimpsest", ["--help"]),
        ("palimpsest", ["query", "--help"]),
        ("palimpsest", ["reshuffle", "--help"]),
        ("palimpsest", ["ngram", "--help"]),
        ("nudging", ["--help"]),
        ("nudging", ["generate", "--help"]),
        ("nudging", ["eval", "--help"]),
        ("selective_amnesia", ["--help"]),
        ("selective_amnesia", ["trace", "--help"]),
        ("selective_amnesia", ["unlearn", "--help"]),
        ("selective_amnesia", ["score", "--help"]),
        ("efficientllm", ["--help"]),
        ("efficientllm", ["prune-train", "--help"]),
        ("efficientllm", ["export", "--help"]),
        ("efficientllm", ["eval", "--help"]),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_help_imports_no_heavy_library(module: str, args: list[str]) -> None:
    probe = PROBE.format(module=module, args=args, heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}, proc.stdout
    assert "usage:" in proc.stdout


@pytest.mark.parametrize(
    "module",
    [
        "reprokit.cli",
        "reprokit.errors",
        "palimpsest",
        "nudging",
        "selective_amnesia",
        "selective_amnesia.cli",
        "efficientllm",
        "efficientllm.cli",
    ],
)
def test_importing_the_package_or_cli_helpers_imports_no_heavy_library(module: str) -> None:
    probe = f"import sys, {module}; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert proc.stdout.strip() == "[]"
