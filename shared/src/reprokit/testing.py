"""Model folders that `reprokit.lm.load_lm` must refuse, for the bad-input tests of every package.

`write_bad_models(root, tokenizer)` saves one tiny folder per kind of bad model; `BAD_MODELS` maps each
kind to a fragment of the message that names it, so a command-line test can assert both the exit status
and what the user is told.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from transformers import PreTrainedTokenizerBase

__all__ = [
    "BAD_MODELS",
    "check_bad_input",
    "check_bad_reproduce_config",
    "check_smoke_output",
    "run_main",
    "run_reproduce",
    "write_bad_models",
]

#: kind of bad model folder -> a fragment of the one-line message that refuses it
BAD_MODELS: dict[str, str] = {
    "encoder-only": "is an encoder-only (masked language) model",
    "encoder-decoder": "is an encoder-decoder model",
    "corrupt-weights": "is corrupt or truncated",
    "truncated-weights": "is corrupt or truncated",
    "shape-mismatch": "do not fit its config.json",
    "custom-code": "never runs code from a model repository",
    "no-tokenizer": "has no tokenizer files",
}


def write_bad_models(root: str | Path, tokenizer: PreTrainedTokenizerBase) -> dict[str, Path]:
    """One folder per `BAD_MODELS` kind under `root` (plus "good", a loadable llama), sized to `tokenizer`."""
    from transformers import BertConfig, BertForMaskedLM, T5Config, T5ForConditionalGeneration

    from reprokit.zoo import build_model

    root = Path(root)
    good = root / "good"
    build_model("llama-0.3m", tokenizer).save_pretrained(good)
    tokenizer.save_pretrained(good)
    vocab = len(tokenizer)
    out = {"good": good}

    def copy(kind: str, **config_changes: object) -> Path:
        folder = root / kind
        shutil.copytree(good, folder)
        if config_changes:
            config = json.loads((folder / "config.json").read_text())
            config.update(config_changes)
            (folder / "config.json").write_text(json.dumps(config))
        out[kind] = folder
        return folder

    small = {"num_attention_heads": 2, "intermediate_size": 64}
    bert = BertForMaskedLM(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, **small))
    t5 = T5ForConditionalGeneration(
        T5Config(vocab_size=vocab, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2)
    )
    for kind, model in (("encoder-only", bert), ("encoder-decoder", t5)):
        model.save_pretrained(root / kind)
        tokenizer.save_pretrained(root / kind)
        out[kind] = root / kind
    (copy("corrupt-weights") / "model.safetensors").write_bytes(b"not a safetensors file")
    weights = copy("truncated-weights") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    copy("shape-mismatch", hidden_size=2 * json.loads((good / "config.json").read_text())["hidden_size"])
    copy(
        "custom-code",
        model_type="my_custom_lm",
        auto_map={"AutoConfig": "configuration_my.MyConfig", "AutoModelForCausalLM": "modeling_my.MyLM"},
    )
    folder = root / "no-tokenizer"
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(good / name, folder / name)
    out["no-tokenizer"] = folder
    return out


def run_main(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """A command line's exit status, argparse's own usage exits (``SystemExit``) included."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1


def check_bad_input(
    main: Callable[[list[str]], int], argv: list[str], *, prog: str, phrase: str, workdir: Path, inputs: Path,
    capsys: object,
) -> None:  # fmt: skip
    """Assert that `argv` is refused as a user error: exit 2, `phrase` in one last line, no traceback, and
    nothing written to `workdir` or `inputs` (a pytest ``capsys`` reads stderr)."""
    before = sorted(p.name for p in inputs.iterdir())
    args = [*argv] if "--out" in argv else [*argv, "--out", str(workdir / "result.json")]
    code = run_main(main, args)
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    last = err.strip().splitlines()[-1]
    assert code == 2, err
    assert phrase in last, err
    assert "Traceback" not in err, err
    # our errors: the last line, once (progress bars of datasets/transformers may come before it);
    # argparse's own usage errors: its usage line, then the error
    ours = last.startswith(f"{prog}: error:") and err.count("error:") == 1
    assert ours or (err.startswith("usage:") and ": error: " in last), err
    assert list(workdir.iterdir()) == [], "a failed run wrote files"
    assert sorted(p.name for p in inputs.iterdir()) == before


def run_reproduce(
    root: Path, paper: str, *args: str | Path, cache: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``<root>/reproduce/<paper>.py`` (dashes as underscores) offline and quiet from `root`, with its
    own `cache` and extra environment variables `env`; output captured, exit status not checked."""
    script = Path(root) / "reproduce" / f"{paper.replace('-', '_')}.py"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "REPROKIT_QUIET": "1", **env}
    argv = [sys.executable, str(script), *map(str, args), "--cache-dir", str(cache)]
    return subprocess.run(
        argv, cwd=root, env=full_env, capture_output=True, text=True, timeout=600, check=False
    )


def check_bad_reproduce_config(root: Path, paper: str, tmp_path: Path, toml: str, phrase: str) -> None:
    """A reproduce script given the config `toml` exits 2 with one line that names the script and holds
    `phrase`, before any work: no output folder and no cache are created."""
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    out, cache = tmp_path / "out", tmp_path / "cache"
    proc = run_reproduce(root, paper, "--config", config, "--out", out, cache=cache)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], proc.stderr
    assert lines[0].startswith(f"reproduce/{paper.replace('-', '_')}.py: error:"), lines[0]
    assert not out.exists() and not cache.exists()


def check_smoke_output(
    out: Path, paper: str, tables: Sequence[str], figures: Sequence[str], seeds: Sequence[int] = (0, 1)
) -> dict:
    """A smoke reproduction wrote every table (mean and per seed, csv and md), figure, claims file,
    manifest and REPORT.md for `paper` at tiny scale over `seeds`; returns the manifest."""
    expected = [f"{t}{suffix}.{ext}" for t in tables for suffix in ("", "_per_seed") for ext in ("csv", "md")]
    files = [*expected, *figures, "claims.json", "claims.md", "manifest.json", "REPORT.md"]
    missing = [n for n in files if not (Path(out) / n).is_file()]
    assert not missing, missing
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    assert manifest["paper"] == paper and manifest["scale"] == "tiny"
    assert manifest["config"]["seeds"] == list(seeds)
    return manifest
