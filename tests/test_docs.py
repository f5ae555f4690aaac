"""Every ```python block of every docs page runs, page by page in one namespace, in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if FENCE.search(p.read_text()))


def test_there_are_executable_pages():
    assert any(p.name == "reprokit.md" for p in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT / "docs")) for p in PAGES])
def test_code_blocks_run(page: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPROKIT_CACHE", str(tmp_path / "cache"))
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for i, block in enumerate(FENCE.findall(page.read_text())):
        code = compile(block, f"{page.name}[block {i}]", "exec")
        exec(code, namespace)
