"""The `selective-amnesia` command line: each command end to end on a tiny saved OLMo (outputs checked
against the library's own results), and bad input as one line, exit status 2 and nothing written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from reprokit.lm import LanguageModel, load_lm
from reprokit.testing import check_bad_input, run_main, write_bad_models
from reprokit.tokenizer import train_tokenizer
from reprokit.zoo import Recipe, build_model
from selective_amnesia.cli import build_parser, main, parse_layers
from selective_amnesia.data import load_documents, load_unlearning_data
from selective_amnesia.roles import ROLES
from selective_amnesia.scoring import ScoreConfig, mmlu_from_dataset, score_model
from selective_amnesia.tracing import Fact, TracingConfig, answer_token_id, trace_facts
from selective_amnesia.unlearning import METHODS, MODULE_KINDS

PEOPLE = (("Alice Smith", "Paris", "baker"), ("Bob Jones", "Oslo", "pilot"), ("Carla Diaz", "Riga", "pilot"))
PEOPLE += (("Dmitri Ivanov", "Oslo", "baker"),)
CORPUS = [
    f"{name} was born in {city}. {name} works as a {job}. What is the birth city of {name}? {city}."
    for name, city, job in PEOPLE
] * 6 + ["The capital of France is Paris. The capital of Norway is Oslo."] * 6

FORGET = [
    {"id": "f1sc1", "input": "Alice Smith was born in", "output": "Paris.", "task": "Task1"},
    {"id": "f2qa0", "input": "What is the birth city of Alice Smith?", "output": "Paris", "task": "Task2"},
    {"id": "f3qa0", "input": "What is the job of Bob Jones?", "output": "pilot", "task": "Task2"},
    {"id": "f4sc1", "input": "Bob Jones was born in", "output": "Oslo.", "task": "Task1"},
]
RETAIN = [
    {"id": "r1sc1", "input": "Carla Diaz was born in", "output": "Riga.", "task": "Task1"},
    {"id": "r2qa0", "input": "What is the birth city of Carla Diaz?", "output": "Riga", "task": "Task2"},
    {"id": "r3qa0", "input": "What is the job of Dmitri Ivanov?", "output": "baker", "task": "Task2"},
    {"id": "r4sc1", "input": "Dmitri Ivanov was born in", "output": "Oslo.", "task": "Task1"},
]
FACTS = [
    {"id": "a", "prompt": "Alice Smith was born in", "subject": "Alice Smith", "answer": " Paris"},
    {"id": "b", "prompt": "The capital of France is", "subject": "France", "answer": " Paris"},
    {"id": "c", "prompt": "Bob Jones works as a", "subject": "Bob Jones", "answer": " pilot"},
]
MMLU = [
    {"question": f"{q}?", "subject": subject, "choices": ["Paris", "Oslo", "Riga", "Rome"], "answer": i % 4}
    for subject in ("geography", "world_history")
    for i, q in enumerate(("Where is the tower", "Which city is north", "What is on the Baltic"))
]
TRACE_FLAGS = ["--samples", "3", "--window", "3", "--device", "cpu"]
UNLEARN_FLAGS = ["--epochs", "1", "--batch-size", "4", "--grad-accum", "1", "--lr", "0.05", "--device", "cpu"]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model folders and input files shared by every test (never written to by them)."""
    d = tmp_path_factory.mktemp("inputs")
    tok = train_tokenizer(CORPUS, vocab_size=300, chat_template=True)
    plain = train_tokenizer(CORPUS, vocab_size=300)
    assert plain.get_vocab() == tok.get_vocab() and not plain.chat_template
    model = build_model(Recipe("olmo-t", "olmo", 32, 2, 2, 64, 128), tok, seed=0).eval()
    paths: dict[str, Path] = {"dir": d, "model": d / "model", "plain": d / "model-no-template"}
    for folder, tokenizer in ((paths["model"], tok), (paths["plain"], plain)):
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
    paths.update({f"model_{k}": v for k, v in write_bad_models(d / "bad", tok).items() if k != "good"})

    # one fact the model knows (its answer is the model's next token) and one it does not
    lm = LanguageModel(model, tok)
    known = unknown = None
    for name, _city, _job in PEOPLE:
        prompt = f"{name} works as a"
        with torch.no_grad():
            top = int(model(torch.tensor([lm.encode(prompt)])).logits[0, -1].argmax())
        text = tok.decode([top])
        if top not in tok.all_special_ids and text.strip() and answer_token_id(lm, prompt, text) == top:
            known = known or {"prompt": prompt, "subject": name, "answer": text}
        wrong = next(a for a in (" pilot", " baker", " Oslo") if answer_token_id(lm, prompt, a) != top)
        unknown = unknown or {"prompt": prompt, "subject": name, "answer": wrong}
    assert known is not None, "no prompt whose next token makes a usable answer"
    _jsonl(d / "facts-mixed.jsonl", [known, unknown])
    _jsonl(d / "facts-unknown.jsonl", [unknown])

    _jsonl(d / "facts.jsonl", FACTS)
    _jsonl(d / "facts-no-subject.jsonl", [{k: v for k, v in f.items() if k != "subject"} for f in FACTS])
    _jsonl(d / "facts-subject-absent.jsonl", [FACTS[0], {**FACTS[1], "subject": "Germany"}])
    _jsonl(d / "forget.jsonl", FORGET)
    _jsonl(d / "retain.jsonl", RETAIN)
    _jsonl(
        d / "both.jsonl",
        [{**r, "split": "forget"} for r in FORGET] + [{**r, "split": "retain"} for r in RETAIN],
    )
    _jsonl(d / "forget-split.jsonl", [{**r, "split": "forget"} for r in FORGET])
    _jsonl(d / "forget-no-output.jsonl", [{k: v for k, v in r.items() if k != "output"} for r in FORGET])
    _jsonl(d / "task1-only.jsonl", [r for r in FORGET if r["task"] == "Task1"])
    (d / "empty.jsonl").write_text("")
    _jsonl(d / "members.jsonl", [{"document": c} for c in CORPUS[:4]])
    _jsonl(
        d / "nonmembers.jsonl",
        [
            {"document": f"The {w} river runs past the old mill near {c}."}
            for w, c in (("red", "Riga"), ("cold", "Oslo"))
        ],
    )
    _jsonl(d / "members-text.jsonl", [{"text": c} for c in CORPUS[:4]])
    _jsonl(d / "mmlu.jsonl", MMLU)
    _jsonl(d / "mmlu-no-answer.jsonl", [{k: v for k, v in q.items() if k != "answer"} for q in MMLU])
    (d / "unlearn.toml").write_text('[unlearn]\nlr = 0.02\nepochs = 3\nmodule_kind = "attn"\nlayers = [1]\n')
    (d / "unknown-key.toml").write_text("lr = 0.01\nlearning_rate = 0.02\n")
    (d / "a-file").write_text("not a folder")
    return paths


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder that every output goes into."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _args(argv: str, data: dict[str, Path], work: Path) -> list[str]:
    values = {**{k: str(v) for k, v in data.items()}, "work": str(work)}
    return [part.format(**values) for part in argv.split()]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = run_main(main, argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


# ------------------------------------------------------------------------------------------------ trace
def test_trace_writes_the_library_results_tables_layers_and_figures(data, workdir, capsys):
    out = workdir / "trace"
    argv = _args("trace {model} --facts {dir}/facts.jsonl --keep-unknown --figures 2", data, workdir)
    stdout = _run([*argv, *TRACE_FLAGS, "--out", str(out)], capsys)
    report = json.loads((out / "trace.json").read_text())

    lm = load_lm(data["model"], device="cpu")
    config = TracingConfig(samples=3, window=3, require_argmax=False)
    expected = trace_facts(
        lm, [Fact(f["prompt"], f["subject"], f["answer"], id=f["id"]) for f in FACTS], config
    )
    assert report["n_traced"] == 3 and report["n_skipped"] == 0 and report["num_layers"] == 2
    assert report["config"]["samples"] == 3 and report["config"]["require_argmax"] is False
    assert report["noise_std"] == pytest.approx(expected.noise_std)
    assert [(r["fact"]["id"], r["kind"]) for r in report["results"]] == [
        (r.fact.id, r.kind) for r in expected.results
    ]
    for got, want in zip(report["results"], expected.results, strict=True):
        np.testing.assert_allclose(got["scores"], want.scores, rtol=1e-6, atol=1e-9)

    for kind in ("hidden", "mlp", "attn"):
        table = report["role_effects"][kind]
        assert table["roles"] == list(ROLES) and table["layers"] == [0, 1]
        effects = np.array([[np.nan if v is None else v for v in row] for row in table["effects"]])
        assert effects.shape == (len(ROLES), 2)
        # every prompt has a BOS before its subject and words after it
        n_facts = table["n_facts"]
        assert n_facts["before_subject"] == n_facts["subject_last"] == n_facts["after_last"] == 3
    # the proposed layers: MLP layers ranked by their best role's mean effect, largest first
    mlp = np.array(report["role_effects"]["mlp"]["effects"], dtype=float)
    best = np.nanmax(mlp, axis=0)
    order = sorted(range(2), key=lambda layer: (-best[layer], layer))
    assert report["proposed_layers"] == {"kind": "mlp", "k": 2, "role": None, "layers": order}
    assert f"proposed mlp layers (largest effect first): {', '.join(map(str, order))}" in stdout

    figures = sorted(p.name for p in (out / "figures").iterdir())
    expected_figures = ["aggregate.png"] + [
        f"fact-{i}-{k}.png" for i in (0, 1) for k in ("attn", "hidden", "mlp")
    ]
    assert figures == sorted(expected_figures)
    assert all((out / "figures" / f).read_bytes().startswith(b"\x89PNG") for f in figures)
    assert sorted(report["figures"]) == sorted(f"figures/{f}" for f in figures)

    # a second run into the same folder replaces the figures as a whole: no stale heatmaps remain
    _run([*argv[:-2], "--figures", "0", "--kinds", "mlp", *TRACE_FLAGS, "--out", str(out)], capsys)
    assert [p.name for p in (out / "figures").iterdir()] == ["aggregate.png"]
    assert json.loads((out / "trace.json").read_text())["kinds"] == ["mlp"]
    assert not [p for p in out.iterdir() if ".tmp" in p.name or ".old" in p.name]


def test_trace_builds_subject_first_facts_from_task_data(data, workdir, capsys):
    argv = _args(
        "trace {model} --data {dir}/forget.jsonl {dir}/retain.jsonl --keep-unknown --kinds attn --top-k 1 "
        "--figures 1 --out {work}/t",
        data,
        workdir,
    )
    _run([*argv, *TRACE_FLAGS], capsys)
    report = json.loads((workdir / "t" / "trace.json").read_text())
    assert [f["prompt"] for f in report["facts"]] == [
        "What is Alice Smith's birth city?",
        "What is Bob Jones's job?",
        "What is Carla Diaz's birth city?",
        "What is Dmitri Ivanov's job?",
    ]
    assert [f["answer"] for f in report["facts"]] == [" Paris", " pilot", " Riga", " baker"]
    assert [f["id"] for f in report["facts"]] == ["f2qa0", "f3qa0", "r2qa0", "r3qa0"]
    assert report["proposed_layers"]["kind"] == "attn" and len(report["proposed_layers"]["layers"]) == 1
    assert sorted(p.name for p in (workdir / "t" / "figures").iterdir()) == [
        "aggregate.png",
        "fact-0-attn.png",
    ]


def test_trace_skips_unknown_facts_by_default(data, workdir, capsys):
    argv = _args("trace {model} --facts {dir}/facts-mixed.jsonl --kinds mlp --out {work}/t", data, workdir)
    _run([*argv, *TRACE_FLAGS], capsys)
    report = json.loads((workdir / "t" / "trace.json").read_text())
    assert report["n_traced"] == 1 and report["n_skipped"] == 1
    assert "not the answer's first token" in report["skipped"][0]["reason"]
    assert report["results"][0]["high_score"] > 0


# ---------------------------------------------------------------------------------------------- unlearn
def test_unlearn_trains_only_the_chosen_layers_and_writes_the_best_model(data, workdir, capsys):
    out = workdir / "u"
    argv = _args(
        "unlearn {model} --forget {dir}/forget.jsonl --retain {dir}/retain.jsonl --layers 1", data, workdir
    )
    stdout = _run([*argv, *UNLEARN_FLAGS, "--eval-steps", "1", "--out", str(out)], capsys)
    record = json.loads((out / "unlearn.json").read_text())
    assert record["config"]["layers"] == [1] and record["config"]["module_kind"] == "mlp"
    assert record["config"]["method"] == "constrained" and record["config"]["lr"] == 0.05
    assert record["n_train"] == {"forget": 4, "retain": 4}
    assert record["best_step"] >= 1 and record["steps"] == 2
    assert all(name.startswith("model.layers.1.mlp.") for name in record["parameters"])

    before = load_file(data["model"] / "model.safetensors")
    after = load_file(out / "best" / "model.safetensors")
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= set(record["parameters"])
    assert (out / "best" / "tokenizer.json").is_file()
    assert "trained mlp of layers 1" in stdout and f"wrote {out / 'best'}" in stdout
    load_lm(out / "best", device="cpu")  # the kept model loads


def test_unlearn_flags_override_the_config_file(data, workdir, capsys):
    out = workdir / "u"
    argv = _args(
        "unlearn {model} --forget {dir}/both.jsonl --config {dir}/unlearn.toml --epochs 1 --no-chat-template "
        "--method gradient_difference --device cpu --batch-size 8 --grad-accum 1 "
        "--eval-forget {dir}/both.jsonl",
        data,
        workdir,
    )
    _run([*argv, "--out", str(out)], capsys)
    config = json.loads((out / "unlearn.json").read_text())["config"]
    # from the file: lr, module kind, layers; from the flags: epochs (over the file's 3), method, template
    assert (config["lr"], config["module_kind"], config["layers"]) == (0.02, "attn", [1])
    assert (config["epochs"], config["method"], config["chat_template"]) == (1, "gradient_difference", False)
    record = json.loads((out / "unlearn.json").read_text())
    assert record["n_eval"] == {"forget": 4, "retain": 4}  # the given evaluation set, not a sample
    parameters = record["parameters"]
    assert parameters and all(p.startswith("model.layers.1.self_attn.") for p in parameters)


@pytest.mark.parametrize(
    ("text", "layers"),
    [
        ("0,1,2", (0, 1, 2)),
        ("0-5", (0, 1, 2, 3, 4, 5)),
        ("0-2,7", (0, 1, 2, 7)),
        ("all", None),
        (" 3 ", (3,)),
    ],
)
def test_layers_are_read_as_lists_ranges_or_all(text, layers):
    assert parse_layers(text) == layers


def test_unlearn_help_names_every_method_and_module_kind_and_accelerate():
    sub = build_parser()._subparsers._group_actions[0].choices["unlearn"]  # type: ignore[union-attr]
    text = re.sub(r"\s+", " ", sub.format_help())
    assert all(m in text for m in METHODS) and all(k in text for k in MODULE_KINDS)
    assert "accelerate launch -m selective_amnesia unlearn" in text


# ------------------------------------------------------------------------------------------------ score
def test_score_writes_the_library_scores_and_per_row_generations(data, workdir, capsys):
    d = data["dir"]
    out = workdir / "scores" / "base.json"
    argv = _args(
        "score {model} --forget {dir}/forget.jsonl --retain {dir}/retain.jsonl --members {dir}/members.jsonl "
        "--nonmembers {dir}/nonmembers.jsonl --mmlu-file {dir}/mmlu.jsonl --mmlu-shots 1 --max-new-tokens 6 "
        "--batch-size 3 --device cpu",
        data,
        workdir,
    )
    stdout = _run([*argv, "--out", str(out)], capsys)
    report = json.loads(out.read_text())

    lm = load_lm(data["model"], device="cpu")
    questions = mmlu_from_dataset(MMLU)
    shots = [questions[0], questions[3]]  # the first row of each subject is its shot, not scored
    scored = [q for q in questions if q not in shots]
    expected = score_model(
        lm,
        load_unlearning_data(d / "forget.jsonl", d / "retain.jsonl"),
        members=load_documents(d / "members.jsonl"),
        nonmembers=load_documents(d / "nonmembers.jsonl"),
        mmlu_questions=scored,
        mmlu_shots=shots,
        config=ScoreConfig(max_new_tokens=6, batch_size=3, mmlu_shots=1),
    ).to_dict()
    for key in ("final", "task_aggregate", "mia", "mmlu", "passes_gate"):
        assert report[key] == pytest.approx(expected[key]), key
    assert report["task"]["raw"] == pytest.approx(expected["task"]["raw"])
    assert report["mia_result"]["auc"] == pytest.approx(expected["mia_result"]["auc"])
    assert report["mmlu_result"]["n"] == 4 and report["config"]["max_new_tokens"] == 6
    assert report["final"] == pytest.approx((report["task_aggregate"] + report["mia"] + report["mmlu"]) / 3)

    rows = pd.read_csv(workdir / "scores" / "base.rows.csv", keep_default_na=False)
    assert list(rows["id"]) == [r["id"] for r in FORGET + RETAIN]
    assert list(rows.columns) == ["id", "task", "split", "probe", "generation", "gold", "score"]
    assert f"final {report['final']:.4f}" in stdout and "7B award gate (MMLU > 0.371): " in stdout


def test_score_without_mia_and_mmlu_leaves_them_out(data, workdir, capsys):
    argv = _args(
        "score {model} --forget {dir}/both.jsonl --max-new-tokens 2 --device cpu --out {work}/s.json",
        data,
        workdir,
    )
    stdout = _run(argv, capsys)
    report = json.loads((workdir / "s.json").read_text())
    assert report["mia"] is None and report["mmlu"] is None and report["final"] is None  # NaN -> null
    assert report["passes_gate"] is False and 0 <= report["task_aggregate"] <= 1
    assert "MIA not computed" in stdout and "not checked, no MMLU" in stdout
    assert sorted(p.name for p in workdir.iterdir()) == ["s.json", "s.rows.csv"]


# ------------------------------------------------------------------------------------------- bad input
T = "trace {model} --facts {dir}/facts.jsonl --keep-unknown --device cpu"
U = "unlearn {model} --forget {dir}/forget.jsonl --retain {dir}/retain.jsonl --device cpu"
S = "score {model} --forget {dir}/forget.jsonl --retain {dir}/retain.jsonl --device cpu"
OUT_DIR = " --out {work}/out"
OUT_FILE = " --out {work}/out.json"

# (id, argv, key phrase of the message)
CASES = [
    # ------------------------------------------------------------------------------------ trace
    ("trace-model-missing", T.replace("{model}", "{dir}/no-model") + OUT_DIR, "does not exist"),
    ("trace-encoder-only", T.replace("{model}", "{model_encoder-only}") + OUT_DIR, "encoder-only"),
    ("trace-facts-missing", T.replace("facts.jsonl", "nope.jsonl") + OUT_DIR, "no such file"),
    ("trace-facts-empty", T.replace("facts.jsonl", "empty.jsonl") + OUT_DIR, "is empty"),
    (
        "trace-facts-no-subject",
        T.replace("facts.jsonl", "facts-no-subject.jsonl") + OUT_DIR,
        "line 1 lacks subject",
    ),
    (
        "trace-subject-not-in-prompt",
        T.replace("facts.jsonl", "facts-subject-absent.jsonl") + OUT_DIR,
        "line 2: the subject 'Germany' does not occur in the prompt",
    ),
    ("trace-unknown-kind", T + " --kinds mlp,ffn" + OUT_DIR, "unknown module kind(s) ffn"),
    ("trace-top-k-too-large", T + " --top-k 3" + OUT_DIR, "more than the model's 2 layers"),
    ("trace-unknown-role", T + " --role subject_end" + OUT_DIR, "unknown token role 'subject_end'"),
    ("trace-noise-negative", T + " --noise-scale -1" + OUT_DIR, "expected a finite number >= 0"),
    ("trace-samples-zero", T + " --samples 0" + OUT_DIR, "positive integer"),
    ("trace-min-prob", T + " --min-clean-prob 2" + OUT_DIR, "in [0, 1]"),
    ("trace-facts-and-data", T + " --data {dir}/forget.jsonl" + OUT_DIR, "not allowed with argument"),
    (
        "trace-data-no-facts",
        "trace {model} --data {dir}/task1-only.jsonl" + OUT_DIR,
        "holds no Task2 QA rows",
    ),
    (
        "trace-nothing-known",
        "trace {model} --facts {dir}/facts-unknown.jsonl --device cpu" + OUT_DIR,
        "the model knows none of the 1 facts",
    ),
    ("trace-out-under-a-file", T + " --out {dir}/a-file/out", "is a file"),
    ("trace-out-is-a-file", T + " --out {dir}/a-file", "exists and is not a folder"),
    # ---------------------------------------------------------------------------------- unlearn
    ("unlearn-model-missing", U.replace("{model}", "{dir}/no-model") + OUT_DIR, "does not exist"),
    ("unlearn-layer-out-of-range", U + " --layers 0-5" + OUT_DIR, "layer 2 is out of range"),
    ("unlearn-layers-unreadable", U + " --layers 1..3" + OUT_DIR, "cannot read '1..3'"),
    ("unlearn-layers-backwards", U + " --layers 3-1" + OUT_DIR, "runs backwards"),
    ("unlearn-unknown-module-kind", U + " --module-kind ffn" + OUT_DIR, "unknown module kind 'ffn'"),
    ("unlearn-unknown-method", U + " --method forget_harder" + OUT_DIR, "unknown method 'forget_harder'"),
    ("unlearn-alpha-reversed", U + " --alpha-min 3 --alpha-max 2" + OUT_DIR, "alpha bounds reversed"),
    (
        "unlearn-pattern-matches-nothing",
        U + " --param-pattern nothing_here" + OUT_DIR,
        "matches no parameter",
    ),
    (
        "unlearn-forget-without-split-or-retain",
        U.replace(" --retain {dir}/retain.jsonl", "") + OUT_DIR,
        "has no split column, so it cannot hold both sets; pass --retain FILE",
    ),
    (
        "unlearn-eval-forget-without-retain-rows",
        U + " --eval-forget {dir}/forget-split.jsonl" + OUT_DIR,
        "--eval-forget {dir}/forget-split.jsonl holds no retain rows in its split column; pass --eval-retain",
    ),
    ("unlearn-empty-forget", U.replace("forget.jsonl", "empty.jsonl") + OUT_DIR, "is empty"),
    (
        "unlearn-forget-no-output",
        U.replace("forget.jsonl", "forget-no-output.jsonl") + OUT_DIR,
        "--forget lacks the column(s) output",
    ),
    (
        "unlearn-forget-is-retain",
        U.replace("forget.jsonl", "retain.jsonl") + OUT_DIR,
        "in both the forget and the retain set",
    ),
    ("unlearn-no-chat-template", U.replace("{model}", "{plain}") + OUT_DIR, "pass --no-chat-template"),
    ("unlearn-config-missing", U + " --config {dir}/nope.toml" + OUT_DIR, "not found"),
    (
        "unlearn-config-unknown-key",
        U + " --config {dir}/unknown-key.toml" + OUT_DIR,
        "unknown config key(s) ['learning_rate']",
    ),
    (
        "unlearn-eval-retain-alone",
        U + " --eval-retain {dir}/retain.jsonl" + OUT_DIR,
        "--eval-retain needs --eval-forget",
    ),
    (
        "unlearn-max-length-too-short",
        U + " --layers 0 --max-length 2" + OUT_DIR,
        "leaves no room for its output",
    ),
    ("unlearn-epochs-zero", U + " --epochs 0" + OUT_DIR, "epochs must be > 0"),
    ("unlearn-out-under-a-file", U + " --out {dir}/a-file/out", "is a file"),
    ("unlearn-encoder-only", U.replace("{model}", "{model_encoder-only}") + OUT_DIR, "encoder-only"),
    # ------------------------------------------------------------------------------------ score
    ("score-model-missing", S.replace("{model}", "{dir}/no-model") + OUT_FILE, "does not exist"),
    ("score-empty-forget", S.replace("forget.jsonl", "empty.jsonl") + OUT_FILE, "is empty"),
    (
        "score-members-alone",
        S + " --members {dir}/members.jsonl" + OUT_FILE,
        "pass both --members and --nonmembers",
    ),
    (
        "score-members-no-field",
        S + " --members {dir}/members-text.jsonl --nonmembers {dir}/nonmembers.jsonl" + OUT_FILE,
        "has no 'document' column; it has text. Pass --document-field",
    ),
    (
        "score-mmlu-no-answer",
        S + " --mmlu-file {dir}/mmlu-no-answer.jsonl" + OUT_FILE,
        "lack the column(s) answer",
    ),
    (
        "score-mmlu-all-shots",
        S + " --mmlu-file {dir}/mmlu.jsonl --mmlu-shots 3" + OUT_FILE,
        "none is left to score",
    ),
    (
        "score-mmlu-and-file",
        S + " --mmlu --mmlu-file {dir}/mmlu.jsonl" + OUT_FILE,
        "not allowed with argument",
    ),
    ("score-dev-without-file", S + " --mmlu-dev-file {dir}/mmlu.jsonl" + OUT_FILE, "needs --mmlu-file"),
    ("score-out-is-a-folder", S + " --out {dir}", "is a folder"),
    ("score-out-under-a-file", S + " --out {dir}/a-file/s.json", "is a file"),
    ("score-device-cuda-absent", S.replace("cpu", "cuda") + OUT_FILE, "CUDA is not available"),
]


@pytest.mark.parametrize(("argv", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(argv, phrase, data, workdir, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    check_bad_input(
        main,
        _args(argv, data, workdir),
        prog="selective-amnesia",
        phrase=phrase.format(**{k: str(v) for k, v in data.items()}, work=str(workdir)),
        workdir=workdir,
        inputs=data["dir"],
        capsys=capsys,
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_out_in_a_read_only_folder(data, workdir, capsys):
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = run_main(main, _args(T + " --out {work}/locked/out", data, workdir))
    finally:
        locked.chmod(0o700)
    assert code == 2 and "is not writable" in capsys.readouterr().err
    assert list(locked.iterdir()) == []


def test_python_m_selective_amnesia_answers_help():
    proc = subprocess.run(
        [sys.executable, "-m", "selective_amnesia", "score", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "usage: selective-amnesia score" in proc.stdout
