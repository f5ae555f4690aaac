"""Every task a person runs: tests, lint, docs, reproduce, bench.

pip + virtualenv only (never uv): on our machines `torch==2.13.0` resolves to a local CPU wheel, which
uv does not see, so it would pull a multi-GB CUDA build. torch is always installed first.

    nox -s tests                 all packages' tests plus the top-level tests/
    nox -s "tests(palimpsest)"   one package in its own venv with only it and reprokit installed
    nox -s lint                  ruff check + ruff format --check
    nox -s docs                  mkdocs build --strict (offline)
    nox -s reproduce             every paper at tiny scale into results/ (extra args pass through)
    nox -s "reproduce(nudging)"  one paper; e.g. nox -s "reproduce(nudging)" -- --scale paper
    nox -s bench                 benchmarks/, each a ratio against a baseline in the same run
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "virtualenv"
nox.options.download_python = "never"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "lint"]

ROOT = Path(__file__).parent
TORCH = "torch==2.13.0"
DOCS_DEPS = ["mkdocs>=1.6,<2", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26", "ruff>=0.6"]
ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def _discover() -> dict[str, Path]:
    """Distribution name -> folder, for reprokit and every paper package under packages/."""
    found = {"reprokit": ROOT / "shared"}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        found[tomllib.loads(pyproject.read_text())["project"]["name"]] = pyproject.parent
    return found


PACKAGES = _discover()
PAPERS = [
    name
    for name in PACKAGES
    if name != "reprokit" and (ROOT / "reproduce" / f"{name.replace('-', '_')}.py").exists()
]


def _script(paper: str) -> str:
    """``reproduce/<paper>.py`` with the distribution name's dashes as underscores (a module name)."""
    return f"reproduce/{paper.replace('-', '_')}.py"


def _install(session: nox.Session, names: list[str], *, editable: bool, extra: str = "test") -> None:
    session.install(TORCH)
    specs = []
    for name in names:
        path = str(PACKAGES[name].relative_to(ROOT))
        spec = f"./{path}[{extra}]" if extra else f"./{path}"
        specs += ["-e", spec] if editable else [spec]
    session.install(*specs)


@nox.session(name="tests")
def tests(session: nox.Session) -> None:
    """All packages' tests plus the cross-package tests/, in one venv."""
    _install(session, list(PACKAGES), editable=True)
    session.run("pytest", *session.posargs, env=ENV)


def _package_tests(name: str):
    def run(session: nox.Session) -> None:
        # Non-editable installs of only this package and reprokit: proves it installs and works alone.
        _install(session, sorted({"reprokit", name}), editable=False)
        tests_dir = PACKAGES[name] / "tests"
        session.run(
            "pytest", str(tests_dir.relative_to(ROOT)), "-p", "no:cacheprovider", *session.posargs, env=ENV
        )

    run.__doc__ = f"Tests of {name} alone, in a venv with only {name} and reprokit."
    return run


for _name in PACKAGES:
    nox.session(name=f"tests({_name})", default=False)(_package_tests(_name))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Build the mkdocs-material site with --strict (no network needed).

    mkdocstrings reads the packages' source statically (paths in mkdocs.yml), so no torch is installed.
    """
    session.install(*DOCS_DEPS)
    session.run("mkdocs", "build", "--strict", *session.posargs, env={**ENV, "NO_MKDOCS_2_WARNING": "1"})


@nox.session(name="reproduce", default=False)
def reproduce_all(session: nox.Session) -> None:
    """Every paper at tiny scale (default), writing results/<paper>/<scale>/. Args pass through."""
    _install(session, list(PACKAGES), editable=True, extra="")
    if not PAPERS:
        session.log("no paper packages with a reproduce/ script yet; nothing to reproduce")
    for paper in PAPERS:
        session.run("python", _script(paper), *session.posargs, env=ENV)


def _reproduce_one(paper: str):
    def run(session: nox.Session) -> None:
        _install(session, ["reprokit", paper], editable=True, extra="")
        session.run("python", _script(paper), *session.posargs, env=ENV)

    run.__doc__ = f"Reproduce {paper} (tiny scale by default; pass -- --scale paper for the paper's setup)."
    return run


for _paper in PAPERS:
    nox.session(name=f"reproduce({_paper})", default=False)(_reproduce_one(_paper))


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run every benchmark in benchmarks/ (ratios against a baseline measured in the same process)."""
    _install(session, list(PACKAGES), editable=True, extra="")
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        session.run("python", str(script.relative_to(ROOT)), *session.posargs, env=ENV)
