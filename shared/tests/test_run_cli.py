"""`reprokit.cli.run_cli`, output-path checks, input-file checks and lazy package exports."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from reprokit.cli import check_output_path, run_cli
from reprokit.datafiles import check_input_file, jsonl_problem, read_jsonl, read_text_lines
from reprokit.errors import ConfigError, DataError, OutputPathError


def _raiser(exc: BaseException):
    def main(argv: list[str]) -> int:
        raise exc

    return main


# ------------------------------------------------------------------------------------------ run_cli
def test_user_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(_raiser(DataError("bad file x.jsonl\n  line 3; fix it")), [], prog="tool") == 2
    assert capsys.readouterr().err == "tool: error: bad file x.jsonl line 3; fix it\n"


def test_debug_flag_and_env_show_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def main(argv: list[str]) -> None:
        seen.append(argv)
        raise ConfigError("bad option")

    assert run_cli(main, ["run", "--debug", "--", "--debug"], prog="tool") == 2
    assert seen[-1] == ["run", "--", "--debug"]  # removed before main sees it, kept after "--"
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("tool: error: bad option\n")
    monkeypatch.setenv("REPROKIT_DEBUG", "1")
    assert run_cli(main, [], prog="tool") == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("REPROKIT_DEBUG", "0")
    assert run_cli(main, [], prog="tool") == 2
    assert "Traceback" not in capsys.readouterr().err


def test_interrupt_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(_raiser(KeyboardInterrupt()), [], prog="tool") == 130
    assert capsys.readouterr().err == "tool: interrupted\n"


def test_bugs_keep_their_traceback_and_argparse_exits_pass_through() -> None:
    with pytest.raises(ZeroDivisionError):
        run_cli(_raiser(ZeroDivisionError("a bug")), [], prog="tool")
    with pytest.raises(ValueError, match="plain ValueError"):  # not a UserError: a bug, not bad input
        run_cli(_raiser(ValueError("plain ValueError")), [], prog="tool")
    with pytest.raises(SystemExit):
        run_cli(_raiser(SystemExit(2)), [], prog="tool")


def test_return_values_and_default_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(lambda argv: None, [], prog="tool") == 0
    assert run_cli(lambda argv: 3, [], prog="tool") == 3
    monkeypatch.setattr(sys, "argv", ["tool", "a", "--debug", "b"])
    got: list[list[str]] = []
    assert run_cli(lambda argv: got.append(argv), prog="tool") == 0
    assert got == [["a", "b"]]


# --------------------------------------------------------------------------------- output paths
def test_check_output_path(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    assert check_output_path(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"
    assert not (tmp_path / "new").exists()  # checked, not created
    assert check_output_path(tmp_path / "out", folder=True) == tmp_path / "out"
    with pytest.raises(OutputPathError, match="a-file is a file"):
        check_output_path(tmp_path / "a-file" / "x" / "r.json")
    with pytest.raises(OutputPathError, match="is a folder; pass a file path"):
        check_output_path(tmp_path)
    with pytest.raises(OutputPathError, match=r"--results .* exists and is not a folder"):
        check_output_path(tmp_path / "a-file", option="--results", folder=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_check_output_path_read_only(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match="is not writable"):
            check_output_path(tmp_path / "r.json")
    finally:
        tmp_path.chmod(0o700)


# ---------------------------------------------------------------------------------- input files
def test_input_file_checks(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert read_jsonl(good, what="--in") == [(1, {"a": 1}), (3, {"a": 2})]
    assert jsonl_problem(good) is None
    (tmp_path / "empty.txt").write_text(" \n")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    (tmp_path / "list.jsonl").write_text("[1]\n")
    (tmp_path / "x.parquet").write_bytes(b"PAR1 but not at the end")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x80")
    (tmp_path / "dir").mkdir()
    cases = [
        (lambda: check_input_file(tmp_path / "nope", what="--in"), "--in .*nope: no such file"),
        (lambda: check_input_file(tmp_path / "dir", what="--in"), "is a folder"),
        (lambda: check_input_file(tmp_path / "empty.txt", what="--in"), "is empty"),
        (lambda: check_input_file(tmp_path / "x.parquet", what="--in"), "not a parquet file"),
        (lambda: read_text_lines(tmp_path / "bin.txt", what="--in"), "not UTF-8 text"),
        (lambda: read_jsonl(tmp_path / "bad.jsonl", what="--in"), "line 2 is not valid JSON"),
        (lambda: read_jsonl(tmp_path / "list.jsonl", what="--in"), "line 1 is a JSON list"),
    ]
    for call, message in cases:
        with pytest.raises(DataError, match=message):
            call()
    assert jsonl_problem(tmp_path / "bad.jsonl") == "line 2: Expecting value"


# -------------------------------------------------------------------------------- lazy exports
def test_lazy_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    from reprokit.lazy import lazy_exports

    package = types.ModuleType("fakepkg")
    monkeypatch.setitem(sys.modules, "fakepkg", package)
    names, getattr_, dir_ = lazy_exports("fakepkg", {"reprokit.errors": ("DataError", "ConfigError")})
    package.__getattr__ = getattr_  # type: ignore[attr-defined]
    assert names == ["ConfigError", "DataError"]
    assert "DataError" in dir_() and "DataError" not in vars(package)
    assert package.DataError is DataError
    assert vars(package)["DataError"] is DataError  # cached: the next look-up is a plain attribute
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        package.nope  # noqa: B018
