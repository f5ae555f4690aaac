"""Bad input to `nudging`: one line naming the problem, exit status 2, and nothing written.

Each case runs `main([...])` in-process from an empty working folder with `--out` inside it, and checks
the message's key phrase, the exit status, that no traceback is shown, and that the folder is still
empty afterwards. The models are untrained tiny folders (`reprokit.testing`), so this runs in seconds.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from nudging.cli import main
from reprokit.testing import BAD_MODELS, check_bad_input, run_main, write_bad_models
from reprokit.tokenizer import train_tokenizer

CORPUS = [f"Question: what is {i} plus {i % 5}? Answer: {i + i % 5}." for i in range(60)]


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model folders and task files, good and bad, shared by every case (never written to by them)."""
    d = tmp_path_factory.mktemp("inputs")
    paths: dict[str, Path] = {"dir": d}
    models = write_bad_models(d / "models", train_tokenizer(CORPUS, vocab_size=300, chat_template=True))
    paths["good"] = models.pop("good")
    paths.update({f"model_{kind}": folder for kind, folder in models.items()})
    plain = write_bad_models(d / "plain", train_tokenizer(CORPUS, vocab_size=300))["good"]
    paths["model_no-chat-template"] = plain
    _jsonl(d / "gsm.jsonl", [{"question": "What is 2 plus 2?", "answer": "#### 4"}])
    _jsonl(d / "no-question.jsonl", [{"prompt": "What is 2 plus 2?", "answer": "#### 4"}])
    _jsonl(d / "rows-are-lists.jsonl", [[1, 2], [3, 4]])
    _jsonl(
        d / "mmlu.jsonl",
        [{"question": "Pick one", "choices": ["a", "b", "c", "d"], "answer": 1, "subject": "x"}],
    )
    (d / "empty.jsonl").write_text("")
    (d / "bad.jsonl").write_text('{"question": "q", "answer": "1"}\n{"question": \n')
    (d / "gsm.csv").write_text("question,answer\nq,1\n")
    (d / "fake.parquet").write_text("not parquet")
    (d / "a-folder.jsonl").mkdir()
    (d / "a-file").write_text("x\n")
    return paths


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder: nothing may appear in it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _run(argv: list[str]) -> int:
    return run_main(main, argv)


GEN = [
    "generate",
    "--base",
    "{good}",
    "--nudger",
    "{good}",
    "--prompt",
    "What is 2 plus 2?",
    "--device",
    "cpu",
]
EVAL = ["eval", "--base", "{good}", "--nudger", "{good}", "--task", "gsm8k", "--device", "cpu"]
LOCAL = [*EVAL, "--data-files", "{dir}/gsm.jsonl"]


def _with(argv: list[str], **changes: str) -> list[str]:
    """`argv` with the value of each ``--option`` replaced (option names with _ for -)."""
    out = list(argv)
    for option, value in changes.items():
        flag = "--" + option.replace("_", "-")
        out[out.index(flag) + 1] = value
    return out


# (id, argv, key phrase of the message)
CASES: list[tuple[str, list[str], str]] = [
    # ------------------------------------------------------------------------------- options
    ("gamma-above-1", [*GEN, "--gamma", "1.5"], "gamma must be a probability in [0, 1]"),
    ("gamma-negative", [*GEN, "--gamma", "-0.1"], "gamma must be a probability in [0, 1]"),
    ("gamma-nan", [*GEN, "--gamma", "nan"], "gamma must be a probability in [0, 1]"),
    ("gamma-not-a-number", [*GEN, "--gamma", "high"], "invalid float value"),
    ("max-new-tokens-zero", [*GEN, "--max-new-tokens", "0"], "max_new_tokens must be a positive int"),
    ("lookahead-zero", [*GEN, "--lookahead", "0"], "lookahead_tokens must be a positive int"),
    ("temperature-zero", [*GEN, "--sample", "--temperature", "0"], "temperature must be > 0"),
    ("top-p-zero", [*GEN, "--top-p", "0"], "top_p must be in (0, 1]"),
    ("top-p-above-1", [*GEN, "--top-p", "1.5"], "top_p must be in (0, 1]"),
    ("seed-negative", [*GEN, "--seed", "-1"], "non-negative integer"),
    ("device-unknown", _with(GEN, device="gpu"), "invalid device"),
    ("device-cuda-absent", _with(GEN, device="cuda"), "CUDA is not available"),
    ("device-mps-absent", _with(GEN, device="mps"), "MPS is not available"),
    ("dtype-unknown", [*GEN, "--dtype", "int8"], "invalid choice"),
    ("prompt-empty", _with(GEN, prompt=""), "prompt/question is empty"),
    ("prompt-blank", _with(GEN, prompt="   \n "), "prompt/question is empty"),
    ("prompt-missing", GEN[:5] + GEN[7:], "the following arguments are required: --prompt"),
    ("eval-batch-size-zero", [*LOCAL, "--batch-size", "0"], "positive integer"),
    ("eval-n-zero", [*LOCAL, "-n", "0"], "positive integer"),
    ("eval-unknown-task", _with(LOCAL, task="gsm9k"), "invalid choice: 'gsm9k'"),
    (
        "eval-judge-task-without-judge",
        _with(LOCAL, task="mmlu", data_files="{dir}/mmlu.jsonl"),
        "needs a judge",
    ),
    ("eval-judge-without-client-or-key", [*LOCAL, "--judge-model", "gpt-4o-mini"], "the judge needs"),
    # --------------------------------------------------------------------------- task files
    ("data-files-missing", _with(LOCAL, data_files="{dir}/nope.jsonl"), "no such file"),
    ("data-files-empty", _with(LOCAL, data_files="{dir}/empty.jsonl"), "is empty"),
    ("data-files-malformed", _with(LOCAL, data_files="{dir}/bad.jsonl"), "line 2"),
    ("data-files-not-objects", _with(LOCAL, data_files="{dir}/rows-are-lists.jsonl"), "a JSON list"),
    ("data-files-wrong-type", _with(LOCAL, data_files="{dir}/gsm.csv"), "unknown or mixed formats"),
    ("data-files-fake-parquet", _with(LOCAL, data_files="{dir}/fake.parquet"), "not a parquet file"),
    ("data-files-folder", _with(LOCAL, data_files="{dir}/a-folder.jsonl"), "is a folder"),
    ("data-files-missing-field", _with(LOCAL, data_files="{dir}/no-question.jsonl"), "needs the fields"),
    ("task-not-on-this-machine", _with(EVAL, task="strategyqa"), "could not load task 'strategyqa'"),
    # ------------------------------------------------------------------------------ --out
    ("out-under-a-file", [*GEN, "--out", "{dir}/a-file/result.json"], "is a file"),
    ("out-is-a-folder", [*GEN, "--out", "{dir}"], "is a folder"),
    ("eval-out-under-a-file", [*LOCAL, "--out", "{dir}/a-file/x/result.json"], "is a file"),
    # ------------------------------------------------------------------------------ models
    ("base-missing", _with(GEN, base="{dir}/no-model"), "does not exist"),
    ("nudger-missing", _with(GEN, nudger="{dir}/no-model"), "does not exist"),
    ("base-is-a-file", _with(GEN, base="{dir}/a-file"), "is a file"),
    ("nudger-without-chat-template", _with(GEN, nudger="{model_no-chat-template}"), "has no chat template"),
    *[
        (f"base-{kind}", _with(GEN, base="{model_" + kind + "}"), phrase)
        for kind, phrase in BAD_MODELS.items()
    ],
    ("nudger-encoder-only", _with(GEN, nudger="{model_encoder-only}"), "encoder-only"),
    ("nudger-custom-code", _with(LOCAL, nudger="{model_custom-code}"), "never runs code"),
]


@pytest.mark.parametrize(("argv", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(
    argv: list[str],
    phrase: str,
    data: dict[str, Path],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    # the same answers on a machine with a GPU or an Apple chip, and without an API key
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = [a.format(**{k: str(v) for k, v in data.items()}) for a in argv]
    check_bad_input(
        main, args, prog="nudging", phrase=phrase, workdir=workdir, inputs=data["dir"], capsys=capsys
    )


def test_there_are_at_least_30_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="needs the openai client")
def test_judge_without_api_key(data: dict[str, Path], workdir: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    argv = [a.format(**{k: str(v) for k, v in data.items()}) for a in [*LOCAL, "--judge-model", "x"]]
    assert _run(argv) == 2
    assert "set $OPENAI_API_KEY" in capsys.readouterr().err


def test_debug_shows_the_traceback(data: dict[str, Path], workdir: Path, capsys) -> None:
    argv = [a.format(**{k: str(v) for k, v in data.items()}) for a in [*GEN, "--gamma", "2"]]
    assert _run(["--debug", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConfigError" in err
    assert err.strip().splitlines()[-1].startswith("nudging: error: NudgingConfig.gamma")


def test_a_good_run_writes_its_result(data: dict[str, Path], workdir: Path, capsys) -> None:
    """The control: the same command without the mistake succeeds and writes --out."""
    argv = [a.format(**{k: str(v) for k, v in data.items()}) for a in GEN]
    assert _run([*argv, "--max-new-tokens", "4", "--out", "answer.json"]) == 0
    assert set(json.loads((workdir / "answer.json").read_text())) >= {"text", "segments", "stop_reason"}
