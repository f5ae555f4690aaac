"""Loading from local folders (the paper-scale code path) and the command line."""

from __future__ import annotations

import json

import pytest

from nudging import Nudger, NudgingConfig
from nudging.cli import main


def test_from_pretrained_local_folders(zoo) -> None:
    nudger = Nudger.from_pretrained(
        zoo.paths["base"],
        zoo.paths["nudger_cross"],
        NudgingConfig(max_new_tokens=24),
        device="cpu",
        dtype="float32",
    )
    res = nudger(zoo.questions[0])
    direct = Nudger(
        zoo.base,
        zoo.nudger_cross,
        NudgingConfig(max_new_tokens=24),
    )(zoo.questions[0])
    assert res.text == direct.text


def test_cli_generate(zoo, capsys) -> None:
    rc = main(
        [
            "generate",
            "--base",
            zoo.paths["base"],
            "--nudger",
            zoo.paths["nudger_same"],
            "--prompt",
            zoo.questions[1],
            "--gamma",
            "0.4",
            "--max-new-tokens",
            "24",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    out = capsys.readouterr()
    assert "[" in out.out and "stop:" in out.err
    rc = main(
        [
            "generate",
            "--base",
            zoo.paths["base"],
            "--nudger",
            zoo.paths["nudger_same"],
            "--prompt",
            zoo.questions[1],
            "--max-new-tokens",
            "16",
            "--json",
            "--device",
            "cpu",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["text"] == "".join(s["text"] for s in data["segments"])


def test_cli_errors(zoo, capsys) -> None:
    assert (
        main(
            [
                "generate",
                "--base",
                zoo.paths["base"],
                "--nudger",
                zoo.paths["nudger_same"],
                "--prompt",
                "x",
                "--gamma",
                "1.5",
            ]
        )
        == 2
    )
    assert "gamma" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                "--base",
                zoo.paths["base"],
                "--nudger",
                zoo.paths["nudger_same"],
                "--prompt",
                " ",
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    assert "empty" in capsys.readouterr().err


def test_cli_eval_local_file(zoo, tmp_path, capsys) -> None:
    path = tmp_path / "gsm.jsonl"
    path.write_text(json.dumps({"question": zoo.questions[1], "answer": "#### 3"}) + "\n")
    rc = main(
        [
            "eval",
            "--base",
            zoo.paths["base"],
            "--nudger",
            zoo.paths["nudger_same"],
            "--task",
            "gsm8k",
            "--data-files",
            str(path),
            "--max-new-tokens",
            "16",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 1


def test_cli_eval_rejects_a_bad_batch_size_before_loading(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--base", "missing", "--nudger", "missing", "--task", "gsm8k", "--batch-size", "0"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err
