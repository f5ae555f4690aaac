"""Tests of reprokit.seed, reprokit.progress and reprokit.cli."""

from __future__ import annotations

import argparse
import logging
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from reprokit.cli import (
    CommonArgs,
    add_common_args,
    default_config_path,
    find_repo_root,
    load_toml_config,
    parse_common,
    resolve_cache_dir,
)
from reprokit.progress import configure_logging, is_quiet, progress
from reprokit.seed import derive_seed, set_seed, torch_generator

# ----------------------------------------------------------------------------------------- seed


def _draws(seed: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray, float]:
    rng = set_seed(seed)
    return torch.randn(5), np.random.rand(3), rng.random(3), random.random()  # noqa: NPY002


def test_set_seed_reproducible() -> None:
    t1, g1, r1, p1 = _draws(123)
    t2, g2, r2, p2 = _draws(123)
    assert torch.equal(t1, t2)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(r1, r2)
    assert p1 == p2
    t3, g3, r3, _ = _draws(124)
    assert not np.array_equal(g1, g3)
    assert not torch.equal(t1, t3)
    assert not np.array_equal(r1, r3)
    np.testing.assert_array_equal(r1, np.random.default_rng(123).random(3))


def test_set_seed_deterministic_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    # spy instead of the real call: it imports torch._inductor (seconds) and is process-global
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    set_seed(0)
    assert calls == [] and torch.backends.cudnn.benchmark is True
    set_seed(0, deterministic=True)
    assert calls == [((True,), {"warn_only": True})]
    assert torch.backends.cudnn.deterministic is True
    assert torch.backends.cudnn.benchmark is False
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    with pytest.raises(ValueError, match="non-negative"):
        set_seed(-1)


def test_torch_generator() -> None:
    a = torch.randn(4, generator=torch_generator(5))
    b = torch.randn(4, generator=torch_generator(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.randn(4, generator=torch_generator(6)))


def test_derive_seed_stable_and_distinct() -> None:
    # pinned value: must not change across processes, machines or Python versions
    assert derive_seed(0, "data") == derive_seed(0, "data")
    assert derive_seed(0, "data") == 0x9F1A6895
    seeds = {
        derive_seed(0),
        derive_seed(0, "data"),
        derive_seed(0, "model"),
        derive_seed(1, "data"),
        derive_seed(0, "data", 1),
        derive_seed(0, "data", "1"),
        derive_seed(0, "data1"),
    }
    assert len(seeds) == 7
    assert all(0 <= s < 2**32 for s in seeds)
    many = {derive_seed(7, "rep", i) for i in range(1000)}
    assert len(many) == 1000
    with pytest.raises(TypeError):
        derive_seed(0, 1.5)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- progress


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("REPROKIT_QUIET", raising=False)
    return monkeypatch


def test_progress_disabled_in_ci(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CI", "true")
    assert is_quiet()
    bar = progress(range(3), desc="x")
    assert bar.disable
    assert list(bar) == [0, 1, 2]


def test_progress_quiet_flags(clean_env: pytest.MonkeyPatch) -> None:
    assert not is_quiet()
    clean_env.setenv("CI", "false")
    assert not is_quiet()
    clean_env.setenv("REPROKIT_QUIET", "1")
    assert is_quiet()
    clean_env.setenv("CI", "true")
    clean_env.setenv("REPROKIT_QUIET", "0")  # explicit opt-in beats CI
    assert not is_quiet()


def test_progress_visible_on_a_terminal(clean_env: pytest.MonkeyPatch) -> None:
    class FakeTTY:
        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return True

    out = FakeTTY()
    bar = progress(total=2, desc="work", file=out)
    assert not bar.disable
    bar.update(2)
    bar.close()
    assert "work" in out.text
    clean_env.setenv("CI", "1")
    assert progress(total=2, file=FakeTTY()).disable


def test_configure_logging() -> None:
    root = logging.getLogger()
    saved = (root.level, root.handlers[:])
    try:
        configure_logging("debug")
        assert root.level == logging.DEBUG
        assert len(root.handlers) == 1
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


# ----------------------------------------------------------------------------------------- cli


def _parse(argv: list[str], paper: str = "palimpsest") -> CommonArgs:
    parser = argparse.ArgumentParser()
    add_common_args(parser, paper=paper)
    return parse_common(parser.parse_args(argv), paper=paper)


def test_cli_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    clean_env.delenv("REPROKIT_CACHE", raising=False)
    args = _parse([])
    assert args == CommonArgs(
        scale="tiny",
        out=Path("results/palimpsest/tiny"),
        seed=0,
        device="auto",
        dtype="auto",
        cache_dir=Path.home() / ".cache" / "reprokit",
        config=None,
        smoke=False,
    )
    assert _parse(["--scale", "paper"]).out == Path("results/palimpsest/paper")


def test_cli_overrides(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "my.toml"
    cfg.write_text('lr = 0.1\n[model]\nname = "tiny"\n')
    args = _parse(
        [
            "--scale", "paper", "--out", str(tmp_path / "o"), "--seed", "42", "--device", "cuda:1",
            "--dtype", "bfloat16", "--cache-dir", str(tmp_path / "c"), "--config", str(cfg), "--smoke",
            "--threads", "1",
        ]
    )  # fmt: skip
    assert args == CommonArgs("paper", tmp_path / "o", 42, "cuda:1", "bfloat16", tmp_path / "c", cfg, True, 1)
    assert load_toml_config(args.config) == {"lr": 0.1, "model": {"name": "tiny"}}


def test_cli_threads_default_to_one_at_tiny_scale_and_reject_zero(capsys) -> None:
    from reprokit.threads import apply_threads

    before = torch.get_num_threads()
    try:
        assert apply_threads(_parse([]).threads, scale="paper") is None
        assert torch.get_num_threads() == before
        assert apply_threads(_parse([]).threads, scale="tiny") == 1
        assert torch.get_num_threads() == 1
        assert apply_threads(_parse(["--threads", "2"]).threads, scale="tiny") == 2
        assert torch.get_num_threads() == 2
        with pytest.raises(SystemExit):
            _parse(["--threads", "0"])
        assert "must be a positive integer, got '0'" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "argv", [["--device", "gpu"], ["--dtype", "int8"], ["--scale", "huge"], ["--seed", "-1"]]
)
def test_cli_rejects_bad_values(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(argv)
    err = capsys.readouterr().err
    assert "invalid" in err or "non-negative" in err


def test_cli_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--config"):
        _parse(["--config", str(tmp_path / "nope.toml")])


def test_cache_dir_env(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("REPROKIT_CACHE", str(tmp_path / "cache"))
    assert resolve_cache_dir() == tmp_path / "cache"
    assert _parse([]).cache_dir == tmp_path / "cache"
    assert resolve_cache_dir(tmp_path / "x") == tmp_path / "x"
    clean_env.delenv("REPROKIT_CACHE")
    assert resolve_cache_dir() == Path.home() / ".cache" / "reprokit"


def test_default_config_path_walks_up(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = tmp_path / "repo" / "reproduce" / "configs" / "nudging"
    conf.mkdir(parents=True)
    (conf / "tiny.toml").write_text("steps = 3\n")
    deep = tmp_path / "repo" / "a" / "b"
    deep.mkdir(parents=True)
    clean_env.chdir(deep)
    assert find_repo_root() == (tmp_path / "repo").resolve()
    expected = (tmp_path / "repo").resolve() / "reproduce" / "configs" / "nudging" / "tiny.toml"
    assert default_config_path("nudging", "tiny") == expected
    assert default_config_path("nudging", "paper", root=tmp_path / "repo") == (
        tmp_path / "repo" / "reproduce" / "configs" / "nudging" / "paper.toml"
    )
    args = _parse([], paper="nudging")
    assert args.config == expected  # the scale's config, found from a subdirectory
    assert load_toml_config(args.config) == {"steps": 3}
    assert _parse(["--scale", "paper"], paper="nudging").config is None  # no paper.toml there


def test_load_toml_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        load_toml_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("x = = 1\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_toml_config(bad)


def test_positive_int_argparse_type() -> None:
    import argparse

    from reprokit.cli import positive_int

    assert positive_int("3") == 3
    for bad in ("0", "-2", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="a positive integer"):
            positive_int(bad)


def test_fresh_flag_only_for_resumable_reproductions() -> None:
    import argparse

    from reprokit.cli import add_common_args, parse_common

    plain = argparse.ArgumentParser()
    add_common_args(plain, paper="demo")
    assert parse_common(plain.parse_args([]), paper="demo").fresh is False
    with pytest.raises(SystemExit):
        plain.parse_args(["--fresh"])
    resumable = argparse.ArgumentParser()
    add_common_args(resumable, paper="demo", resumable=True)
    assert parse_common(resumable.parse_args(["--fresh"]), paper="demo").fresh is True


def test_config_from_mapping_checks_keys_and_freezes_lists() -> None:
    import dataclasses

    from reprokit.config import config_from_mapping

    @dataclasses.dataclass(frozen=True)
    class Inner:
        a: int = 1

    @dataclasses.dataclass(frozen=True)
    class Outer:
        xs: tuple = ()
        pairs: tuple = ()
        inner: Inner = Inner()

    cfg = config_from_mapping(Outer, {"xs": [1, 2], "pairs": [[1, 2]]}, inner=Inner(3))
    assert cfg == Outer(xs=(1, 2), pairs=((1, 2),), inner=Inner(3))
    hash(cfg)
    with pytest.raises(
        ValueError, match=r"unknown config key\(s\) \['bad'\] in \[demo\]; valid keys: \['inner', 'pairs'"
    ):
        config_from_mapping(Outer, {"bad": 1}, path="demo")
