"""Bad input to `palimpsest`: one line naming the problem, exit status 2, and nothing written.

Each case runs `main([...])` in-process from an empty working folder (where the default output file
would go) with `--out` inside it, and checks the message's key phrase, the exit status, that stderr is one
line (two for argparse's own usage errors) and that the folder is still empty afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from palimpsest.cli import main
from reprokit.testing import BAD_MODELS, check_bad_input, run_main, write_bad_models
from reprokit.tokenizer import train_tokenizer

CORPUS = [f"Item {i} is {c} and weighs {i % 7} kg." for i in range(40) for c in ("red", "blue")]


def _rows(n: int = 6, **extra) -> list[dict]:
    rows = [
        {
            "index": i,
            "tokens": [5 + i, 9, 11 + i],
            "step": i // 2,
            "block": i % 2,
            "loss_a": 1.0 + i,
            "loss_b": 2.0,
        }
        for i in range(n)
    ]
    for key, values in extra.items():
        for row, value in zip(rows, values, strict=False):
            row[key] = value
    return rows


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Input files, good and bad, and model folders, shared by every case (never written to by them)."""
    d = tmp_path_factory.mktemp("inputs")
    paths: dict[str, Path] = {"dir": d}
    models = write_bad_models(d / "models", train_tokenizer(CORPUS, vocab_size=300, chat_template=True))
    paths["good_model"] = models.pop("good")
    paths.update({f"model_{kind}": folder for kind, folder in models.items()})
    pickled = shutil.copytree(paths["good_model"], d / "models" / "pickle-weights")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    paths["model_pickle-weights"] = pickled
    no_config = shutil.copytree(paths["good_model"], d / "models" / "no-config")
    (no_config / "config.json").unlink()
    paths["model_no-config"] = no_config
    paths["t"] = _jsonl(d / "t.jsonl", _rows())
    paths["t_same_losses"] = _jsonl(d / "same.jsonl", [{**r, "loss_a": 2.0} for r in _rows()])
    paths["t_neg"] = _jsonl(
        d / "neg.jsonl", [{**r, "tokens": [3, -2]} if r["index"] == 2 else r for r in _rows()]
    )
    paths["t_oov"] = _jsonl(
        d / "oov.jsonl", [{**r, "tokens": [3, 5000]} if r["index"] == 1 else r for r in _rows()]
    )
    paths["t_dup"] = _jsonl(d / "dup.jsonl", [{**r, "index": 0} for r in _rows()])
    paths["t_text"] = _jsonl(d / "text.jsonl", [{"index": i, "text": f"doc {i}"} for i in range(5)])
    paths["t_two_steps"] = _jsonl(d / "two.jsonl", [{**r, "step": r["index"] % 2} for r in _rows()])
    (d / "empty.jsonl").write_text("")
    (d / "blank.jsonl").write_text("\n  \n")
    (d / "bad.jsonl").write_text('{"index": 0, "tokens": [1, 2]}\n{"index": 1, "tokens": [3,\n')
    (d / "list.jsonl").write_text("[1, 2, 3]\n")
    (d / "t.csv").write_text("index,tokens\n0,1\n")
    (d / "fake.parquet").write_text("not parquet")
    (d / "empty-dir").mkdir()
    # suspect texts
    _jsonl(d / "texts.jsonl", [{"text": "Item 3 is red"}, {"text": "Item 4 is blue"}])
    _jsonl(d / "tok-texts.jsonl", [{"tokens": [5, 9, 11]}, {"tokens": [7, 9, 12]}])
    _jsonl(d / "texts-oov.jsonl", [{"tokens": [5, 9, 999]}])
    _jsonl(d / "texts-neg.jsonl", [{"tokens": [5, -1, 9]}])
    _jsonl(d / "texts-float.jsonl", [{"tokens": [5, 1.5, 9]}])
    _jsonl(d / "texts-nofield.jsonl", [{"text": "a b c"}, {"body": "no text here"}])
    _jsonl(d / "texts-prompt.jsonl", [{"tokens": [5, 9, 11], "prompt": 7}])
    (d / "texts-bad.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n{"text": \n')
    (d / "texts-binary.txt").write_bytes(b"\xff\xfe\x00 binary \x80\x81\n")
    (d / "texts-empty.txt").write_text("\n\n")
    (d / "lines.txt").write_text("Item 3 is red\n")
    return paths


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder: the default output file would land here."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _run(argv: list[str]) -> int:
    return run_main(main, argv)


def _format(argv: str, data: dict[str, Path]) -> list[str]:
    return [part.format(**{k: str(v) for k, v in data.items()}) for part in argv.split()]


Q = "query --transcript {t} --loss-column loss_a"
QM = "query --transcript {t} --suspect {good_model} --device cpu"
R = "reshuffle --original {good_model} --reshuffled {good_model}/../good-model-copy --texts {dir}/texts.jsonl"
G = "ngram --transcript {t} --texts {dir}/tok-texts.jsonl"

# (id, argv, key phrase of the message)
CASES = [
    # ------------------------------------------------------------------------ transcript files
    ("transcript-missing", "query --transcript {dir}/nope.jsonl --loss-column loss_a", "no such file"),
    ("transcript-missing-dir", "query --transcript ./no/such/dir --loss-column loss_a", "no such file"),
    ("transcript-empty", "query --transcript {dir}/empty.jsonl --loss-column loss_a", "is empty"),
    ("transcript-blank", "query --transcript {dir}/blank.jsonl --loss-column loss_a", "is empty"),
    ("transcript-malformed", "query --transcript {dir}/bad.jsonl --loss-column loss_a", "line 2"),
    (
        "transcript-not-objects",
        "query --transcript {dir}/list.jsonl --loss-column loss_a",
        "line 1: a JSON list",
    ),
    ("transcript-csv", "query --transcript {dir}/t.csv --loss-column loss_a", "unknown transcript format"),
    (
        "transcript-fake-parquet",
        "query --transcript {dir}/fake.parquet --loss-column loss_a",
        "not a parquet file",
    ),
    ("transcript-empty-folder", "query --transcript {dir}/empty-dir --loss-column loss_a", "save_to_disk"),
    (
        "transcript-negative-token",
        "query --transcript {t_neg} --loss-column loss_a",
        "negative token id (-2)",
    ),
    (
        "transcript-duplicate-positions",
        "query --transcript {t_dup} --loss-column loss_a",
        "duplicate positions",
    ),
    (
        "transcript-oov-for-suspect",
        "query --transcript {t_oov} --suspect {good_model} --device cpu",
        "token id 5000",
    ),
    (
        "transcript-equal-losses",
        "query --transcript {t_same_losses} --loss-column loss_a --reference-loss-column loss_b",
        "all equal",
    ),
    # ------------------------------------------------------------------------------ columns
    (
        "loss-column-missing",
        "query --transcript {t} --loss-column loss_nope",
        "loss columns ['loss_nope'] not in",
    ),
    (
        "reference-loss-column-missing",
        Q + " --reference-loss-column loss_zz",
        "loss columns ['loss_zz'] not in",
    ),
    ("step-column-missing", Q + " --step-column nope", "step column 'nope' not in the transcript"),
    ("block-column-missing", Q + " --block-column nope", "block column 'nope' not in the transcript"),
    ("position-column-missing", Q + " --position-column nope", "position column 'nope' not in"),
    ("ngram-text-transcript", "ngram --transcript {t_text} --texts {dir}/tok-texts.jsonl", "no token column"),
    ("ngram-two-steps", G.replace("{t}", "{t_two_steps}") + " --step-column step", "distinct training steps"),
    # ------------------------------------------------------------------------------ options
    ("no-suspect", "query --transcript {t}", "pass --suspect"),
    ("suspect-and-loss-column", Q + " --suspect {good_model}", "not both"),
    (
        "reference-loss-without-loss",
        "query --transcript {t} --suspect {good_model} --reference-loss-column loss_b",
        "needs --loss-column",
    ),
    ("reference-with-loss-column", Q + " --reference {good_model}", "--reference-loss-column"),
    ("n-too-small", Q + " --n 2", "at least 3"),
    ("n-larger-than-transcript", Q + " --n 50", "larger than the transcript"),
    ("batch-size-zero", QM + " --batch-size 0", "positive integer"),
    ("batch-size-text", QM + " --batch-size many", "positive integer"),
    ("permutations-negative", Q + " --permutations -1", "non-negative integer"),
    ("prefix-tokens-negative", QM + " --prefix-tokens -3", "non-negative integer"),
    ("seed-negative", Q + " --seed -1", "non-negative integer"),
    ("device-unknown", QM.replace("cpu", "gpu"), "invalid device"),
    ("device-cuda-absent", QM.replace("cpu", "cuda"), "CUDA is not available"),
    ("dtype-unknown", QM + " --dtype int8", "invalid choice"),
    ("ngram-max-n-zero", G + " --max-n 0", "positive integer"),
    ("ngram-permutations-zero", G + " --permutations 0", "positive integer"),
    (
        "ngram-strings-without-tokenizer",
        "ngram --transcript {t} --texts {dir}/texts.jsonl",
        "pass --tokenizer",
    ),
    ("ngram-tokenizer-missing", G + " --tokenizer {dir}/no-tokenizer-here", "does not exist"),
    ("ngram-tokenizer-of-no-model", G + " --tokenizer {model_no-tokenizer}", "no tokenizer files"),
    ("ngram-transcript-oov", G.replace("{t}", "{t_oov}") + " --tokenizer {good_model}", "token id 5000"),
    ("transcript-tokenizer-missing", QM + " --transcript-tokenizer {dir}/nope-tok", "does not exist"),
    (
        "transcript-tokenizer-oov",
        QM.replace("{t}", "{t_oov}") + " --transcript-tokenizer {good_model}",
        "token id 5000",
    ),
    # ---------------------------------------------------------------------------- --out paths
    ("out-under-a-file", Q + " --out {dir}/t.csv/result.json", "is a file"),
    ("out-is-a-folder", Q + " --out {dir}", "is a folder"),
    ("ngram-out-under-a-file", G + " --out {dir}/lines.txt/x/result.json", "is a file"),
    # --------------------------------------------------------------------------- suspect texts
    ("texts-missing", R.replace("texts.jsonl", "nope.jsonl"), "no such file"),
    ("texts-folder", R.replace("{dir}/texts.jsonl", "{dir}/empty-dir"), "is a folder"),
    ("texts-empty", R.replace("texts.jsonl", "texts-empty.txt"), "is empty"),
    ("texts-malformed", R.replace("texts.jsonl", "texts-bad.jsonl"), "line 3 is not valid JSON"),
    ("texts-wrong-type", R.replace("texts.jsonl", "t.csv"), "unknown format '.csv'"),
    ("texts-binary", R.replace("texts.jsonl", "texts-binary.txt"), "not UTF-8 text"),
    ("texts-negative-token", R.replace("texts.jsonl", "texts-neg.jsonl"), "negative token id -1"),
    ("texts-float-token", R.replace("texts.jsonl", "texts-float.jsonl"), "token ids must be integers"),
    ("texts-missing-field", R.replace("texts.jsonl", "texts-nofield.jsonl"), "line 2: no 'text' field"),
    (
        "texts-prompt-too-long",
        R.replace("texts.jsonl", "texts-prompt.jsonl"),
        "'prompt' must be the prompt length",
    ),
    ("texts-oov-token", R.replace("texts.jsonl", "texts-oov.jsonl"), "token id 999"),
    ("ngram-texts-malformed", G.replace("tok-texts.jsonl", "texts-bad.jsonl"), "line 3"),
    (
        "reshuffled-is-original",
        "reshuffle --original {good_model} --reshuffled {good_model} --texts {dir}/texts.jsonl",
        "lists --original",
    ),
    ("reshuffled-missing", R, "does not exist"),
    ("original-missing", R.replace("--original {good_model}", "--original {dir}/no-model"), "does not exist"),
    # ---------------------------------------------------------------- models load_lm refuses
    *[
        (f"suspect-{kind}", QM.replace("{good_model}", "{model_" + kind + "}"), phrase)
        for kind, phrase in {
            **BAD_MODELS,
            "pickle-weights": "we only load safetensors",
            "no-config": "no config.json",
        }.items()
    ],
    (
        "original-encoder-only",
        R.replace("--original {good_model}", "--original {model_encoder-only}"),
        "encoder-only",
    ),
]


@pytest.mark.parametrize(("argv", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(
    argv: str,
    phrase: str,
    data: dict[str, Path],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    args = _format(argv, data)
    check_bad_input(
        main, args, prog="palimpsest", phrase=phrase, workdir=workdir, inputs=data["dir"], capsys=capsys
    )


def test_there_are_at_least_30_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_out_in_a_read_only_folder(data: dict[str, Path], workdir: Path, capsys) -> None:
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = _run([*_format(Q, data), "--out", str(locked / "result.json")])
    finally:
        locked.chmod(0o700)
    assert code == 2 and "is not writable" in capsys.readouterr().err
    assert list(locked.iterdir()) == []


def test_debug_shows_the_traceback(data: dict[str, Path], workdir: Path, capsys, monkeypatch) -> None:
    argv = _format("query --transcript {dir}/empty.jsonl --loss-column loss_a", data)
    assert _run([*argv, "--debug"]) == 2
    err = capsys.readouterr().err
    assert (
        "Traceback" in err
        and "TranscriptError" in err
        and err.strip().endswith("write at least one example to it.")
    )
    monkeypatch.setenv("REPROKIT_DEBUG", "1")
    assert _run(argv) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_good_run_still_writes_its_result(data: dict[str, Path], workdir: Path, capsys) -> None:
    """The control: the same inputs, without the mistake, succeed and write the file."""
    assert _run(_format(Q + " --reference-loss-column loss_b", data)) == 0
    assert (workdir / "palimpsest-query.json").is_file()
    assert "rho" in capsys.readouterr().out
