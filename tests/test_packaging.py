"""One version for all packages; every paper package pins reprokit exactly and never imports another;
reprokit imports no paper package."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECTS = [ROOT / "shared" / "pyproject.toml", *sorted(ROOT.glob("packages/*/pyproject.toml"))]
PAPER_IMPORTS = {"nudging", "palimpsest", "selective_amnesia", "efficientllm"}


def _project(path: Path) -> dict:
    return tomllib.loads(path.read_text())["project"]


def test_one_version_for_all_packages():
    versions = {_project(p)["name"]: _project(p)["version"] for p in PYPROJECTS}
    assert len(set(versions.values())) == 1, versions


def test_the_version_attribute_matches_the_metadata():
    import importlib

    for path in PYPROJECTS:
        project = _project(path)
        module = importlib.import_module(project["name"].replace("-", "_"))
        assert module.__version__ == project["version"]


@pytest.mark.parametrize("path", PYPROJECTS[1:], ids=lambda p: p.parent.name)
def test_paper_packages_pin_reprokit_exactly(path):
    project = _project(path)
    version = _project(PYPROJECTS[0])["version"]
    assert f"reprokit=={version}" in project["dependencies"]
    assert not any(d.split("[")[0].strip() == "torch" for d in project["dependencies"]), (
        "torch comes via reprokit"
    )


def _called_name(call: ast.Call) -> str | None:
    return getattr(call.func, "attr", getattr(call.func, "id", None))


def _imported_modules(source: Path) -> list[str]:
    """Every absolute module name `source` imports, at any depth (also inside functions), and every
    constant passed to ``importlib.import_module`` / ``__import__``."""
    names = []
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Call) and _called_name(node) in ("import_module", "__import__"):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.append(first.value)
    return names


@pytest.mark.parametrize("path", PYPROJECTS[1:], ids=lambda p: p.parent.name)
def test_paper_packages_never_import_each_other(path):
    own = _project(path)["name"].replace("-", "_")
    for source in (path.parent / "src").rglob("*.py"):
        for name in _imported_modules(source):
            top = name.split(".")[0]
            assert top == own or top not in PAPER_IMPORTS, f"{source} imports {name}"


def test_reprokit_sources_import_no_paper_package():
    sources = sorted((ROOT / "shared" / "src" / "reprokit").rglob("*.py"))
    assert len(sources) > 10
    for source in sources:
        for name in _imported_modules(source):
            assert name.split(".")[0] not in PAPER_IMPORTS, f"{source.relative_to(ROOT)} imports {name}"


def test_importing_every_reprokit_module_loads_no_paper_package():
    """Import all of reprokit in a fresh interpreter: no paper package may come along (reprokit finds
    papers through entry points only when a run asks for one)."""
    script = """
import importlib, json, pkgutil, sys
import reprokit
names = [m.name for m in pkgutil.walk_packages(reprokit.__path__, "reprokit.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"reprokit.results.claims", "reprokit.stats.intervals", "reprokit.world.core"} <= set(
        report["modules"]
    )
    assert not PAPER_IMPORTS & set(report["loaded"]), report["loaded"]


def test_no_unsafe_loading_in_shipped_code():
    for source in [
        *ROOT.glob("shared/src/**/*.py"),
        *ROOT.glob("packages/*/src/**/*.py"),
        *ROOT.glob("reproduce/*.py"),
    ]:
        text = source.read_text()
        assert "trust_remote_code=True" not in text, source
        assert "pickle.load" not in text, source
        for call in ast.walk(ast.parse(text)):
            if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "load":
                base = getattr(call.func.value, "id", None)
                if base == "torch":
                    kw = {k.arg: k.value for k in call.keywords}
                    assert (
                        isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                    ), source
