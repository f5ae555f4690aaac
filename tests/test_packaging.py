"""One version for all packages; every paper package pins reprokit exactly and never imports another."""

from __future__ import annotations

import ast
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


@pytest.mark.parametrize("path", PYPROJECTS[1:], ids=lambda p: p.parent.name)
def test_paper_packages_never_import_each_other(path):
    own = _project(path)["name"].replace("-", "_")
    for source in (path.parent / "src").rglob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top == own or top not in PAPER_IMPORTS, f"{source} imports {name}"


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
