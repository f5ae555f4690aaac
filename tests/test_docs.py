"""Every docs page's code runs: ```python blocks in one namespace per page, and ```console blocks (lines
starting with ``$ ``, the CLI commands of the tutorials) in a shell, in page order, in one scratch folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(python|console)\n(.*?)^```", re.DOTALL | re.MULTILINE)
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if FENCE.search(p.read_text()))


def test_there_are_executable_pages():
    assert any(p.name == "reprokit.md" for p in PAGES)


def _run_console(block: str, where: str, cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(HF_HUB_OFFLINE="1", REPROKIT_QUIET="1", ROOT=str(ROOT))
    for line in block.splitlines():
        if not line.startswith("$ "):
            continue  # expected output shown in the docs
        proc = subprocess.run(
            line[2:], shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert proc.returncode == 0, f"{where}: `{line[2:]}` exited {proc.returncode}:\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT / "docs")) for p in PAGES])
def test_code_blocks_run(page: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPROKIT_CACHE", str(tmp_path / "cache"))
    module = types.ModuleType("__docs__")  # dataclasses defined on a page look their module up
    monkeypatch.setitem(sys.modules, "__docs__", module)
    namespace = module.__dict__
    for i, (kind, block) in enumerate(FENCE.findall(page.read_text())):
        where = f"{page.name}[block {i}]"
        if kind == "console":
            _run_console(block, where, tmp_path)
        else:
            exec(compile(block, where, "exec"), namespace)
