"""Tests of reprokit.results: atomic writes, tables, claims, figures, manifest, report, RunOutput."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reprokit.results import (
    TRACKED_PACKAGES,
    Claim,
    Manifest,
    PaperComparison,
    RunOutput,
    Table,
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    hash_file,
    new_figure,
    save_claims,
    save_figure,
    tracked_packages,
    write_report,
)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------------------- atomic writes


def test_atomic_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.bin"
    assert atomic_write_bytes(target, b"one") == target
    assert target.read_bytes() == b"one"
    atomic_write_text(target, "twö")
    assert target.read_text(encoding="utf-8") == "twö"
    assert _leftovers(target.parent) == []


def test_atomic_write_json_types(tmp_path: Path) -> None:
    @dataclasses.dataclass
    class Cfg:
        lr: float
        path: Path

    obj = {
        "np_float": np.float32(0.5),
        "np_int": np.int64(3),
        "np_bool": np.bool_(True),
        "arr": np.arange(3),
        "path": Path("some/where"),
        "cfg": Cfg(1e-3, Path("p")),
        "nan": float("nan"),
        "inf": math.inf,
        "ninf": np.float64(-np.inf),
        "nested": [{"k": (1, 2)}],
    }
    path = atomic_write_json(tmp_path / "x.json", obj)
    back = json.loads(path.read_text())
    assert back == {
        "np_float": 0.5,
        "np_int": 3,
        "np_bool": True,
        "arr": [0, 1, 2],
        "path": "some/where",
        "cfg": {"lr": 1e-3, "path": "p"},
        "nan": None,
        "inf": "inf",
        "ninf": "-inf",
        "nested": [{"k": [1, 2]}],
    }


def test_atomic_write_json_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "keep.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(TypeError, match="object"):
        atomic_write_json(target, {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1}
    assert _leftovers(tmp_path) == []


def test_atomic_write_error_midway_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(self: Path, other: Path) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(Path, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_hash_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("x")
    h1 = hash_file(tmp_path / "d")
    assert hash_file(tmp_path / "d" / "a.txt").startswith("sha256:")
    (tmp_path / "d" / "a.txt").write_text("y")
    assert hash_file(tmp_path / "d") != h1


# ----------------------------------------------------------------------------------------- tables


def _table() -> Table:
    return Table.from_records(
        "table_1",
        [
            {"model_name": "pythia_70m", "rho": 0.123456, "n": 10, "ok": True},
            {"model_name": "olmo & co", "rho": float("nan"), "n": 20, "ok": False},
        ],
        caption="Spearman rho per model_name (50% sampled)",
    )


def test_table_csv_round_trip() -> None:
    table = _table()
    back = pd.read_csv(io.StringIO(table.to_csv()))
    pd.testing.assert_frame_equal(back, table.frame)


def test_table_named_index_is_kept() -> None:
    frame = pd.DataFrame({"v": [1.5, 2.5]}, index=pd.Index(["a", "b"], name="model"))
    back = pd.read_csv(io.StringIO(Table("t", frame).to_csv()))
    assert list(back.columns) == ["model", "v"]
    assert "model" in Table("t", frame).to_markdown()


def test_table_markdown() -> None:
    md = _table().to_markdown()
    lines = md.splitlines()
    assert "model_name" in lines[0] and "rho" in lines[0] and "ok" in lines[0]
    assert set(lines[1]) <= set("|:- ")
    assert "0.1235" in md  # float_format {:.4g}
    assert "0.123456" not in md
    assert "nan" in md


def test_table_latex_escapes() -> None:
    tex = _table().to_latex()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"model\_name" in tex
    assert r"pythia\_70m" in tex
    assert r"olmo \& co" in tex
    assert r"50\% sampled" in tex
    assert r"\label{tab:table_1}" in tex  # labels are not typeset, so not escaped
    assert r"\begin{tabular}{lrrl}" in tex
    body = tex.replace(r"\_", "").replace(r"\&", "").replace(r"\%", "").replace("tab:table_1", "")
    assert "_" not in body and "&" not in body.replace(" & ", "") and "%" not in body


def test_table_save(tmp_path: Path) -> None:
    paths = _table().save(tmp_path / "out")
    assert {k: p.name for k, p in paths.items()} == {
        "csv": "table_1.csv",
        "md": "table_1.md",
        "tex": "table_1.tex",
    }
    assert all(p.exists() for p in paths.values())
    assert "Spearman rho" in paths["md"].read_text()
    with pytest.raises(ValueError, match="file stem"):
        Table("../evil", pd.DataFrame())


# ----------------------------------------------------------------------------------------- claims


@pytest.mark.parametrize(
    ("op", "bound", "holds"),
    [
        ("<", 1.0, True),
        ("<", 0.5, False),
        ("<=", 0.5, True),
        (">", 0.5, False),
        (">=", 0.5, True),
        ("==", 0.5, True),
    ],
)
def test_claim_check_ops(op: str, bound: float, holds: bool) -> None:
    c = Claim.check("c1", "statement", 0.5, op, bound, paper_value="0.4")  # type: ignore[arg-type]
    assert c.holds is holds
    assert c.expected == f"{op} {bound}"
    assert c.measured == 0.5
    assert c.to_dict()["paper_value"] == "0.4"


def test_claim_nan_never_holds() -> None:
    for op in ("<", "<=", ">", ">=", "=="):
        assert not Claim.check("c", "s", float("nan"), op, 0.0).holds  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="op"):
        Claim.check("c", "s", 1.0, "!=", 0.0)  # type: ignore[arg-type]


def test_save_claims(tmp_path: Path) -> None:
    claims = [
        Claim.check("a", "x", 1e-9, "<", 1e-8),
        Claim.check("b", "y", float("nan"), ">", 0.0),
        Claim("c", "z", "qualitative", "collapse", True),
    ]
    data = json.loads(save_claims(claims, tmp_path / "claims.json").read_text())
    assert (data["n_holding"], data["n_total"]) == (2, 3)
    assert [c["id"] for c in data["claims"]] == ["a", "b", "c"]
    assert data["claims"][1]["measured"] is None


@pytest.mark.parametrize(
    ("op", "bound", "interval", "holds", "holds_interval"),
    [
        (">", 0.0, (0.1, 0.9), True, True),
        (">", 0.0, (-0.1, 0.9), True, False),  # the low end decides for > and >=
        (">=", 0.1, (0.1, 0.9), True, True),
        ("<", 1.0, (0.1, 0.9), True, True),
        ("<", 0.8, (0.1, 0.9), True, False),  # the high end decides for < and <=
        ("<=", 0.9, (0.1, 0.9), True, True),
        ("==", 0.5, (0.5, 0.5), True, True),
        ("==", 0.5, (0.4, 0.6), True, False),
        (">", 0.0, (math.nan, math.nan), True, False),  # no interval could be estimated (one seed)
    ],
)
def test_claim_interval_verdict(op, bound, interval, holds, holds_interval) -> None:
    c = Claim.check("c", "s", 0.5, op, bound, interval=interval, source="Table 2", method="paired bootstrap")
    assert (c.holds, c.holds_interval) == (holds, holds_interval)
    d = c.to_dict()
    assert d["source"] == "Table 2" and d["method"] == "paired bootstrap"
    assert d["interval"] == (float(interval[0]), float(interval[1])) or math.isnan(interval[0])


def test_claim_without_interval_and_defaults_keep_working() -> None:
    c = Claim.check("c", "s", 0.5, ">", 0.0, paper_value="0.4", details="d")
    assert (c.interval, c.holds_interval, c.per_seed, c.source, c.method) == (None, None, None, "", "")
    positional = Claim("q", "qualitative", "collapse", "collapse", True, "yes", "details")
    assert positional.paper_value == "yes" and positional.holds_interval is None
    with pytest.raises(TypeError):
        Claim("q", "s", 1.0, "> 0", True, None, "", (0.0, 1.0))  # type: ignore[misc]  # new args: keywords
    with pytest.raises(ValueError, match="above high"):
        Claim.check("c", "s", 0.5, ">", 0.0, interval=(0.9, 0.1))


def test_claim_takes_a_confidence_interval_and_seeds() -> None:
    from reprokit.stats import binomial_ci, seed_interval

    ci = binomial_ci(45, 50)
    c = Claim.check("rate", "most items pass", ci.estimate, ">", 0.75, interval=ci)
    assert c.interval == (ci.low, ci.high) and c.method == "exact binomial" and c.holds_interval is True
    seeds = [38.0, 36.0, 41.0]
    s = Claim.across_seeds("gain", "gain over base", seeds, ">", 30.0, paper_value="+24.1", source="Table 1")
    expected = seed_interval(seeds)
    assert s.measured == pytest.approx(np.mean(seeds)) and s.interval == (expected.low, expected.high)
    assert (s.per_seed, s.method, s.holds, s.holds_interval) == (
        (38.0, 36.0, 41.0),
        "t over seeds",
        True,
        True,
    )
    one = Claim.across_seeds("gain1", "one seed", [38.0], ">", 30.0)
    assert one.holds and one.holds_interval is False


@pytest.mark.parametrize(
    "text",
    [
        "/shared/papers/palimpsest.md",
        "see shared/papers/palimpsest.md",
        "../notes/paper.pdf",
        "~/papers/nudging.txt",
        "(/work/shared/handbook)",
    ],
)
def test_claim_never_cites_a_file(text: str) -> None:
    with pytest.raises(ValueError, match="cite the paper"):
        Claim.check("c", "s", 1.0, ">", 0.0, paper_value=text)
    with pytest.raises(ValueError, match="source cites"):
        Claim.check("c", "s", 1.0, ">", 0.0, source=text)


@pytest.mark.parametrize(
    "text",
    [
        "+15.4 / +14.6 / +9.5 (Llama-2 / Gemma-2 / OLMo)",
        "0.39 / 0.30 / 0.21",
        "robust for gamma in 0.2-0.5 (Fig. 7)",
        "Section 4.2, Table 2",
        "arXiv 2510.19796, https://arxiv.org/abs/2510.19796",
        "p ~ 1e-43 / 1e-11 / 1e-2",
    ],
)
def test_claim_paper_citations_that_are_fine(text: str) -> None:
    assert Claim.check("c", "s", 1.0, ">", 0.0, paper_value=text, source=text).source == text


def test_claims_markdown_shows_both_verdicts(tmp_path: Path) -> None:
    from reprokit.results import claims_markdown

    claims = [
        Claim.check(
            "a",
            "x",
            0.5,
            ">",
            0.0,
            interval=(0.2, 0.8),
            method="paired bootstrap",
            source="Table 1",
            paper_value="0.6",
        ),
        Claim.check("b", "y", 0.5, ">", 0.0, interval=(-0.2, 0.8), per_seed=[0.4, 0.6]),
        Claim.check("c", "z", -1.0, ">", 0.0),
    ]
    md = claims_markdown(claims)
    assert md.startswith("2 of 3 claims hold on the point estimate; 1 of 3 on the whole interval.\n")
    assert "| a | x | 0.5 | [0.2, 0.8] (paired bootstrap) | > 0.0 | 0.6 (Table 1) | ✅ | ✅ |" in md
    assert "| b | y | 0.5 (per seed: 0.4, 0.6) | [-0.2, 0.8] | > 0.0 | — | ✅ | ❌ |" in md
    assert "| c | z | -1 | — | > 0.0 | — | ❌ | — |" in md
    data = json.loads(save_claims(claims, tmp_path / "claims.json").read_text())
    assert (data["n_holding"], data["n_holding_interval"], data["n_total"]) == (2, 1, 3)
    assert data["claims"][1]["per_seed"] == [0.4, 0.6] and data["claims"][0]["interval"] == [0.2, 0.8]


def test_sanity_checks_are_shown_apart_and_not_counted(tmp_path: Path) -> None:
    from reprokit.results import claims_markdown, paper_claims

    claims = [
        Claim.check("a", "x", 1.0, ">", 0.0),
        Claim.across_seeds("fpr", "calibrated", [0.04, 0.06], "<=", 0.07, sanity=True),
        Claim.check("ks", "uniform", 2.0, "<", 1.6, sanity=True),
    ]
    assert [c.id for c in paper_claims(claims)] == ["a"]
    md = claims_markdown(claims)
    assert md.startswith("1 of 1 claims hold on the point estimate; 0 of 1 on the whole interval.\n")
    head, sanity = md.split("**Sanity checks**")
    assert "| fpr |" not in head and "| fpr |" in sanity and "| ks |" in sanity
    assert "1 of 2 sanity checks hold on the point estimate" in sanity
    data = json.loads(save_claims(claims, tmp_path / "claims.json").read_text())
    assert (data["n_holding"], data["n_total"], data["n_sanity"], data["n_sanity_holding"]) == (1, 1, 2, 1)
    assert [c["sanity"] for c in data["claims"]] == [False, True, True]


# ----------------------------------------------------------------------------------------- figures


def test_figure_save_closes_and_is_png(tmp_path: Path) -> None:
    fig, ax = new_figure(figsize=(3, 2))
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "fig" / "figure1.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig2, axes = new_figure(1, 2)
    assert len(axes) == 2
    assert save_figure(fig2, tmp_path / "figure2").suffix == ".png"


# ----------------------------------------------------------------------------------------- manifest


def test_manifest_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    (tmp_path / "data.txt").write_text("abc")
    m = Manifest.collect(
        paper="p",
        scale="tiny",
        seed=3,
        config={"n": 1},
        inputs={"data": tmp_path / "data.txt", "given": "sha256:00"},
    )
    assert (m.git_sha, m.git_dirty) == (None, None)
    assert m.inputs["data"] == hash_file(tmp_path / "data.txt")
    assert m.inputs["given"] == "sha256:00"
    assert set(m.packages) == set(tracked_packages())
    assert set(TRACKED_PACKAGES) <= set(m.packages)
    assert m.packages["numpy"] == np.__version__
    assert m.packages["reprokit"] is not None
    assert m.started_at.endswith("+00:00")
    with m.time("step"):
        pass
    with m.time("step"):
        pass
    assert m.timings["step"] >= 0
    m.finish()
    assert m.wall_time_s is not None and m.wall_time_s >= 0
    back = json.loads(m.save(tmp_path / "manifest.json").read_text())
    assert back["seed"] == 3 and back["config"] == {"n": 1} and "step" in back["timings"]


def test_tracked_packages_discovers_what_depends_on_reprokit(tmp_path: Path, monkeypatch) -> None:
    """Paper packages are found by their dependency on reprokit, never listed by name."""
    import importlib.metadata

    for name, requires in [
        ("Fake_Paper", ["numpy>=1", "reprokit==0.1.0"]),
        ("other-tool", ["numpy"]),
        ("reprokit-ish", ["reprokitten>=1"]),
    ]:
        info = tmp_path / f"{name}-0.1.dist-info"
        info.mkdir()
        lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 0.1"]
        lines += [f"Requires-Dist: {r}" for r in requires]
        (info / "METADATA").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = tracked_packages()
    assert found[0] == "reprokit" and found[-len(TRACKED_PACKAGES) + 1 :] == TRACKED_PACKAGES[1:]
    assert "fake-paper" in found and "other-tool" not in found and "reprokit-ish" not in found
    for paper in ("nudging", "palimpsest"):  # the real ones, where this environment has them
        try:
            importlib.metadata.version(paper)
        except importlib.metadata.PackageNotFoundError:
            continue
        assert paper in found
    assert not {"nudging", "palimpsest", "selective-amnesia", "efficientllm"} & set(TRACKED_PACKAGES)


def test_manifest_without_git_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH: must not raise

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        steps: int = 3
        out: Path = Path("o")

    m = Manifest.collect(paper="p", scale="tiny", seed=0, config=Cfg())
    assert m.git_sha is None and m.git_dirty is None
    assert m.config == {"steps": 3, "out": "o"}


def test_manifest_inside_git(monkeypatch: pytest.MonkeyPatch) -> None:
    # read-only use of this checkout (rev-parse, status --no-optional-locks); never changes its state
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    here = Path(__file__).resolve().parent
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip("tests are not inside a git checkout with a commit")
    monkeypatch.chdir(here)
    m = Manifest.collect(paper="p", scale="tiny", seed=0, config={})
    assert m.git_sha == proc.stdout.strip()
    assert isinstance(m.git_dirty, bool)


# ----------------------------------------------------------------------------------------- report


def test_write_report(tmp_path: Path) -> None:
    fig, ax = new_figure()
    ax.plot([1, 2])
    fig_path = save_figure(fig, tmp_path / "figs" / "figure3.png", dpi=40)
    m = Manifest.collect(paper="palimpsest", scale="tiny", seed=7, config={})
    m.finish()
    report = write_report(
        tmp_path / "REPORT.md",
        title="Palimpsest tiny",
        summary="All good.",
        tables=[_table()],
        claims=[
            Claim.check("query_p", "p below 1e-8", 1e-12, "<", 1e-8, paper_value="1e-30"),
            Claim.check("bad", "pipe | in text", 2.0, "<", 1.0),
        ],
        comparisons=[PaperComparison("rho 6.9B", "0.07", "0.078", "tiny model")],
        figures=[fig_path],
        manifest=m,
        notes="A note.",
    ).read_text()
    assert report.startswith("# Palimpsest tiny")
    assert "## Claims" in report and "1 of 2 claims hold on the point estimate" in report
    assert "| query_p | p below 1e-8 | 1e-12 | — | < 1e-08 | 1e-30 | ✅ | — |" in report
    assert "❌" in report and r"pipe \| in text" in report
    assert "## Ours vs paper" in report and "| rho 6.9B | 0.07 | 0.078 | tiny model |" in report
    assert "### table_1" in report and "Spearman rho per model_name" in report
    assert "![figure3](figs/figure3.png)" in report
    assert "seed 7" in report and "A note." in report


def test_run_output_finish(tmp_path: Path) -> None:
    out = RunOutput(tmp_path / "results" / "p" / "tiny", paper="p", scale="tiny", seed=1, config={"k": 2})
    with out.time("fit"):
        out.table(_table())
    fig, ax = new_figure()
    ax.plot([0, 1])
    fig_path = out.figure(fig, "figure1")
    out.claim(Claim.check("c1", "holds", 1.0, ">", 0.0))
    with pytest.raises(ValueError, match="already"):
        out.claim(Claim.check("c1", "dup", 1.0, ">", 0.0))
    out.compare("acc", "0.5", "0.6")
    result_dir = out.finish(title="T", summary="S")
    assert result_dir == tmp_path / "results" / "p" / "tiny"
    names = {p.name for p in result_dir.iterdir()}
    assert {"claims.json", "manifest.json", "REPORT.md", "table_1.csv", "table_1.md", "table_1.tex"} <= names
    assert fig_path.name == "figure1.png" and fig_path.exists()
    assert json.loads((result_dir / "claims.json").read_text())["n_holding"] == 1
    claims_md = (result_dir / "claims.md").read_text()
    assert claims_md.startswith("1 of 1 claims hold on the point estimate; 0 of 1 on the whole interval.")
    assert "| c1 |" in claims_md
    manifest = json.loads((result_dir / "manifest.json").read_text())
    assert manifest["config"] == {"k": 2} and manifest["wall_time_s"] >= 0 and "fit" in manifest["timings"]
    report = (result_dir / "REPORT.md").read_text()
    assert "c1" in report and "| acc | 0.5 | 0.6 |" in report and "![figure1](figure1.png)" in report
    assert _leftovers(result_dir) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_manifest_dirty_flag_ignores_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reproduce outputs under results/ do not make the code dirty; a changed source file does."""

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "paper").mkdir(parents=True)
    (tmp_path / "results" / "paper" / "table.csv").write_text("a\n1\n")
    clean = Manifest.collect(paper="p", scale="tiny", seed=0, config={}, repo_dir=tmp_path)
    assert clean.git_sha is not None and clean.git_dirty is False
    (tmp_path / "code.py").write_text("x = 2\n")
    dirty = Manifest.collect(paper="p", scale="tiny", seed=0, config={}, repo_dir=tmp_path)
    assert dirty.git_dirty is True


def test_atomic_directory_commits_on_success_and_cleans_up_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("first")
        assert not target.exists()  # nothing visible until the block succeeds
    assert (target / "a.txt").read_text() == "first"

    def fail_halfway() -> None:
        with atomic_directory(target, replace=True) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_halfway()
    assert (target / "a.txt").read_text() == "first"

    with atomic_directory(target) as tmp:  # replace=False keeps what is there
        (tmp / "a.txt").write_text("second")
    assert (target / "a.txt").read_text() == "first"
    with atomic_directory(target, replace=True) as tmp:
        (tmp / "a.txt").write_text("third")
    assert (target / "a.txt").read_text() == "third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_resume_store_saves_loads_and_recomputes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from reprokit.results import ResumeStore

    calls: list[str] = []

    def compute(tag: str):
        def run() -> dict:
            calls.append(tag)
            return {"scores": np.array([1.0, np.nan]), "tag": tag}

        return run

    parts = {"config": {"gamma": 0.3}, "task": "gsm8k"}
    store = ResumeStore(tmp_path / "runs")
    first = store.fetch_or_run(parts, compute("a"))
    again = ResumeStore(tmp_path / "runs").fetch_or_run(parts, compute("b"))
    assert calls == ["a"]  # the second store loaded the saved piece
    assert first["tag"] == again["tag"] == "a"
    assert again["scores"][0] == 1.0 and again["scores"][1] is None  # NaN is saved as null
    other = store.fetch_or_run({**parts, "task": "svamp"}, compute("c"))
    assert other["tag"] == "c"
    fresh = ResumeStore(tmp_path / "runs", enabled=False)
    assert fresh.fetch_or_run(parts, compute("d"))["tag"] == "d"
    assert (fresh.loaded, fresh.computed) == (0, 1)
    # a damaged file is recomputed with a warning, and replaced
    store.path(parts).write_text("{not json")
    with caplog.at_level("WARNING"):
        assert store.fetch_or_run(parts, compute("e"))["tag"] == "e"
    assert "unreadable" in caplog.text
    assert ResumeStore(tmp_path / "runs").fetch_or_run(parts, compute("f"))["tag"] == "e"


def test_resume_store_keeps_going_when_it_cannot_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from reprokit.results import ResumeStore

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = ResumeStore(blocker / "runs")
    with caplog.at_level("WARNING"):
        assert store.fetch_or_run({"k": 1}, lambda: [1, 2]) == [1, 2]
    assert "could not save" in caplog.text


def test_code_fingerprint_changes_with_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from reprokit.results import code_fingerprint

    pkg = tmp_path / "fpdemo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("fpdemo")
    before = code_fingerprint(module)
    assert before == code_fingerprint(module)
    (pkg / "__init__.py").write_text("X = 2\n")
    assert code_fingerprint(module) != before
