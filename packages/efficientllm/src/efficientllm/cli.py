"""Command line: `efficientllm prune-train | export | eval`.

``prune-train`` trains a llama-family model while pruning it (`efficientllm.training.prune_train`, on
`accelerate`, so it runs under ``accelerate launch``) and exports the final model; ``export`` turns the
checkpoint of a run (e.g. one stopped early) into a standalone model folder; ``eval`` gives perplexity,
zero-shot multiple-choice accuracy and, optionally, lm-evaluation-harness scores. Every input is checked
before the first model loads; bad input is one line on stderr and exit status 2 (`reprokit.cli.run_cli`),
and nothing is written. Heavy libraries are imported inside the commands.

A prune-train output folder holds ``run.json`` (what this command was run on), ``source/`` (the source
model's config and tokenizer, so that ``export`` can rebuild the model from a checkpoint alone),
``checkpoint/`` (`prune_train`'s, replaced atomically), ``train.json`` and, once the run is complete,
``model/`` (the exported model).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import shutil
from argparse import SUPPRESS
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reprokit.cli import (
    DTYPES,
    add_debug_flag,
    check_output_path,
    device_arg,
    error_summary,
    load_toml_config,
    non_negative_int,
    positive_int,
    run_cli,
)
from reprokit.errors import ConfigError, DataError, OutputPathError, UserError

logger = logging.getLogger(__name__)

PROG = "efficientllm"
#: Files and folders of a prune-train output folder.
RUN_FILE = "run.json"
SOURCE_DIR = "source"
MODEL_DIR = "model"
TRAIN_FILE = "train.json"
CHECKPOINT_DIR = "checkpoint"  # = efficientllm.training.CHECKPOINT_DIR (not imported: it imports torch)
#: The `command` value written to run.json and to an eval result, to recognise a prior run.
PRUNE_TRAIN_COMMAND = "efficientllm prune-train"
EVAL_COMMAND = "efficientllm eval"
EXPORT_REPORT_FILE = "efficientllm_export.json"  # = efficientllm.export.EXPORT_REPORT_FILE
TABLE_SUFFIXES = (".jsonl", ".json", ".parquet")
TEXT_SUFFIXES = (".txt",)
SAVE_DTYPES = ("float32", "bfloat16", "float16")


class TrainingDivergedError(UserError, FloatingPointError):
    """The loss became NaN or infinite; the message names the last good checkpoint and how to resume."""


# ------------------------------------------------------------------------------------ argparse types
def _ratio(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value!r}") from None
    if not 0.0 < number <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value!r}")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value!r}") from None
    if not 0.0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {value!r}")
    return number


def _task_list(value: str) -> tuple[str, ...]:
    tasks = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    if not tasks:
        raise argparse.ArgumentTypeError("name at least one lm-evaluation-harness task, e.g. arc_easy,piqa")
    return tasks


# --------------------------------------------------------------------------------------------- helpers
def _is_main_process() -> bool:
    """False on the non-zero ranks of an ``accelerate launch`` / ``torchrun`` run (they print nothing)."""
    return os.environ.get("RANK", "0") in ("", "0")


def _quiet_progress(args: argparse.Namespace) -> None:
    """Hide transformers' per-file progress bars (loading, saving) unless --verbose."""
    if not args.verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when it is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_texts(files: Sequence[Path], *, column: str, flag: str) -> list[str]:
    """The non-empty texts of .txt files (one text per non-blank line) and .jsonl/.json/.parquet files
    (the `column` of every row), in file order; every problem is a `DataError` naming `flag` and the file."""
    from reprokit.datafiles import load_data_files, read_jsonl, read_text_lines

    texts: list[str] = []
    for path in files:
        suffix = path.suffix.lower()
        if suffix in TEXT_SUFFIXES:
            texts += [line for _, line in read_text_lines(path, what=flag)]
            continue
        if suffix not in TABLE_SUFFIXES:
            raise DataError(
                f"{flag} {path}: unknown format {suffix or '(no suffix)'!r}; pass .txt (one text per line), "
                ".jsonl, .json or .parquet files."
            )
        if suffix == ".jsonl":
            rows: list[tuple[int, Mapping[str, Any]]] = read_jsonl(path, what=flag)
        else:
            dataset = load_data_files(path, what=flag)
            rows = list(enumerate(dataset, start=1))
        found = 0
        for number, row in rows:
            if column not in row:
                raise DataError(
                    f"{flag} {path} row {number} has no {column!r} column (it has "
                    f"{', '.join(sorted(row)) or 'nothing'}); pass --text-column naming the text column."
                )
            value = row[column]
            if value is None:
                continue
            if not isinstance(value, str):
                raise DataError(
                    f"{flag} {path} row {number}: {column!r} is a {type(value).__name__}, not text; pass "
                    "--text-column naming a column of strings."
                )
            if value.strip():
                texts.append(value)
                found += 1
        if not found:
            raise DataError(f"{flag} {path} holds no non-empty {column!r} text; add texts to it.")
    if not texts:
        raise DataError(f"{flag}: no texts in {', '.join(map(str, files))}; pass files with texts.")
    return texts


def _model_config(model: str) -> dict[str, Any]:
    """config.json of a local model folder (empty for a hub id or a folder `load_lm` will refuse)."""
    from reprokit.lm import looks_like_path

    if not looks_like_path(model):
        return {}
    return _read_json(Path(model).expanduser() / "config.json") or {}


def _check_seq_len(seq_len: int, config: Mapping[str, Any], model: str) -> None:
    max_pos = config.get("max_position_embeddings")
    if isinstance(max_pos, int) and seq_len > max_pos:
        raise ConfigError(
            f"--seq-len {seq_len} exceeds {model}'s max_position_embeddings={max_pos}; pass --seq-len "
            f"{max_pos} or less."
        )


# ----------------------------------------------------------------------------------------- configs
#: Flags that override a PruneTrainConfig field of the same name (``--batch-size`` sets ``batch_size``).
TRAIN_FLAGS: tuple[str, ...] = (
    "steps",
    "batch_size",
    "seq_len",
    "lr",
    "warmup_steps",
    "checkpoint_every",
    "seed",
)
#: Flags that override a PruneConfig field of the same name.
PRUNE_FLAGS: tuple[str, ...] = (
    "every",
    "target_params",
    "target_ratio",
    "saliency",
    "obs",
    "heads",
    "normalize",
    "round_to",
)
_TABLES = ("train", "prune")


def _check_keys(cls: type, mapping: Mapping[str, Any], table: str) -> None:
    """Unknown keys of a config table, each with the closest known name."""
    import dataclasses

    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in mapping if k not in names]
    if unknown:
        hints = [
            f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, names, 1)) else repr(k)
            for k in unknown
        ]
        raise ConfigError(f"[{table}] has no option {', '.join(hints)}; options: {', '.join(names)}.")


def train_configs(args: argparse.Namespace) -> tuple[Any, Any]:
    """(`PruneTrainConfig`, `PruneConfig` or None) of a prune-train command line.

    ``--config`` TOML values ([train] and [prune] tables) are overridden by the flags given; ``--seed``
    also seeds the pruner unless [prune] sets its own seed.
    """
    from efficientllm.schedule import PruneConfig
    from efficientllm.training import PruneTrainConfig
    from reprokit.config import config_from_mapping

    data: dict[str, Any] = load_toml_config(args.config) if args.config is not None else {}
    where = f"--config {args.config}: " if args.config is not None else ""
    unknown = [k for k in data if k not in _TABLES]
    if unknown:
        raise ConfigError(
            f"{where}unknown table(s) {', '.join(map(repr, unknown))}; the file holds [train] "
            "(PruneTrainConfig keys) and [prune] (PruneConfig keys)."
        )
    for name in _TABLES:
        if not isinstance(data.get(name, {}), dict):
            raise ConfigError(f"{where}{name} must be a table ([{name}]), not a single value.")
    train = dict(data.get("train", {}))
    prune = dict(data.get("prune", {}))
    try:
        _check_keys(PruneTrainConfig, train, "train")
        _check_keys(PruneConfig, prune, "prune")
    except ConfigError as err:
        raise ConfigError(f"{where}{err}") from None
    for name in TRAIN_FLAGS:
        if hasattr(args, name):  # the flags default to SUPPRESS: present only when given
            train[name] = getattr(args, name)
    if "steps" not in train:
        raise ConfigError("pass --steps N (or steps in the [train] table of --config).")
    given = [name for name in PRUNE_FLAGS if hasattr(args, name)]
    if args.no_prune and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigError(
            f"--no-prune trains without pruning, so {flags} cannot apply; drop one or the other."
        )
    for name in given:
        prune[name] = getattr(args, name)
    if hasattr(args, "target_ratio"):
        prune.pop("target_params", None)
    if hasattr(args, "target_params"):
        prune.pop("target_ratio", None)
    if hasattr(args, "seed") and "seed" not in data.get("prune", {}):
        prune["seed"] = args.seed
    try:
        train_config = config_from_mapping(PruneTrainConfig, train, path="train")
        if args.no_prune:
            return train_config, None
        if "target_params" not in prune and "target_ratio" not in prune:
            raise ConfigError(
                "say how small the model should become: pass --target-ratio R (a share of the source's "
                "parameters) or --target-params N (or set one in [prune] of --config), or --no-prune to "
                "train without pruning."
            )
        return train_config, config_from_mapping(PruneConfig, prune, path="prune")
    except ConfigError as err:
        if args.config is None:
            raise
        raise ConfigError(f"{where}{err}") from None


# ------------------------------------------------------------------------------------- prune-train
def _run_folder_mode(out: Path, args: argparse.Namespace) -> str:
    """How to use --out: "new" (absent or empty), "resume" (a prior run), "fresh" (a prior run restarted
    with --fresh, or another folder written into with --overwrite)."""
    if not out.exists() or not any(out.iterdir()):
        return "new"
    run = _read_json(out / RUN_FILE)
    if run is not None and run.get("command") == PRUNE_TRAIN_COMMAND:
        return "fresh" if args.fresh else "resume"
    if args.overwrite:
        return "fresh"
    raise OutputPathError(
        f"--out {args.out} exists and is not a prune-train output folder (no {RUN_FILE}); pass another "
        "--out, or --overwrite to write into it."
    )


def _run_record(args: argparse.Namespace, data: Sequence[Path]) -> dict[str, Any]:
    """What identifies a run besides its configs: the source model, the data files and their column."""
    from reprokit.lm import looks_like_path

    model = str(Path(args.model).expanduser().absolute()) if looks_like_path(args.model) else args.model
    return {
        "command": PRUNE_TRAIN_COMMAND,
        "model": model,
        "data": [str(Path(p).expanduser().absolute()) for p in data],
        "text_column": args.text_column,
    }


def _check_same_run(out: Path, record: Mapping[str, Any], args: argparse.Namespace) -> None:
    """A resumed run must use the model, data and dtype of the first call."""
    prior = _read_json(out / RUN_FILE) or {}
    for key, what in (
        ("model", "model"),
        ("data", "--data files"),
        ("text_column", "--text-column"),
        ("dtype", "--dtype"),
    ):
        if prior.get(key) != record[key]:
            raise ConfigError(
                f"--out {args.out} is a run with another {what} ({prior.get(key)!r}, now {record[key]!r}); "
                "pass the same model, data and dtype to resume it, --fresh to start over, or another --out."
            )


def _changed(train: Any, prune: Any, saved: Mapping[str, Any], *, ignore: Sequence[str] = ()) -> list[str]:
    """The settings in which `train` / `prune` differ from a saved record (train.json or a checkpoint's
    state.json: ``config`` and ``prune``), by name; checkpoint_every and log_every never count."""
    skip = {"checkpoint_every", "log_every", *ignore}
    mine = {k: v for k, v in train.to_dict().items() if k not in skip}
    theirs = {k: v for k, v in (saved.get("config") or {}).items() if k not in skip}
    changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    own, other = (prune.to_dict() if prune is not None else None), saved.get("prune")
    if own is None or other is None:
        return changed + (["pruning (on or off)"] if own != other else [])
    return changed + [f"prune.{k}" for k in sorted(set(own) | set(other)) if own.get(k) != other.get(k)]


def _check_resumable(out: Path, train: Any, prune: Any, *, lr_given: bool) -> None:
    """The checkpoint in --out was trained with these configs (a new --lr aside, which is taken over)."""
    meta = _read_json(out / CHECKPOINT_DIR / "state.json")
    if meta is None:
        return
    changed = _changed(train, prune, meta, ignore=("lr",) if lr_given else ())
    if changed:
        raise ConfigError(
            f"{out / CHECKPOINT_DIR} was trained with other settings ({', '.join(changed)} differ); pass the "
            "same settings to resume it, --fresh to start over, or another --out."
        )


def _finished(out: Path, train: Any, prune: Any) -> bool:
    """Whether --out holds a complete run of these configs (its model exported); refuse other configs."""
    result = _read_json(out / TRAIN_FILE)
    if result is None or not result.get("complete"):
        return False
    changed = _changed(train, prune, result)
    if changed:
        raise ConfigError(
            f"{out} holds a finished run with other settings ({', '.join(changed)} differ); pass --fresh to "
            "train it again with these settings, or another --out."
        )
    return (out / MODEL_DIR / "config.json").is_file()


def _saved_lr(checkpoint: Path) -> float | None:
    """The learning rate the checkpoint in `checkpoint` was trained with (None without one)."""
    meta = _read_json(checkpoint / "state.json")
    config = meta.get("config") if meta is not None else None
    return float(config["lr"]) if isinstance(config, dict) and "lr" in config else None


def _source_params(model: Any, prune: Any) -> int:
    """The parameters of the model (tied weights once); a `ConfigError` when the pruning target is outside
    what the model can be pruned to (the `Pruner`'s own checks), before anything is written."""
    if prune is not None:
        from efficientllm.schedule import Pruner

        Pruner(model, prune)  # raises on a target above the source or below the smallest model; no change
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied weight once


def _diverged(err: FloatingPointError, out: Path, train: Any) -> TrainingDivergedError:
    """The one-line message of a NaN/inf loss: the last good checkpoint and how to resume from it."""
    checkpoint = out / CHECKPOINT_DIR
    meta = _read_json(checkpoint / "state.json")
    lower = f"--lr {train.lr / 4:g}"
    if meta is not None:
        kept = (
            f"The last good checkpoint (step {meta.get('step')}) is kept in {checkpoint}: rerun the same "
            f"command with a lower learning rate (e.g. {lower}) to resume from it, or add --fresh to start "
            "over."
        )
    else:
        kept = (
            f"No checkpoint was written before it (pass --checkpoint-every N to keep one); rerun with a "
            f"lower learning rate (e.g. {lower})."
        )
    return TrainingDivergedError(f"training diverged: {error_summary(err)} {kept}")


def _check_model_path(model: str) -> None:
    """A local model folder that does not exist fails first, naming the model (not its tokenizer)."""
    from reprokit.lm import ModelNotFoundError, looks_like_path

    if looks_like_path(model) and not Path(model).expanduser().exists():
        raise ModelNotFoundError(f"model path {model!r} does not exist; pass an existing folder or a hub id.")


def _token_stream(model: str, texts: Sequence[str], seq_len: int, config: Mapping[str, Any]) -> Any:
    """The texts as one token stream of whole --seq-len blocks (what `prune_train` packs), made before the
    model loads, so that too little text or a foreign tokenizer fails first."""
    import numpy as np

    from efficientllm.training import pack_blocks
    from reprokit.lm import load_tokenizer

    tokenizer = load_tokenizer(model)
    try:
        blocks = pack_blocks(tokenizer, texts, seq_len)
    except DataError as err:
        raise DataError(f"--data: {err}") from None
    vocab = config.get("vocab_size")
    if isinstance(vocab, int) and int(blocks.max()) >= vocab:
        raise DataError(
            f"--data: token id {int(blocks.max())} is outside {model}'s vocabulary of {vocab}; the model "
            "folder's tokenizer is not the model's."
        )
    return np.ascontiguousarray(blocks.reshape(-1))


def _cmd_prune_train(args: argparse.Namespace) -> None:
    out = check_output_path(args.out, folder=True)
    mode = _run_folder_mode(out, args)
    train, prune = train_configs(args)
    if args.stop_at is not None and args.stop_at > train.steps:
        raise ConfigError(
            f"--stop-at {args.stop_at} is after the last step ({train.steps}); pass at most that."
        )
    record = {**_run_record(args, args.data), "dtype": args.dtype}
    if mode == "resume":
        _check_same_run(out, record, args)
        if _finished(out, train, prune):
            if _is_main_process():
                print(
                    f"{out} already holds this finished run ({train.steps} steps); its model is in "
                    f"{out / MODEL_DIR}. Pass --fresh to train it again."
                )
            return
        _check_resumable(out, train, prune, lr_given=hasattr(args, "lr"))
    texts = read_texts(args.data, column=args.text_column, flag="--data")
    _check_model_path(args.model)
    config = _model_config(args.model)
    _check_seq_len(train.seq_len, config, args.model)
    stream = _token_stream(args.model, texts, train.seq_len, config)

    from efficientllm.export import export_model, model_shape
    from efficientllm.training import prune_train
    from reprokit.lm import load_lm
    from reprokit.results import atomic_directory, atomic_write_json

    _quiet_progress(args)
    lm = load_lm(args.model, dtype=args.dtype, device="cpu")
    model, tokenizer = lm.model, lm.tokenizer
    model_shape(model)  # a llama-family model that export can save, checked before training
    before = _source_params(model, prune)

    from accelerate import Accelerator

    accelerator = Accelerator()
    accelerator.wait_for_everyone()  # every rank has read --out before the main one writes to it
    if accelerator.is_main_process:
        if mode == "fresh":
            for name in (CHECKPOINT_DIR, MODEL_DIR):
                shutil.rmtree(out / name, ignore_errors=True)
            (out / TRAIN_FILE).unlink(missing_ok=True)
        elif mode == "resume" and hasattr(args, "lr"):
            old = _saved_lr(out / CHECKPOINT_DIR)
            if old is not None and old != train.lr:  # prune_train takes it over (allow_lr_change)
                print(f"resuming with lr {train.lr:g} (the checkpoint was trained with lr {old:g})")
        with atomic_directory(out / SOURCE_DIR, replace=True) as tmp:
            model.config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        atomic_write_json(out / RUN_FILE, record)
    accelerator.wait_for_everyone()

    try:
        result = prune_train(
            model,
            tokenizer,
            stream,
            train,
            prune=prune,
            output_dir=out,
            resume=mode == "resume",
            allow_lr_change=hasattr(args, "lr"),
            accelerator=accelerator,
            stop_at=args.stop_at,
        )
    except FloatingPointError as err:
        raise _diverged(err, out, train) from err
    if not accelerator.is_main_process:
        return
    loss = result.history[-1]["loss"] if result.history else float("nan")
    head = (
        f"{before:,} -> {result.final_params:,} parameters ({result.final_params / before:.1%}), "
        f"{result.tokens_seen:,} tokens, final loss {loss:.4f}"
    )
    if not result.complete:
        print(
            f"stopped at step {result.step} of {train.steps}: {head}; checkpoint in {out / CHECKPOINT_DIR} "
            f"(rerun the same command to resume, or `efficientllm export {out} --out DIR`)"
        )
        return
    if prune is not None and result.stop_reason is None:
        logger.warning(
            "pruning had not reached its target after %d steps; pass more --steps, a smaller --every or a "
            "larger [prune] budget_fraction to reach it",
            result.step,
        )
    report = export_model(result.model, tokenizer, out / MODEL_DIR, dtype=args.export_dtype, overwrite=True)
    kind = f"stock {report.model_type}" if report.stock else "efficientllm per-layer"
    print(f"trained {result.step} steps: {head}; wrote {out / MODEL_DIR} ({kind}) and {out / TRAIN_FILE}")


# ----------------------------------------------------------------------------------------------- export
def _check_model_out(out: Path, args: argparse.Namespace, *, inside: Path | None = None) -> bool:
    """Whether an --out model folder may be written: absent, empty, a prior export, or --overwrite.
    Returns whether it exists (so the export replaces it)."""
    if inside is not None and (out == inside or inside in out.parents):
        raise OutputPathError(
            f"--out {args.out} is inside the run folder {inside}; choose a folder outside it."
        )
    if not out.exists():
        return False
    if not any(out.iterdir()) or (out / EXPORT_REPORT_FILE).is_file() or args.overwrite:
        return True
    raise OutputPathError(
        f"--out {args.out} exists and is not an exported model (no {EXPORT_REPORT_FILE}); pass another "
        "--out, or --overwrite to replace it."
    )


def _checkpoint_dtype(weights: Path) -> Any:
    """The torch dtype of the checkpoint's tensors (the first one's)."""
    import torch
    from safetensors import safe_open

    names = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}
    with safe_open(str(weights), "pt") as f:
        first = next(iter(f.keys()))
        return names.get(f.get_slice(first).get_dtype(), torch.float32)


def rebuild_from_checkpoint(run: Path) -> tuple[Any, Any, dict[str, Any]]:
    """(model, tokenizer, checkpoint state) of a prune-train output folder's checkpoint, compacted.

    The source model is built from ``run/source/config.json`` (no weights needed), sliced to the units
    the checkpoint's tensors hold, loaded with its weights and compacted to the units it keeps.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    from efficientllm.compaction import compact
    from efficientllm.groups import find_groups
    from efficientllm.state import PruningState
    from efficientllm.training import _load_weights, _restore_shapes
    from reprokit.lm import load_tokenizer

    checkpoint = run / CHECKPOINT_DIR
    meta = _read_json(checkpoint / "state.json") or {}
    prune = meta.get("prune")
    config = AutoConfig.from_pretrained(str(run / SOURCE_DIR), trust_remote_code=False)
    weights = checkpoint / "model" / "model.safetensors"
    if not weights.is_file():
        raise DataError(f"{checkpoint} has no model/model.safetensors; the checkpoint is incomplete.")
    model = AutoModelForCausalLM.from_config(config, dtype=_checkpoint_dtype(weights))
    if prune is not None:
        saved = PruningState.load(checkpoint / "pruning_state.json")
        _restore_shapes(model, saved, prune["heads"])
        _load_weights(model, checkpoint / "model")
        compact(model, saved.copy(), None, space=find_groups(model, heads=prune["heads"]))
    else:
        _load_weights(model, checkpoint / "model")
    model.eval()
    return model, load_tokenizer(run / SOURCE_DIR), meta


def _cmd_export(args: argparse.Namespace) -> None:
    run = Path(args.run).expanduser().absolute()
    if run.name == CHECKPOINT_DIR and (run.parent / RUN_FILE).is_file():
        run = run.parent
    if not run.is_dir():
        raise DataError(f"{args.run}: no such folder; pass the --out folder of `efficientllm prune-train`.")
    record = _read_json(run / RUN_FILE)
    if record is None or record.get("command") != PRUNE_TRAIN_COMMAND:
        raise DataError(
            f"{args.run} is not a prune-train output folder (no {RUN_FILE}); pass the --out folder of "
            "`efficientllm prune-train`."
        )
    checkpoint = run / CHECKPOINT_DIR
    if _read_json(checkpoint / "state.json") is None:
        final = run / MODEL_DIR
        hint = (
            f"its final model is already in {final}"
            if (final / "config.json").is_file()
            else "run prune-train with --checkpoint-every N (or --stop-at) to keep one"
        )
        raise DataError(f"{args.run} has no checkpoint ({checkpoint}/state.json); {hint}.")
    if not (run / SOURCE_DIR / "config.json").is_file():
        raise DataError(f"{run / SOURCE_DIR} has no config.json; the run folder is incomplete.")
    out = check_output_path(args.out, folder=True)
    exists = _check_model_out(out, args, inside=run)

    from efficientllm.export import export_model

    _quiet_progress(args)
    model, tokenizer, meta = rebuild_from_checkpoint(run)
    report = export_model(model, tokenizer, out, dtype=args.dtype, overwrite=exists)
    steps = (meta.get("config") or {}).get("steps")
    kind = (
        f"stock {report.model_type} ({report.config_class})"
        if report.stock
        else f"{report.model_type} per-layer ({report.config_class}, needs `import efficientllm`)"
    )
    diff = "not verified" if report.max_logit_diff is None else f"{report.max_logit_diff:.3g}"
    print(
        f"exported the step {meta.get('step')} checkpoint (of {steps}) of {run}: "
        f"{report.num_parameters:,} parameters, {kind}, hidden {report.hidden_size}, dtype {report.dtype}, "
        f"max logit diff {diff} -> {out}"
    )
    widths = report.layers
    print(
        "layer widths (heads/kv heads/ffn): "
        + ", ".join(f"{w.num_attention_heads}/{w.num_key_value_heads}/{w.intermediate_size}" for w in widths)
    )
    for note in report.notes:
        print(f"note: {note}")


# ------------------------------------------------------------------------------------------------- eval
def read_mc_items(path: Path) -> list[Any]:
    """Multiple-choice items of a jsonl file: ``context`` (text), ``choices`` (list of texts) and ``gold``
    (the index of the right choice; ``answer`` is accepted too), one object per line."""
    from efficientllm.evaluation import MCItem
    from reprokit.datafiles import read_jsonl

    if path.suffix.lower() != ".jsonl":
        raise DataError(f"--tasks {path}: pass a .jsonl file (one item per line: context, choices, gold).")
    items = []
    for number, row in read_jsonl(path, what="--tasks"):
        where = f"--tasks {path} line {number}"
        gold = row.get("gold", row.get("answer"))
        absent = [
            k for k, v in (("context", row.get("context")), ("choices", row.get("choices"))) if v is None
        ]
        absent += ["gold"] if gold is None else []
        if absent:
            raise DataError(
                f"{where} lacks {', '.join(absent)} (it has {', '.join(sorted(row)) or 'nothing'}); every "
                "line needs context, choices (a list of texts) and gold (the index of the right choice)."
            )
        choices = row["choices"]
        if not isinstance(row["context"], str) or not isinstance(choices, list):
            raise DataError(f"{where}: context must be text and choices a list of texts.")
        if not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}: every choice must be text.")
        if isinstance(gold, bool) or not isinstance(gold, int):
            raise DataError(f"{where}: gold must be the index of the right choice (0, 1, ...), got {gold!r}.")
        try:
            items.append(MCItem(row["context"], tuple(choices), gold))
        except DataError as err:
            raise DataError(f"{where}: {err}") from None
    return items


def _check_eval_out(path: Path | None, args: argparse.Namespace) -> Path | None:
    if path is None:
        return None
    out = check_output_path(path)
    if out.exists():
        prior = _read_json(out)
        if not (prior is not None and prior.get("command") == EVAL_COMMAND) and not args.overwrite:
            raise OutputPathError(
                f"--out {path} exists and is not an earlier eval result; pass another --out, or --overwrite "
                "to replace it."
            )
    return out


def _cmd_eval(args: argparse.Namespace) -> None:
    import importlib.util

    if not (args.texts or args.tasks or args.lm_eval):
        raise ConfigError(
            "nothing to evaluate: pass --texts FILE (perplexity), --tasks FILE.jsonl (multiple choice) "
            "and/or --lm-eval TASKS (lm-evaluation-harness)."
        )
    if args.texts and args.max_length is not None and args.max_length < 2:
        raise ConfigError(f"--max-length {args.max_length}: perplexity needs windows of at least 2 tokens.")
    out = _check_eval_out(args.out, args)
    if args.lm_eval and importlib.util.find_spec("lm_eval") is None:
        raise ConfigError(
            "--lm-eval needs lm-evaluation-harness, which is not installed; run "
            "`pip install 'efficientllm[eval]'` (or drop --lm-eval)."
        )
    texts = read_texts(args.texts, column=args.text_column, flag="--texts") if args.texts else None
    tasks: dict[str, list[Any]] = {}
    for path in args.tasks or ():
        name = path.stem
        if name in tasks:
            raise DataError(f"--tasks: two files are named {name!r}; each task file needs its own name.")
        tasks[name] = read_mc_items(path)

    from reprokit.lm import load_lm, resolve_device

    device = resolve_device(args.device)
    _quiet_progress(args)
    result: dict[str, Any] = {"command": EVAL_COMMAND, "model": str(args.model)}
    rows: list[tuple[str, str]] = []
    if texts is not None or tasks:
        from efficientllm.evaluation import multiple_choice, perplexity

        lm = load_lm(args.model, dtype=args.dtype, device=device)
        if texts is not None:
            ppl = perplexity(lm, texts, batch_size=args.batch_size, max_length=args.max_length)
            result["perplexity"] = {
                "value": ppl,
                "n_texts": len(texts),
                "files": [str(p) for p in args.texts],
            }
            rows.append((f"perplexity ({len(texts)} texts)", f"{ppl:.4f}"))
        scores: dict[str, Any] = {}
        for name, items in tasks.items():
            mc = multiple_choice(lm, items, batch_size=args.batch_size, max_length=args.max_length)
            scores[name] = {"acc": mc.acc, "acc_norm": mc.acc_norm, "n": mc.n}
            rows.append((f"{name} acc / acc_norm (n={mc.n})", f"{mc.acc:.4f} / {mc.acc_norm:.4f}"))
        if scores:
            result["tasks"] = scores
        del lm
    if args.lm_eval:
        from efficientllm.evaluation import lm_eval_tasks

        harness = lm_eval_tasks(
            args.model,
            args.lm_eval,
            batch_size=args.batch_size,
            device=str(device),
            num_fewshot=args.num_fewshot,
            dtype=args.dtype,
            limit=args.limit,
        )
        result["lm_eval"] = harness
        for task, metrics in harness.items():
            shown = [k for k in ("acc", "acc_norm") if k in metrics] or sorted(metrics)[:2]
            rows.append(
                (f"lm-eval {task} {' / '.join(shown)}", " / ".join(f"{metrics[k]:.4f}" for k in shown))
            )
    if out is not None:
        from reprokit.results import atomic_write_json

        atomic_write_json(out, result)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if out is not None:
        print(f"wrote {out}")


# ---------------------------------------------------------------------------------------------- parser
_PRUNE_TRAIN_EPILOG = f"""\
Data: .txt files (one text per non-blank line) and .jsonl/.json/.parquet files (the
--text-column of every row); each text is followed by EOS, and all are packed into
--seq-len blocks. --config is a TOML file with a [train] table (PruneTrainConfig keys:
steps, batch_size, seq_len, lr, warmup_steps, schedule, min_lr_ratio, weight_decay,
betas, max_grad_norm, seed, checkpoint_every, log_every) and a [prune] table
(PruneConfig keys: every, target_ratio, target_params, budget_fraction, budget_params,
round_to, enable_heads/ffn/hidden, heads, saliency, normalize, accumulate, obs,
compact_every, start_step, stop_step, ...); flags override it.

Writes DIR/{RUN_FILE}, DIR/{SOURCE_DIR}/ (config and tokenizer of the source),
DIR/{CHECKPOINT_DIR}/ (every --checkpoint-every steps), DIR/{TRAIN_FILE} (history, pruning
events, widths) and, when the run is complete, DIR/{MODEL_DIR}/: a stock Hugging Face
checkpoint when every layer has the same widths, else the efficientllm model type
(loads after `import efficientllm`). Rerunning the same command resumes from the
checkpoint (a lower --lr is taken over, e.g. after a divergence); --fresh starts over.

On several GPUs (data parallel):
  accelerate launch -m efficientllm prune-train MODEL --data F --out DIR ...
"""

_EXPORT_EPILOG = f"""\
RUN is the --out folder of prune-train (or its {CHECKPOINT_DIR}/ folder); its last
checkpoint is compacted and saved as a standalone model folder, e.g. for a run stopped
early. The saved model's logits are checked against the rebuilt one before the folder
appears. An existing DIR is replaced only when it is an earlier export (or with
--overwrite).
"""

_EVAL_EPILOG = """\
--texts: .txt (one text per line) or .jsonl/.json/.parquet (--text-column) files;
perplexity is token-weighted over all texts. --tasks: .jsonl files of multiple-choice
items {"context": ..., "choices": [...], "gold": INDEX}, one task per file (named by
the file), scored as lm-evaluation-harness does (acc, acc_norm). --lm-eval runs
lm-evaluation-harness tasks on MODEL (pip install 'efficientllm[eval]').
"""


def build_parser() -> argparse.ArgumentParser:
    """The `efficientllm` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Pruning-aware pretraining of llama-family models (EfficientLLM): train while pruning, "
        "export the smaller model, evaluate it.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-v", "--verbose", action="store_true", help="log progress")
        add_debug_flag(p)

    # ------------------------------------------------------------------------------ prune-train
    t = sub.add_parser(
        "prune-train",
        help="train a llama-family model while pruning it to a target size",
        description="Train MODEL on --data while removing its least salient attention heads, FFN\n"
        "channels and hidden channels every --every steps, down to the target size.",
        epilog=_PRUNE_TRAIN_EPILOG,
        formatter_class=fmt,
    )
    t.add_argument("model", help="source model: local folder or hub id (llama, mistral, qwen2, olmo2)")
    t.add_argument("--data", type=Path, nargs="+", required=True, metavar="FILE", help="training text files")
    t.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder (a prior run in it is resumed)"
    )
    t.add_argument("--text-column", default="text", metavar="NAME", help="text column of table files (text)")
    t.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML: [train], [prune] tables")
    g = t.add_argument_group("training (override [train])")
    n = {"default": SUPPRESS, "metavar": "N"}
    g.add_argument("--steps", type=positive_int, **n, help="optimizer steps (required, here or in --config)")
    g.add_argument("--batch-size", type=positive_int, **n, help="sequences per step and process (8)")
    g.add_argument("--seq-len", type=positive_int, **n, help="tokens per sequence (128)")
    g.add_argument(
        "--lr", type=_positive_float, default=SUPPRESS, metavar="LR", help="peak learning rate (3e-4)"
    )
    g.add_argument("--warmup-steps", type=non_negative_int, **n, help="linear warmup steps (0)")
    g.add_argument(
        "--checkpoint-every", type=non_negative_int, **n, help="steps between checkpoints (0: none)"
    )
    g.add_argument("--seed", type=non_negative_int, **n, help="seed of the data order and the pruner (0)")
    p = t.add_argument_group("pruning (override [prune])")
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--target-ratio",
        type=_ratio,
        default=SUPPRESS,
        metavar="R",
        help="final size as a share of the source's parameters, in (0, 1]",
    )
    target.add_argument("--target-params", type=positive_int, **n, help="final parameter count")
    p.add_argument("--every", type=positive_int, **n, help="steps between pruning events (10)")
    p.add_argument("--saliency", choices=("first", "second"), default=SUPPRESS, help="saliency order (first)")
    p.add_argument("--obs", action="store_true", default=SUPPRESS, help="OBS-compensate after each event")
    p.add_argument(
        "--heads", choices=("per_layer", "uniform"), default=SUPPRESS, help="head groups (per_layer)"
    )
    p.add_argument(
        "--normalize",
        choices=("param", "none", "type"),
        default=SUPPRESS,
        help="saliency normalisation (param)",
    )
    p.add_argument("--round-to", type=positive_int, **n, help="FFN and hidden widths stay multiples of N (1)")
    p.add_argument("--no-prune", action="store_true", help="plain training, no pruning")
    r = t.add_argument_group("run")
    r.add_argument("--fresh", action="store_true", help="start over instead of resuming a prior run in --out")
    r.add_argument("--overwrite", action="store_true", help="write into an --out that is not a prior run")
    r.add_argument(
        "--stop-at",
        type=positive_int,
        default=None,
        metavar="N",
        help="end this call after step N with a checkpoint (as a preemption would); rerun to resume",
    )
    r.add_argument("--dtype", choices=DTYPES, default="float32", help="weights while training (float32)")
    r.add_argument("--export-dtype", choices=SAVE_DTYPES, default=None, help="exported dtype (as trained)")
    common(t)
    t.set_defaults(func=_cmd_prune_train)

    # ----------------------------------------------------------------------------------- export
    e = sub.add_parser(
        "export",
        help="export the checkpoint of a prune-train run as a standalone model folder",
        description="Compact the last checkpoint of a prune-train run and save it as a model folder.",
        epilog=_EXPORT_EPILOG,
        formatter_class=fmt,
    )
    e.add_argument("run", metavar="RUN", help="the --out folder of prune-train")
    e.add_argument("--out", type=Path, required=True, metavar="DIR", help="model folder to write")
    e.add_argument("--dtype", choices=SAVE_DTYPES, default=None, help="saved dtype (default: as trained)")
    e.add_argument("--overwrite", action="store_true", help="replace a DIR that is not an earlier export")
    common(e)
    e.set_defaults(func=_cmd_export)

    # ------------------------------------------------------------------------------------- eval
    v = sub.add_parser(
        "eval",
        help="perplexity, zero-shot multiple choice and lm-evaluation-harness tasks",
        description="Evaluate a (pruned) model: perplexity on held-out texts, zero-shot multiple\n"
        "choice by log-likelihood, lm-evaluation-harness tasks.",
        epilog=_EVAL_EPILOG,
        formatter_class=fmt,
    )
    v.add_argument("model", help="model folder (an export, stock or per-layer) or hub id")
    v.add_argument(
        "--texts", type=Path, nargs="+", default=None, metavar="FILE", help="held-out texts (perplexity)"
    )
    v.add_argument("--text-column", default="text", metavar="NAME", help="text column of table files (text)")
    v.add_argument(
        "--tasks", type=Path, nargs="+", default=None, metavar="FILE", help="multiple-choice .jsonl files"
    )
    v.add_argument(
        "--lm-eval", type=_task_list, default=None, metavar="TASKS", help="lm-eval tasks, comma-separated"
    )
    v.add_argument("--out", type=Path, default=None, metavar="FILE", help="JSON result (default: print only)")
    v.add_argument("--overwrite", action="store_true", help="replace a FILE that is not an eval result")
    v.add_argument("--batch-size", type=positive_int, default=16, metavar="N", help="sequences per pass (16)")
    v.add_argument(
        "--max-length", type=positive_int, default=None, metavar="N", help="tokens per window (default: all)"
    )
    v.add_argument("--num-fewshot", type=non_negative_int, default=0, metavar="N", help="lm-eval shots (0)")
    v.add_argument("--limit", type=positive_int, default=None, metavar="N", help="lm-eval: N items per task")
    v.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    v.add_argument("--dtype", choices=DTYPES, default="auto", help="model dtype (default: auto)")
    common(v)
    v.set_defaults(func=_cmd_eval)
    return parser


def _main(argv: list[str]) -> int:
    from reprokit.progress import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("INFO" if args.verbose else "WARNING")
    args.func(args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `efficientllm` console script: exit 0, or 2 with one line for bad input."""
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
