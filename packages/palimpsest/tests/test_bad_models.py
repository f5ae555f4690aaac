"""Models enter as `reprokit.lm.LanguageModel` handles: bad reference models and reshuffled copies are
refused where they enter (one line, exit status 2, nothing written; the suspect and original cases are in
`test_cli_errors.py`), and the Python API says how to make a handle from a (model, tokenizer) pair."""

from __future__ import annotations

import json

import pytest

from palimpsest import Transcript, query_test, reshuffle_test
from palimpsest.cli import main as cli_main
from reprokit.lm import LanguageModel, load_lm
from reprokit.testing import BAD_MODELS, write_bad_models
from reprokit.tokenizer import train_tokenizer

CORPUS = [f"Person {i} lives in {c} and works as a {j}." for i in range(40) for c, j in [("Oslo", "baker")]]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tokenizer = train_tokenizer(CORPUS, vocab_size=300)
    return write_bad_models(tmp_path_factory.mktemp("models"), tokenizer)


@pytest.fixture(scope="module")
def inputs(folders, tmp_path_factory):
    """A transcript and suspect texts in the good model's tokens."""
    root = tmp_path_factory.mktemp("inputs")
    tok = load_lm(folders["good"], device="cpu").tokenizer
    rows = [{"index": i, "tokens": tok(CORPUS[i]).input_ids} for i in range(12)]
    (root / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in CORPUS[:3]))
    return root


def _query(folders, inputs, tmp_path, suspect: str, *extra: str) -> list[str]:
    return [
        *("query", "--suspect", suspect, "--transcript", str(inputs / "t.jsonl")),
        *("--device", "cpu", "--out", str(tmp_path / "out.json"), *extra),
    ]


@pytest.mark.parametrize("kind", ["encoder-only", "custom-code"])
def test_query_refuses_a_bad_reference(folders, inputs, tmp_path, capsys, kind):
    rc = cli_main(_query(folders, inputs, tmp_path, str(folders["good"]), "--reference", str(folders[kind])))
    assert rc == 2 and BAD_MODELS[kind] in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("kind", ["encoder-decoder", "shape-mismatch"])
def test_reshuffle_refuses_a_bad_copy(folders, inputs, tmp_path, capsys, kind):
    rc = cli_main(
        [
            *("reshuffle", "--original", str(folders["good"]), "--reshuffled", str(folders[kind])),
            *("--texts", str(inputs / "texts.jsonl"), "--device", "cpu", "--out", str(tmp_path / "r.json")),
        ]
    )
    assert rc == 2 and BAD_MODELS[kind] in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_the_python_api_takes_the_handle_only(folders, inputs):
    good = load_lm(folders["good"], device="cpu")
    transcript = Transcript.load(inputs / "t.jsonl")
    with pytest.raises(TypeError, match=r"\(model, tokenizer\) pair.*LanguageModel\(model, tokenizer\)"):
        query_test(transcript, (good.model, good.tokenizer))  # type: ignore[arg-type]
    other = LanguageModel(good.model, train_tokenizer(["other words entirely"] * 20, vocab_size=280))
    with pytest.raises(ValueError, match=r"reshuffled copy 0 .* has another tokenizer"):
        reshuffle_test(good, [other], CORPUS[:2])
