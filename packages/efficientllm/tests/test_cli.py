"""The `efficientllm` command line on a tiny saved llama: prune-train end to end (the exported model loads
with `AutoModelForCausalLM`, smaller than the source), export of a checkpoint equal to the trained model,
stop and resume equal to one run, a NaN loss, eval numbers equal to the library's, and bad input as one
line, exit status 2 and nothing written."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, LlamaConfig

from efficientllm.cli import build_parser, main, train_configs
from efficientllm.evaluation import MCItem, multiple_choice, perplexity
from reprokit.lm import load_lm
from reprokit.testing import check_bad_input, run_main, write_bad_models
from reprokit.tokenizer import train_tokenizer

NAMES = ("Alice", "Bob", "Carla", "Dmitri", "Erin", "Farid")
CITIES = ("Paris", "Oslo", "Riga", "Rome", "Lima", "Kyiv")
CORPUS = [f"{n} lives in {c}. {n} likes {c} and visits it often." for n in NAMES for c in CITIES]
HELDOUT = [
    f"{n} walked from {a} to {b} in one day." for n, a, b in zip(NAMES, CITIES, CITIES[1:], strict=False)
]
MC = [{"context": f"{n} lives in", "choices": list(CITIES[:3]), "gold": i % 3} for i, n in enumerate(NAMES)]
#: The run every test shares: 12 steps to 60% of the source, one pruning event per step, masks only until
#: the end (compact_every = 0 in run.toml), so the step-12 checkpoint holds a masked model.
TRAIN = "--steps 12 --batch-size 4 --seq-len 32 --lr 3e-3 --every 1 --target-ratio 0.6 --checkpoint-every 12"
SMALL = "--steps 6 --batch-size 2 --seq-len 16 --lr 3e-3 --every 1 --target-ratio 0.8"
IDS = torch.randint(3, 200, (2, 10), generator=torch.Generator().manual_seed(0))


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The source model and the input files shared by every test (never written to by them)."""
    d = tmp_path_factory.mktemp("inputs")
    tok = train_tokenizer(CORPUS, vocab_size=300)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(d / "model")
    tok.save_pretrained(d / "model")
    paths = {"dir": d, "model": d / "model", "encoder": write_bad_models(d / "bad", tok)["encoder-only"]}
    (d / "train.txt").write_text("\n".join(CORPUS) + "\n")
    _jsonl(d / "train.jsonl", [{"text": t, "id": i} for i, t in enumerate(CORPUS)])
    _jsonl(d / "train-body.jsonl", [{"body": t} for t in CORPUS])
    (d / "heldout.txt").write_text("\n".join(HELDOUT) + "\n")
    _jsonl(d / "mc.jsonl", MC)
    _jsonl(d / "mc-no-gold.jsonl", [{k: v for k, v in r.items() if k != "gold"} for r in MC])
    (d / "empty.txt").write_text("\n\n")
    (d / "data.csv").write_text("text\nhello\n")
    (d / "short.txt").write_text("Hi.\n")
    (d / "run.toml").write_text("[prune]\ncompact_every = 0\n")
    (d / "unknown-key.toml").write_text("[prune]\nevry = 2\n")
    (d / "unknown-table.toml").write_text("[optim]\nlr = 1.0\n")
    (d / "wrong-type.toml").write_text('[train]\nlr = "fast"\n')
    (d / "foreign").mkdir()
    (d / "foreign" / "notes.txt").write_text("mine")
    (d / "a-file").write_text("not a folder")
    return paths


def _args(argv: str, data: dict[str, Path], **extra: Path) -> list[str]:
    values = {**{k: str(v) for k, v in data.items()}, **{k: str(v) for k, v in extra.items()}}
    return [part.format(**values) for part in argv.split()]


def _quiet_run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_main(main, argv)
    return code, out.getvalue()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = run_main(main, argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.fixture(scope="module")
def trained(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished prune-train run (its folder) and what it printed."""
    run = tmp_path_factory.mktemp("runs") / "run"
    argv = _args(
        f"prune-train {{model}} --data {{dir}}/train.txt --out {run} --config {{dir}}/run.toml", data
    )
    code, stdout = _quiet_run([*argv, *TRAIN.split()])
    assert code == 0, stdout
    return run, stdout


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder that every output goes into."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


# ------------------------------------------------------------------------------------------ prune-train
def test_prune_train_exports_a_smaller_model_that_stock_transformers_loads(data, trained):
    run, stdout = trained
    source = AutoModelForCausalLM.from_pretrained(data["model"])
    model = AutoModelForCausalLM.from_pretrained(run / "model").eval()
    result = json.loads((run / "train.json").read_text())
    report = json.loads((run / "model" / "efficientllm_export.json").read_text())
    before, after = _n_params(source), _n_params(model)
    assert after < before
    assert after == result["final_params"] == report["num_parameters"]
    # the pruner stops at the target (60% of the source's parameters) without undershooting it
    assert result["events"][-1]["params_after"] >= round(0.6 * before)
    assert result["stop_reason"].startswith("target reached") and 0.6 <= after / before < 0.7
    assert result["complete"] and result["step"] == 12 and result["prune"]["compact_every"] == 0
    assert result["config"]["lr"] == 3e-3 and result["prune"]["target_ratio"] == 0.6
    assert report["max_logit_diff"] is not None and report["max_logit_diff"] < 1e-4
    assert report["stock"] == (model.config.model_type == "llama")
    with torch.no_grad():
        logits = model(IDS).logits
    assert logits.shape == (2, 10, source.config.vocab_size) and torch.isfinite(logits).all()
    loss = result["history"][-1]["loss"]
    assert f"{before:,} -> {after:,} parameters" in stdout and f"final loss {loss:.4f}" in stdout
    assert f"{result['tokens_seen']:,} tokens" in stdout and result["tokens_seen"] == 12 * 4 * 32
    record = json.loads((run / "run.json").read_text())
    assert record["command"] == "efficientllm prune-train" and record["model"] == str(data["model"])
    assert record["data"] == [str(data["dir"] / "train.txt")]
    assert (run / "source" / "config.json").is_file() and (run / "source" / "tokenizer.json").is_file()
    assert not [p for p in run.iterdir() if ".tmp" in p.name or ".old" in p.name]


def test_rerunning_a_finished_run_does_nothing_and_other_settings_are_refused(data, trained, capsys):
    run, _ = trained
    before = _snapshot(run)
    argv = _args(
        f"prune-train {{model}} --data {{dir}}/train.txt --out {run} --config {{dir}}/run.toml", data
    )
    stdout = _run([*argv, *TRAIN.split()], capsys)
    assert "already holds this finished run" in stdout
    other_ratio = [*argv, *TRAIN.replace("--target-ratio 0.6", "--target-ratio 0.5").split()]
    other_data = [*[a.replace("train.txt", "train.jsonl") for a in argv], *TRAIN.split()]
    for bad, phrase in (
        (other_ratio, "holds a finished run with other settings (prune.target_ratio differ)"),
        (other_data, "is a run with another --data files"),
    ):
        assert run_main(main, bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and phrase in err[0], err
    assert _snapshot(run) == before


def test_stop_and_resume_equal_one_run(data, tmp_path, capsys):
    base = f"prune-train {{model}} --data {{dir}}/train.txt {SMALL}"
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    stdout = _run(_args(f"{base} --out {stopped} --stop-at 3", data), capsys)
    assert "stopped at step 3 of 6" in stdout and "rerun the same command to resume" in stdout
    assert not (stopped / "model").exists()
    assert json.loads((stopped / "checkpoint" / "state.json").read_text())["step"] == 3
    # another setting does not resume silently
    assert run_main(main, _args(f"{base} --out {stopped} --batch-size 4", data)) == 2
    assert "was trained with other settings (batch_size differ)" in capsys.readouterr().err
    assert "trained 6 steps" in _run(_args(f"{base} --out {stopped}", data), capsys)
    _run(_args(f"{base} --out {whole}", data), capsys)

    resumed = json.loads((stopped / "train.json").read_text())
    straight = json.loads((whole / "train.json").read_text())
    assert resumed["resumed_from"] == 3 and straight["resumed_from"] is None
    assert [h["loss"] for h in resumed["history"]] == pytest.approx([h["loss"] for h in straight["history"]])
    assert resumed["widths"] == straight["widths"]
    a, b = (
        load_file(stopped / "model" / "model.safetensors"),
        load_file(whole / "model" / "model.safetensors"),
    )
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_a_resumed_run_takes_a_lower_lr(data, tmp_path, capsys):
    out = tmp_path / "run"
    base = f"prune-train {{model}} --data {{dir}}/train.txt --out {out} {SMALL}"
    _run(_args(f"{base} --stop-at 2", data), capsys)
    stdout = _run(_args(f"{base} --lr 1e-3", data), capsys)
    assert "resuming with lr 0.001 (the checkpoint was trained with lr 0.003)" in stdout
    result = json.loads((out / "train.json").read_text())
    assert result["resumed_from"] == 2 and result["complete"] and result["config"]["lr"] == 1e-3


def test_a_nan_loss_names_the_kept_checkpoint_and_a_lower_lr(data, tmp_path, capsys):
    out = tmp_path / "run"
    argv = f"prune-train {{model}} --data {{dir}}/train.txt --out {out} {TRAIN} --lr 1e5 --checkpoint-every 1"
    assert run_main(main, _args(argv, data)) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    match = re.search(
        r"loss became (nan|inf) at step (\d+).*last good checkpoint \(step (\d+)\) is kept in (\S+):", last
    )
    assert match is not None, last
    assert int(match[3]) == int(match[2]) - 1 and match[4] == str(out / "checkpoint")
    assert "rerun the same command with a lower learning rate (e.g. --lr 25000)" in last
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == int(match[3])
    assert not (out / "model").exists() and not (out / "train.json").exists()


def test_no_prune_trains_plainly_and_fresh_starts_over(data, tmp_path, capsys):
    out = tmp_path / "plain"
    argv = _args(
        f"prune-train {{model}} --data {{dir}}/train.jsonl --out {out} --steps 2 --seq-len 16 --no-prune",
        data,
    )
    assert "trained 2 steps" in _run(argv, capsys)
    result = json.loads((out / "train.json").read_text())
    assert result["prune"] is None and result["events"] == []
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["model_type"] == "llama"  # every layer keeps its widths: a stock checkpoint
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert _n_params(model) == _n_params(AutoModelForCausalLM.from_pretrained(data["model"]))
    assert "already holds this finished run" in _run(argv, capsys)
    assert "trained 2 steps" in _run([*argv, "--fresh"], capsys)
    # no checkpoint was kept (--checkpoint-every 0): export points to the final model
    assert run_main(main, ["export", str(out), "--out", str(tmp_path / "exp")]) == 2
    assert (
        f"has no checkpoint ({out}/checkpoint/state.json); its final model is already in"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "exp").exists()


def test_flags_override_the_config_file(data, tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        "[train]\nsteps = 5\nlr = 0.01\nbetas = [0.8, 0.9]\n[prune]\ntarget_params = 1000\nevery = 3\n"
    )
    args = build_parser().parse_args(
        ["prune-train", "m", "--data", "x.txt", "--out", "o", "--config", str(toml), "--lr", "0.02",
         "--target-ratio", "0.5", "--seed", "7"]
    )  # fmt: skip
    train, prune = train_configs(args)
    assert (train.steps, train.lr, train.seed, train.betas) == (5, 0.02, 7, (0.8, 0.9))
    assert (prune.target_ratio, prune.target_params, prune.every, prune.seed) == (0.5, None, 3, 7)
    toml.write_text("[train]\nsteps = 5\n[prune]\ntarget_ratio = 0.5\nseed = 1\n")
    train, prune = train_configs(args)
    assert (train.seed, prune.seed, train.lr) == (7, 1, 0.02)


# ------------------------------------------------------------------------------------------------ export
def test_export_of_the_last_checkpoint_equals_the_trained_model(data, trained, workdir, capsys):
    run, _ = trained
    before = _snapshot(run)
    out = workdir / "exported"
    stdout = _run(["export", str(run / "checkpoint"), "--out", str(out)], capsys)
    assert f"exported the step 12 checkpoint (of 12) of {run}" in stdout and "max logit diff" in stdout
    final = AutoModelForCausalLM.from_pretrained(run / "model").eval()
    exported = AutoModelForCausalLM.from_pretrained(out).eval()
    assert _n_params(exported) == _n_params(final)
    with torch.no_grad():
        torch.testing.assert_close(exported(IDS).logits, final(IDS).logits, rtol=1e-5, atol=1e-5)
    widths = ", ".join(f"{len(h) * 2}/{len(h)}/{len(f)}" for h, f in _kept(run))
    assert f"layer widths (heads/kv heads/ffn): {widths}" in stdout
    # an earlier export is replaced; anything else needs --overwrite; the run folder is never a target
    _run(["export", str(run), "--out", str(out), "--dtype", "bfloat16"], capsys)
    assert json.loads((out / "efficientllm_export.json").read_text())["dtype"] == "bfloat16"
    for target, phrase in (
        (data["dir"] / "foreign", "is not an exported model (no efficientllm_export.json)"),
        (run / "model", "is inside the run folder"),
    ):
        assert run_main(main, ["export", str(run), "--out", str(target)]) == 2
        assert phrase in capsys.readouterr().err
    assert (data["dir"] / "foreign" / "notes.txt").read_text() == "mine"
    assert _snapshot(run) == before


def _kept(run: Path) -> list[tuple[list[int], list[int]]]:
    state = json.loads((run / "checkpoint" / "pruning_state.json").read_text())["kept"]
    return list(zip(state["heads"], state["ffn"], strict=True))


# -------------------------------------------------------------------------------------------------- eval
def test_eval_writes_the_library_numbers(data, trained, workdir, capsys):
    run, _ = trained
    out = workdir / "eval.json"
    argv = ["eval", str(run / "model"), "--texts", str(data["dir"] / "heldout.txt"), "--tasks"]
    argv += [str(data["dir"] / "mc.jsonl"), "--device", "cpu", "--out", str(out)]
    stdout = _run(argv, capsys)
    result = json.loads(out.read_text())
    lm = load_lm(run / "model", device="cpu")
    ppl = perplexity(lm, HELDOUT)
    mc = multiple_choice(lm, [MCItem(r["context"], tuple(r["choices"]), r["gold"]) for r in MC])
    assert result["command"] == "efficientllm eval" and result["perplexity"]["n_texts"] == len(HELDOUT)
    assert result["perplexity"]["value"] == pytest.approx(ppl, rel=1e-6)
    assert result["tasks"] == {
        "mc": {"acc": pytest.approx(mc.acc), "acc_norm": pytest.approx(mc.acc_norm), "n": 6}
    }
    assert f"perplexity ({len(HELDOUT)} texts)" in stdout and f"{ppl:.4f}" in stdout
    assert f"{mc.acc:.4f} / {mc.acc_norm:.4f}" in stdout
    # an earlier result is replaced; table files give their text column
    argv = ["eval", str(run / "model"), "--texts", str(data["dir"] / "train.jsonl"), "--out", str(out)]
    _run([*argv, "--device", "cpu"], capsys)
    result = json.loads(out.read_text())
    assert result["perplexity"]["n_texts"] == len(CORPUS) and "tasks" not in result


# --------------------------------------------------------------------------------------------- bad input
P = "prune-train {model} --data {dir}/train.txt --steps 2 --batch-size 2 --seq-len 16 --target-ratio 0.6"
V = "eval {model} --texts {dir}/heldout.txt --device cpu"
CASES = [
    ("model-missing", P.replace("{model}", "{dir}/no-model"), "model path"),
    ("encoder-only", P.replace("{model}", "{encoder}"), "is an encoder-only"),
    ("data-missing", P.replace("train.txt", "nope.txt"), "--data {dir}/nope.txt: no such file"),
    ("data-empty", P.replace("train.txt", "empty.txt"), "--data {dir}/empty.txt is empty"),
    ("data-csv", P.replace("train.txt", "data.csv"), "unknown format '.csv'"),
    ("data-no-text-column", P.replace("train.txt", "train-body.jsonl"), "row 1 has no 'text' column"),
    ("data-too-short", P.replace("train.txt", "short.txt"), "fewer than one block of seq_len=16"),
    ("seq-len-too-long", P + " --seq-len 65", "max_position_embeddings=64; pass --seq-len 64 or less"),
    ("ratio-zero", P + " --target-ratio 0", "expected a number in (0, 1], got '0'"),
    ("ratio-above-one", P + " --target-ratio 1.5", "expected a number in (0, 1], got '1.5'"),
    ("every-zero", P + " --every 0", "must be a positive integer"),
    ("lr-zero", P + " --lr 0", "expected a finite number > 0"),
    ("heads-unknown", P + " --heads global", "invalid choice: 'global'"),
    ("no-target", P.replace(" --target-ratio 0.6", ""), "say how small the model should become"),
    (
        "no-prune-and-every",
        P + " --no-prune --every 2",
        "--no-prune trains without pruning, so --every, --target-ratio cannot apply",
    ),
    ("no-steps", P.replace(" --steps 2", ""), "pass --steps N"),
    ("stop-after-steps", P + " --stop-at 5", "--stop-at 5 is after the last step (2)"),
    (
        "target-too-large",
        P.replace("--target-ratio 0.6", "--target-params 1000000000"),
        "larger than the model",
    ),
    ("config-missing", P + " --config {dir}/nope.toml", "not found"),
    (
        "config-unknown-key",
        P + " --config {dir}/unknown-key.toml",
        "has no option 'evry' (did you mean 'every'?)",
    ),
    ("config-unknown-table", P + " --config {dir}/unknown-table.toml", "unknown table(s) 'optim'"),
    ("config-wrong-type", P + " --config {dir}/wrong-type.toml", "config key 'train.lr' must be float"),
    ("out-foreign", P + " --out {dir}/foreign", "is not a prune-train output folder (no run.json)"),
    ("out-is-a-file", P + " --out {dir}/a-file", "exists and is not a folder"),
    ("export-missing", "export {dir}/no-run", "no such folder"),
    ("export-not-a-run", "export {dir}", "is not a prune-train output folder"),
    ("eval-nothing", "eval {model} --device cpu", "nothing to evaluate"),
    ("eval-model-missing", V.replace("{model}", "{dir}/no-model"), "does not exist"),
    ("eval-texts-missing", V.replace("heldout.txt", "nope.txt"), "no such file"),
    ("eval-mc-no-gold", V + " --tasks {dir}/mc-no-gold.jsonl", "line 1 lacks gold"),
    ("eval-mc-not-jsonl", V + " --tasks {dir}/heldout.txt", "pass a .jsonl file"),
    ("eval-lm-eval-missing", V + " --lm-eval arc_easy", "pip install 'efficientllm[eval]'"),
    ("eval-max-length-one", V + " --max-length 1", "windows of at least 2 tokens"),
    ("eval-out-foreign", V + " --out {dir}/a-file", "is not an earlier eval result"),
    ("eval-out-folder", V + " --out {dir}", "is a folder"),
    ("eval-cuda-absent", V.replace("cpu", "cuda"), "CUDA is not available"),
]


@pytest.mark.parametrize(("argv", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(argv, phrase, data, workdir, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "lm_eval" else find_spec(n, *a)
    )
    check_bad_input(
        main,
        _args(argv, data),
        prog="efficientllm",
        phrase=phrase.format(**{k: str(v) for k, v in data.items()}),
        workdir=workdir,
        inputs=data["dir"],
        capsys=capsys,
    )


def test_help_imports_nothing_heavy_beyond_the_package():
    """`python -m efficientllm prune-train --help` answers; the command line adds no heavy import of its own
    to what ``import efficientllm`` already loads."""
    probe = textwrap.dedent(
        """
        import json, runpy, sys
        import efficientllm
        before = set(sys.modules)
        sys.argv = ["efficientllm", "prune-train", "--help"]
        try:
            runpy.run_module("efficientllm", run_name="__main__", alter_sys=True)
        except SystemExit as exit_:
            code = exit_.code
        heavy = ("torch", "transformers", "datasets", "pandas", "scipy", "accelerate", "safetensors")
        print(json.dumps({"code": code, "new": sorted(m for m in heavy if m in set(sys.modules) - before)}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert "usage: efficientllm prune-train" in proc.stdout
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"code": 0, "new": []}
