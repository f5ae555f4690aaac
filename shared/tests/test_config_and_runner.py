"""The reproduction contract: typed TOML configs, the multi-seed runner, the output folder, preflight."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reprokit.config import config_from_mapping
from reprokit.errors import ConfigError, OutputPathError, PreflightError
from reprokit.reproduce import Experiment, PaperSpec, Requirement, SeedResults, mean_interval, run
from reprokit.reproduce.output import check_output_dir, staged_output
from reprokit.reproduce.preflight import preflight
from reprokit.results import Claim, new_figure


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    layers: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class Tiny:
    n_seeds: int = 2
    n_items: int = 200
    effect: float = 0.5
    name: str = "toy"
    inner: Inner = field(default_factory=Inner)
    mode: str | None = None


@dataclass(frozen=True)
class Paper:
    n_seeds: int = 1
    model: str = "./no-such-model-folder"


@dataclass(frozen=True)
class ToyConfig:
    tiny: Tiny = field(default_factory=Tiny)
    paper: Paper = field(default_factory=Paper)


def test_config_nested_types_and_conversions() -> None:
    cfg = config_from_mapping(ToyConfig, {"tiny": {"effect": 1, "inner": {"layers": [3, 4, 5]}}})
    assert cfg.tiny.effect == 1.0 and isinstance(cfg.tiny.effect, float)
    assert cfg.tiny.inner.layers == (3, 4, 5)
    assert cfg.paper == Paper()


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ({"tiny": {"n_item": 3}}, "unknown config key(s) ['n_item'] in [tiny]; valid keys"),
        ({"tiny": {"n_items": "3"}}, "'tiny.n_items' must be int, got '3'"),
        ({"tiny": {"n_items": 2.5}}, "'tiny.n_items' must be int"),
        ({"tiny": {"n_items": True}}, "'tiny.n_items' must be int, got True"),
        ({"tiny": {"inner": {"layers": [1, "x"]}}}, "'tiny.inner.layers[1]' must be int"),
        ({"tiny": {"inner": 3}}, "'tiny.inner' must be table (Inner)"),
        ({"tiny": {"mode": 3}}, "'tiny.mode' must be str or None"),
        ({"tiny": {"name": ["a"]}}, "'tiny.name' must be str"),
        ({"bogus": {}}, "unknown config key(s) ['bogus']"),
    ],
)
def test_config_errors_name_key_type_and_value(raw: dict, phrase: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(ToyConfig, raw)
    assert phrase in str(err.value)


def _setup(section: Tiny, ctx) -> dict:
    rng = np.random.default_rng(ctx.seed)
    return {"a": rng.normal(section.effect, 1.0, section.n_items), "b": rng.normal(0.0, 1.0, section.n_items)}


def _table(setup: dict, section: Tiny) -> pd.DataFrame:
    return pd.DataFrame({"system": ["a", "b"], "score": [setup["a"].mean(), setup["b"].mean()]})


def _figure(setup: dict, section: Tiny):
    fig, ax = new_figure()
    ax.hist(setup["a"])
    return fig


def _claims(results: SeedResults, section: Tiny) -> list[Claim]:
    gaps = [
        a - b
        for a, b in zip(
            results.values("t", "score", system="a"), results.values("t", "score", system="b"), strict=True
        )
    ]
    return [Claim.across_seeds("gap", "a beats b", gaps, ">", 0.0, source="toy §1")]


def _fail(setup: dict, section: Tiny) -> pd.DataFrame:
    raise RuntimeError("boom")


SPEC = PaperSpec(
    name="toy",
    title="Toy paper",
    config_class=ToyConfig,
    setup=_setup,
    experiments=[Experiment("t", _table, "a table"), Experiment("f", _figure, "a figure", kind="figure")],
    claims=_claims,
    requirements=lambda section: [Requirement("model", section.model)],
)


def test_run_writes_mean_per_seed_and_claims(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    run(SPEC, ToyConfig(), scale="tiny", out=out, seed=5, n_seeds=3, cache_dir=tmp_path / "cache")
    mean = pd.read_csv(out / "t.csv")
    per_seed = pd.read_csv(out / "t_per_seed.csv")
    assert sorted(per_seed["seed"].unique()) == [5, 6, 7]
    assert list(mean["n_seeds"]) == [3, 3]
    a = per_seed[per_seed.system == "a"]["score"]
    assert mean.loc[mean.system == "a", "score"].item() == pytest.approx(a.mean())
    assert (
        mean.loc[mean.system == "a", "score_lo"].item()
        < a.mean()
        < mean.loc[mean.system == "a", "score_hi"].item()
    )
    shown = (out / "t.md").read_text()
    assert "score_lo" not in shown and f"{mean.score[0]:.4g} [{mean.score_lo[0]:.4g}, " in shown
    claim = json.loads((out / "claims.json").read_text())["claims"][0]
    assert claim["holds"] and claim["interval"][0] > 0 and len(claim["per_seed"]) == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["seeds"] == [5, 6, 7]
    assert (out / "f.png").is_file() and (out / "REPORT.md").is_file()
    assert not list(tmp_path.rglob(".*partial*"))


def test_only_rank_0_writes_under_a_distributed_launcher(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("RANK", "1")
    assert run(SPEC, ToyConfig(), scale="tiny", out=out, n_seeds=1, cache_dir=tmp_path / "c") == out
    assert not out.exists()  # rank 1 ran the experiments and wrote nothing
    assert not list(Path(tempfile.gettempdir()).glob("reprokit-rank1-*"))
    monkeypatch.setenv("RANK", "0")
    run(SPEC, ToyConfig(), scale="tiny", out=out, n_seeds=1, cache_dir=tmp_path / "c")
    assert (out / "t.csv").is_file() and (out / "REPORT.md").is_file()


def test_seed_changes_every_table(tmp_path: Path) -> None:
    run(SPEC, ToyConfig(), scale="tiny", out=tmp_path / "x", seed=0, n_seeds=1, cache_dir=tmp_path)
    run(SPEC, ToyConfig(), scale="tiny", out=tmp_path / "y", seed=1, n_seeds=1, cache_dir=tmp_path)
    assert (tmp_path / "x" / "t.csv").read_text() != (tmp_path / "y" / "t.csv").read_text()


def test_item_tables_reach_the_claims_and_only_a_csv(tmp_path: Path) -> None:
    seen: list[pd.DataFrame] = []

    def items(setup: dict, section: Tiny) -> pd.DataFrame:
        return pd.DataFrame({"item": range(section.n_items), "a": setup["a"], "b": setup["b"]})

    def claims(results: SeedResults, section: Tiny) -> list[Claim]:
        seen.append(results.stacked("i"))
        return _claims(results, section)

    experiments = [*SPEC.experiments, Experiment("i", items, "per item", kind="items")]
    spec = PaperSpec(**{**SPEC.__dict__, "experiments": experiments, "claims": claims})
    out = tmp_path / "out"
    run(spec, ToyConfig(), scale="tiny", out=out, seed=3, n_seeds=2, cache_dir=tmp_path)
    assert sorted(seen[0]["seed"].unique()) == [3, 4] and len(seen[0]) == 2 * Tiny().n_items
    saved = pd.read_csv(out / "i.csv")
    assert list(saved.columns) == ["seed", "item", "a", "b"] and len(saved) == 2 * Tiny().n_items
    assert not [p.name for p in out.iterdir() if p.name.startswith("i.") and p.suffix != ".csv"]
    assert not (out / "i_per_seed.csv").exists() and "### i\n" not in (out / "REPORT.md").read_text()


def test_failed_run_leaves_nothing_and_keeps_existing_files(tmp_path: Path) -> None:
    bad = PaperSpec(**{**SPEC.__dict__, "experiments": [Experiment("t", _table), Experiment("z", _fail)]})
    with pytest.raises(RuntimeError, match="boom"):
        run(bad, ToyConfig(), scale="tiny", out=tmp_path / "new" / "out", cache_dir=tmp_path / "c")
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "old"
    existing.mkdir()
    (existing / "t.csv").write_text("precious")
    (existing / "mine.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        run(bad, ToyConfig(), scale="tiny", out=existing, cache_dir=tmp_path / "c")
    assert (existing / "t.csv").read_text() == "precious"
    assert sorted(p.name for p in existing.iterdir()) == ["mine.txt", "t.csv"]
    run(SPEC, ToyConfig(), scale="tiny", out=existing, n_seeds=1, cache_dir=tmp_path / "c")
    assert (existing / "mine.txt").read_text() == "keep" and (existing / "t.csv").read_text() != "precious"


def test_output_dir_checked_before_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        check_output_dir(blocker / "out")
    with pytest.raises(OutputPathError, match="not a folder"):
        check_output_dir(blocker)
    calls = []
    spec = PaperSpec(**{**SPEC.__dict__, "setup": lambda s, c: calls.append(1)})
    with pytest.raises(OutputPathError):
        run(spec, ToyConfig(), scale="tiny", out=blocker / "out", cache_dir=tmp_path)
    assert calls == []


def test_unwritable_output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))  # root
    with pytest.raises(OutputPathError, match="not writable"):
        check_output_dir(ro / "out")


def test_staged_output_moves_files_in_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with staged_output(out) as stage:
        (stage / "sub").mkdir()
        (stage / "sub" / "x.txt").write_text("1")
        assert not out.exists()
    assert (out / "sub" / "x.txt").read_text() == "1"


def test_preflight_lists_every_missing_requirement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    here = tmp_path / "model"
    here.mkdir()
    reqs = [
        Requirement("model", str(here)),
        Requirement("model", "nobody/missing-model", why="suspect"),
        Requirement("dataset", "nobody/missing-data"),
        Requirement("model", str(tmp_path / "gone")),
    ]
    with pytest.raises(PreflightError) as err:
        preflight(reqs)
    text = str(err.value)
    assert (
        "3 of 4" in text
        and "nobody/missing-model (suspect)" in text
        and "dataset nobody/missing-data" in text
    )
    assert str(tmp_path / "gone") in text and "offline" in text
    assert preflight(reqs[:1]) == {str(here): str(here)}


def test_paper_scale_runs_preflight_before_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []
    spec = PaperSpec(**{**SPEC.__dict__, "setup": lambda s, c: calls.append(1)})
    with pytest.raises(PreflightError, match="no-such-model-folder"):
        run(spec, ToyConfig(), scale="paper", out=tmp_path / "o", cache_dir=tmp_path)
    assert calls == [] and not (tmp_path / "o").exists()


def test_mean_interval() -> None:
    assert mean_interval([1.0])[0] == 1.0 and np.isnan(mean_interval([1.0])[1])
    m, lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo == pytest.approx(2.0 - 4.302653 / np.sqrt(3)) and hi > 3.0
