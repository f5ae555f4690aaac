"""One minimum Python version everywhere: every pyproject, ruff's target and the docs say the same."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_python_version_everywhere() -> None:
    pyprojects = [ROOT / "shared" / "pyproject.toml", *sorted(ROOT.glob("packages/*/pyproject.toml"))]
    required = {tomllib.loads(p.read_text())["project"]["requires-python"] for p in pyprojects}
    assert len(required) == 1, required
    (minimum,) = {r.removeprefix(">=") for r in required}
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert root["tool"]["ruff"]["target-version"] == "py" + minimum.replace(".", "")
    docs = [*ROOT.glob("*.md"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("packages/*/README.md")]
    for doc in [*docs, ROOT / "shared" / "README.md"]:
        for version in re.findall(r"Python (3\.\d+)", doc.read_text()):
            assert version == minimum, (
                f"{doc.relative_to(ROOT)} says Python {version}, the packages {minimum}"
            )
