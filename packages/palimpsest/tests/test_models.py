"""End to end on tiny trained models: power, nulls, tokenizer checks, loading, reshuffle harness, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from palimpsest import (
    QueryConfig,
    Transcript,
    TranscriptError,
    example_losses,
    query_test,
    reshuffle_test,
    sample_texts,
)
from palimpsest.cli import main as cli_main
from reprokit.lm import LanguageModel, load_lm
from reprokit.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def lms(tiny):
    return {
        "alice": tiny.load(tiny.alice),
        "ref": tiny.load(tiny.references["same-recipe"]),
        "null": tiny.load(tiny.nulls["null-llama"]),
    }


def test_transcript_matches_training_order(tiny):
    t = tiny.transcript
    assert len(t) == len(tiny.examples)
    np.testing.assert_array_equal(t.positions, np.arange(len(t)))
    first = int(tiny.alice.order[0])
    assert t.token_ids[0] == tiny.examples[first].input_ids
    assert t.steps[-1] == (len(t) - 1) // tiny.config.batch_size


def test_query_power_on_alice(tiny, lms):
    res = query_test(tiny.transcript, lms["alice"], lms["ref"])
    assert res.statistic < 0
    assert res.log10_pvalue < -5
    assert res.log10_pvalue < res.without_reference().log10_pvalue  # the reference helps


def test_query_null_model_not_significant(tiny, lms):
    res = query_test(tiny.transcript, lms["null"], lms["ref"])
    assert res.pvalue > 0.001


def test_query_random_orders_calibrated(tiny, lms):
    """H0 by construction: Alice's real losses against many random transcript orders."""
    from palimpsest import query_test_from_losses

    a = tiny.losses(tiny.alice)
    r = tiny.losses(tiny.references["same-recipe"])
    rng = np.random.default_rng(0)
    p = [query_test_from_losses(rng.permutation(len(a)), a, r).pvalue for _ in range(300)]
    assert np.mean(np.array(p) <= 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300)


def test_continuation_scoring_and_sampling(tiny, lms):
    sample = tiny.transcript.sample(20, seed=1)
    full = example_losses(lms["alice"], sample)
    cont = example_losses(lms["alice"], sample, QueryConfig(prefix_tokens=4))
    assert full.shape == cont.shape == (20,)
    assert not np.allclose(full, cont)
    with pytest.raises(TranscriptError, match="prefix"):
        example_losses(lms["alice"], sample, QueryConfig(prefix_tokens=500))
    with pytest.raises(TranscriptError, match="larger than the transcript"):
        query_test(tiny.transcript, lms["alice"], config=QueryConfig(n=10**6))


def test_different_tokenizer_is_refused(tiny, lms):
    other = train_tokenizer(["a completely different corpus of words"] * 20, vocab_size=300)
    with pytest.raises(TranscriptError, match="different tokenizer"):
        example_losses(LanguageModel(lms["alice"].model, other), tiny.transcript.sample(5))
    bare = Transcript(positions=[0, 1, 2], token_ids=((1, 2, 9999), (1, 3), (1, 4)))
    with pytest.raises(TranscriptError, match="different tokenizers"):
        example_losses(lms["alice"], bare)
    # retokenize=True decodes and re-encodes instead (what the paper does for other model families)
    retok = tiny.transcript.sample(5).sequences_for(other, retokenize=True)
    assert len(retok) == 5 and all(len(s) > 0 for s in retok)


def test_load_local_files_and_cli(tiny, tmp_path, capsys):
    """The paper-scale path on local files: parquet / jsonl transcripts and a local model folder."""
    import pandas as pd

    sample = tiny.transcript.sample(120, seed=2)
    losses = tiny.losses(tiny.alice)[np.searchsorted(tiny.transcript.positions, sample.positions)]
    frame = pd.DataFrame(
        {"index": sample.positions, "tokens": [list(t) for t in sample.token_ids], "loss_alice_main": losses}
    )
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    from_parquet = Transcript.load(tmp_path / "t.parquet")
    from_jsonl = Transcript.load(tmp_path / "t.jsonl")
    assert from_parquet.token_ids == from_jsonl.token_ids == sample.token_ids
    np.testing.assert_allclose(from_parquet.losses["loss_alice_main"], losses)

    suspect = load_lm(tiny.alice.path, device="cpu", dtype="float32")
    res = query_test(from_parquet, suspect, tiny.load(tiny.references["same-recipe"]))
    assert res.n == 120 and res.statistic < 0

    out = tmp_path / "q.json"
    rc = cli_main(
        [
            "query",
            "--suspect",
            str(tiny.alice.path),
            "--reference",
            str(tiny.references["same-recipe"].path),
            "--transcript",
            str(tmp_path / "t.parquet"),
            "--n",
            "100",
            "--permutations",
            "99",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    payload = json.loads(out.read_text())
    assert payload["n"] == 100 and payload["permutation_pvalue"] >= 0.01
    assert "spearman rho" in capsys.readouterr().out
    rc = cli_main(
        [
            "query",
            "--transcript",
            str(tmp_path / "t.jsonl"),
            "--loss-column",
            "loss_alice_main",
            "--out",
            str(out),
        ]
    )
    assert rc == 0 and json.loads(out.read_text())["reference"] is None
    assert (
        cli_main(["query", "--suspect", "x", "--transcript", str(tmp_path / "t.jsonl"), "--n", "5000"]) == 2
    )


def test_reshuffle_harness_and_test(tiny, tmp_path):
    original, copies = tiny.retrain(0.1, k=3)
    assert len(copies) == 3
    # the original-order retrain reproduces Alice exactly (same pipeline, deterministic on CPU)
    a, o = tiny.load(tiny.alice), tiny.load(original)
    for (name, p), q in zip(a.model.state_dict().items(), o.model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    cut = tiny.checkpoint_step(0.1) * tiny.config.batch_size
    assert not np.array_equal(copies[0].order[cut:], tiny.alice.order[cut:])
    np.testing.assert_array_equal(copies[0].order[:cut], tiny.alice.order[:cut])

    samples = sample_texts(a, 16, max_new_tokens=24, seed=3)
    again = sample_texts(a, 16, max_new_tokens=24, seed=3)
    assert samples.completion_ids == again.completion_ids
    res = reshuffle_test(o, [tiny.load(c) for c in copies], samples.sequences, prompts=samples.prompt_lengths)
    assert res.k == 3 and res.n_tokens == samples.n_tokens
    assert res.rank_pvalue in (0.25, 0.5, 0.75, 1.0)
    with pytest.raises(ValueError, match="K >= 1"):
        reshuffle_test(o, [], samples.sequences)
    with pytest.raises(ValueError, match="empty"):
        reshuffle_test(o, [tiny.load(copies[0])], ["fine", ""])
    with pytest.raises(ValueError, match="k must be"):
        tiny.retrain(0.1, k=0)

    texts = tmp_path / "texts.jsonl"
    texts.write_text("\n".join(json.dumps({"text": t}) for t in samples.texts if t.strip()) + "\n")
    out = tmp_path / "r.json"
    args = ["reshuffle", "--original", str(original.path), "--reshuffled", *[str(c.path) for c in copies]]
    assert cli_main([*args, "--texts", str(texts), "--device", "cpu", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["k"] == 3


def test_ngram_cli(tiny, tmp_path):
    tiny.transcript.save_jsonl(tmp_path / "docs.jsonl")
    samples = sample_texts(tiny.load(tiny.alice), 8, max_new_tokens=20, seed=4)
    texts = tmp_path / "gen.jsonl"
    texts.write_text("\n".join(json.dumps({"tokens": list(c)}) for c in samples.completion_ids) + "\n")
    out = tmp_path / "g.json"
    rc = cli_main(
        [
            *("ngram", "--transcript", str(tmp_path / "docs.jsonl"), "--texts", str(texts)),
            *("--permutations", "49", "--out", str(out)),
        ]
    )
    assert rc == 0
    payload = json.loads(out.read_text())
    assert payload["n_tokens"] == sum(len(c) for c in samples.completion_ids)
    assert 0.02 <= payload["pvalue"] <= 1.0


def test_paper_scale_path_on_local_files(tiny, tmp_path):
    """The paper-scale experiments through the shared runner, with local stand-ins for hub data and models."""
    import json

    import pandas as pd

    from palimpsest.query import QueryConfig
    from palimpsest.reproduce import SPEC, PaperSection, QueryFamily, ReproduceConfig
    from reprokit.config import config_from_mapping
    from reprokit.errors import ConfigError
    from reprokit.reproduce import run

    t = tiny.transcript
    pd.DataFrame({"index": t.positions, "tokens": [list(x) for x in t.token_ids]}).to_parquet(
        tmp_path / "t.parquet"
    )
    alice, ref, null = (
        str(m.path) for m in (tiny.alice, tiny.references["same-recipe"], tiny.nulls["null-llama"])
    )
    section = PaperSection(
        transcript=str(tmp_path / "t.parquet"),
        transcript_tokenizer=alice,
        query=QueryConfig(n=150, batch_size=32, retokenize=True),
        suspects=(alice,),
        reference=ref,
        nulls=(null,),
        ablation_suspect=alice,
        ablation_references=(ref,),
        ablation_n=(50, 150),
        families=(
            QueryFamily(
                name="second-run",
                subset="unused-for-local-files",
                transcript=str(tmp_path / "t.parquet"),
                transcript_tokenizer=alice,
                reference=null,
                suspects=(alice,),
            ),
        ),
    )
    out = tmp_path / "out"
    run(
        SPEC,
        ReproduceConfig(paper=section),
        scale="paper",
        out=out,
        device="cpu",
        dtype="float32",
        cache_dir=tmp_path / "cache",
    )
    table = pd.read_csv(out / "table_query.csv", keep_default_na=False)
    assert list(table["kind"]) == ["derived", "null", "derived"]
    assert list(table["family"]) == ["pythia-deduped", "pythia-deduped", "second-run"]
    assert list(table["reference"]) == [ref, ref, null]
    assert table["log10_p"].iloc[0] < table["log10_p"].iloc[1]
    assert table["log10_p"].iloc[2] < -2  # Alice against another reference on the same transcript
    assert (out / "table_reference_ablation.csv").is_file()
    calibration = pd.read_csv(out / "table_null_calibration.csv")
    assert list(calibration["m"]) == [section.n_null_orders, 1]
    claims = {c["id"]: c for c in json.loads((out / "claims.json").read_text())["claims"]}
    assert {"query_derived_paper_rate", "null_uniform", "null_fpr", "reference_gain"} <= set(claims)
    assert claims["query_derived_paper_rate"]["method"] == "exact binomial"
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['modle'\] in \[paper\]"):
        config_from_mapping(ReproduceConfig, {"paper": {"modle": "x"}})
