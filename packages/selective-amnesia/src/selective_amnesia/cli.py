"""Command line: `selective-amnesia trace | unlearn | score`.

``trace`` finds where a model recalls facts (batched causal tracing, token-role tables, the layers to
train, figures); ``unlearn`` trains those layers to forget a forget set (`transformers.Trainer`, so it
runs under ``accelerate launch``); ``score`` gives the SemEval-2025 Task 4 numbers of a model. Every input
is checked before the first model loads (what needs the model, such as a layer index, right after it
loads and before any work); bad input is one line on stderr and exit status 2 (`reprokit.cli.run_cli`),
and nothing is written. Heavy libraries are imported inside the commands so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from argparse import SUPPRESS
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reprokit.cli import (
    DTYPES,
    add_debug_flag,
    check_output_path,
    device_arg,
    non_negative_int,
    positive_int,
    run_cli,
)
from reprokit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

PROG = "selective-amnesia"
#: Columns of a --facts row; ``id`` is optional.
FACT_COLUMNS: tuple[str, ...] = ("prompt", "subject", "answer")


# ------------------------------------------------------------------------------------ argparse types
def parse_layers(value: str) -> tuple[int, ...] | None:
    """argparse type of ``--layers``: ``"0,1,2"``, ``"0-5"``, a mix (``"0-2,7"``), or ``"all"`` (None)."""
    text = value.strip().lower()
    if text == "all":
        return None
    layers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        bounds = part.split("-")
        try:
            if len(bounds) == 1:
                layers.append(int(bounds[0]))
                continue
            if len(bounds) == 2:
                low, high = int(bounds[0]), int(bounds[1])
                if low > high:
                    raise argparse.ArgumentTypeError(
                        f"the range {part!r} runs backwards; write it low-high, e.g. {high}-{low}"
                    )
                layers.extend(range(low, high + 1))
                continue
        except ValueError:
            pass
        raise argparse.ArgumentTypeError(
            f"cannot read {part!r} in {value!r}; write layer indices from 0 as 0,1,2 or 0-5 "
            "(or a mix, 0-2,7), or all"
        )
    return tuple(layers)


def _probability(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}")
    return number


def _non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {value!r}")
    return number


def _kinds(value: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(k.strip() for k in value.split(",") if k.strip()))
    if not kinds:
        raise argparse.ArgumentTypeError("--kinds: name at least one of hidden, mlp, attn")
    return kinds


# --------------------------------------------------------------------------------------------- helpers
def _check_device(device: str) -> None:
    """Fail before any loading if the requested device is not available on this machine."""
    from reprokit.lm import resolve_device

    resolve_device(device)


def _load_lm(args: argparse.Namespace) -> Any:
    """The model handle via `reprokit.lm.load_lm`, which refuses what it cannot serve."""
    from reprokit.lm import load_lm

    return load_lm(args.model, device=args.device, dtype=args.dtype)


def _is_main_process() -> bool:
    """False on the non-zero ranks of an ``accelerate launch`` / ``torchrun`` run (they print nothing)."""
    return os.environ.get("RANK", "0") in ("", "0")


def load_sets(forget: Path, retain: Path | None, *, flags: tuple[str, str] = ("--forget", "--retain")) -> Any:
    """The forget and retain sets of two files, or of one file whose split column holds both, with
    messages that name the command-line flag of the file at fault."""
    from reprokit.datafiles import load_data_files
    from selective_amnesia.data import UnlearningData, load_rows

    forget_flag, retain_flag = flags
    if retain is None:
        dataset = load_data_files(forget, what=forget_flag)
        if "split" not in dataset.column_names:
            raise DataError(
                f"{forget_flag} {forget} has no split column, so it cannot hold both sets; pass "
                f"{retain_flag} FILE with the retain rows, or add a split column (forget or retain)."
            )
        rows = load_rows(dataset, what=forget_flag)
        sets = {s: tuple(r for r in rows if r.split == s) for s in ("forget", "retain")}
        for name, chosen in sets.items():
            if not chosen:
                fix = f"pass {retain_flag} FILE or add retain rows" if name == "retain" else "add forget rows"
                raise DataError(f"{forget_flag} {forget} holds no {name} rows in its split column; {fix}.")
        return UnlearningData(sets["forget"], sets["retain"])
    return UnlearningData(
        tuple(load_rows(forget, split="forget", what=forget_flag)),
        tuple(load_rows(retain, split="retain", what=retain_flag)),
    )


# ---------------------------------------------------------------------------------------------- trace
def read_facts(path: Path) -> list[Any]:
    """The facts of a jsonl file (``prompt, subject, answer`` and optional ``id`` per line), checked.

    Each subject must occur in its prompt; the answer is the text that continues the prompt (usually
    with a leading space, ``" Paris"``). A problem is a `DataError` naming the file and the line.
    """
    from reprokit.datafiles import read_jsonl
    from selective_amnesia.tracing import Fact

    facts = []
    warned = False
    for number, row in read_jsonl(path, what="--facts"):
        where = f"--facts {path} line {number}"
        absent = [c for c in FACT_COLUMNS if c not in row]
        if absent:
            raise DataError(
                f"{where} lacks {', '.join(absent)} (it has {', '.join(sorted(row)) or 'nothing'}); every "
                f"line needs {', '.join(FACT_COLUMNS)} (and optionally id)."
            )
        bad = [c for c in FACT_COLUMNS if not isinstance(row[c], str) or not row[c].strip()]
        if bad:
            raise DataError(f"{where}: {', '.join(bad)} must be non-empty text; fill it in.")
        prompt, subject, answer = row["prompt"], row["subject"], row["answer"]
        if subject not in prompt:
            raise DataError(
                f"{where}: the subject {subject!r} does not occur in the prompt {prompt!r}; write the "
                "subject exactly as the prompt spells it."
            )
        if not warned and not answer[:1].isspace() and not prompt[-1:].isspace():
            logger.warning(
                "%s: the answer %r has no leading space, so it is glued to the prompt's last word; the "
                "answer must be the prompt's continuation (usually ' %s').",
                where,
                answer,
                answer,
            )
            warned = True
        fact_id = row.get("id", "")
        facts.append(Fact(prompt, subject, answer, id="" if fact_id is None else str(fact_id)))
    return facts


def _facts_from_data(files: Sequence[Path], task: str) -> list[Any]:
    """Subject-first facts from the PII questions of task-format data files (`paper.subject_first_facts`)."""
    from reprokit.datafiles import load_data_files
    from selective_amnesia.data import load_rows
    from selective_amnesia.paper import subject_first_facts

    what = f"--data {' '.join(map(str, files))}"
    dataset = load_data_files([str(f) for f in files], what="--data")
    split = None if "split" in dataset.column_names else "forget"  # the split plays no part in tracing
    rows = load_rows(dataset, split=split, what=what)
    facts = subject_first_facts(rows, task=task)
    if not facts:
        raise DataError(
            f"{what} holds no {task} QA rows of the form 'What is the ATTRIBUTE of NAME?'; pass --facts, or "
            "--task naming the task of such rows."
        )
    return facts


def _check_facts_tokenize(lm: Any, facts: Sequence[Any]) -> None:
    """Each subject covers a token and each answer encodes to one, checked before any tracing."""
    from selective_amnesia.tracing import answer_token_id, subject_token_range

    for i, fact in enumerate(facts):
        try:
            subject_token_range(lm, fact.prompt, fact.subject)
            answer_token_id(lm, fact.prompt, fact.answer)
        except DataError as err:
            raise DataError(f"fact {i}{f' ({fact.id})' if fact.id else ''}: {err}") from None


def _cmd_trace(args: argparse.Namespace) -> None:
    import dataclasses

    from reprokit.results import atomic_directory, atomic_write_json, save_figure
    from selective_amnesia.figures import plot_role_effects, plot_trace
    from selective_amnesia.layout import KINDS, find_layout
    from selective_amnesia.roles import ROLES, propose_layers, role_effects
    from selective_amnesia.tracing import TracingConfig, trace_facts

    out = check_output_path(args.out, folder=True)
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown:
        raise ConfigError(
            f"--kinds: unknown module kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}."
        )
    if args.role is not None and args.role not in ROLES:
        raise ConfigError(f"--role: unknown token role {args.role!r}; choose from {', '.join(ROLES)}.")
    config = TracingConfig(
        samples=args.samples,
        noise_scale=args.noise_scale,
        window=args.window,
        seed=args.seed,
        batch_size=args.batch_size,
        min_clean_prob=args.min_clean_prob,
        require_argmax=not args.keep_unknown,
    )
    facts = read_facts(args.facts) if args.facts is not None else _facts_from_data(args.data, args.task)
    if args.max_facts is not None:
        facts = facts[: args.max_facts]
    _check_device(args.device)
    lm = _load_lm(args)
    layout = find_layout(lm.model)
    n_layers = layout.num_layers
    if args.top_k is not None and args.top_k > n_layers:
        raise ConfigError(
            f"--top-k {args.top_k} is more than the model's {n_layers} layers; pass at most {n_layers}."
        )
    top_k = args.top_k if args.top_k is not None else min(6, n_layers)
    _check_facts_tokenize(lm, facts)

    run = trace_facts(lm, facts, config, kinds=args.kinds)
    if not run.results:
        first = run.skipped[0]
        raise DataError(
            f"the model knows none of the {len(facts)} facts, so there is nothing to trace (e.g. "
            f"{first.fact.prompt!r}: {first.reason}); check that each answer continues its prompt (usually "
            "with a leading space), or pass --keep-unknown to trace them anyway."
        )
    tables = {kind: role_effects(run.results, kind) for kind in args.kinds}
    propose_kind = "mlp" if "mlp" in args.kinds else args.kinds[0]
    layers = propose_layers(run.results, propose_kind, top_k, role=args.role)

    index = {id(f): i for i, f in enumerate(facts)}
    traced = list(dict.fromkeys(index[id(r.fact)] for r in run.results))
    shown = set(traced[: args.figures])
    figure_names = ["aggregate.png"]
    with atomic_directory(out / "figures", replace=True) as folder:
        save_figure(plot_role_effects(tables), folder / "aggregate.png")
        for result in run.results:
            i = index[id(result.fact)]
            if i in shown:
                name = f"fact-{i}-{result.kind}.png"
                save_figure(plot_trace(result), folder / name)
                figure_names.append(name)
    payload = {
        "model": str(args.model),
        "num_layers": n_layers,
        "kinds": list(args.kinds),
        "facts": [{"index": i, **dataclasses.asdict(f)} for i, f in enumerate(facts)],
        **run.to_dict(),
        "role_effects": {
            kind: {
                "roles": list(table.index),
                "layers": [int(c) for c in table.columns],
                "effects": table.to_numpy(dtype=float).tolist(),
                "n_facts": dict(table.attrs["n_facts"]),
            }
            for kind, table in tables.items()
        },
        "proposed_layers": {"kind": propose_kind, "k": top_k, "role": args.role, "layers": list(layers)},
        "figures": [f"figures/{name}" for name in figure_names],
    }
    atomic_write_json(out / "trace.json", payload)
    print(
        f"traced {len(traced)} of {len(facts)} facts ({len(run.skipped)} skipped as not "
        f"known), {n_layers} layers, kinds {', '.join(args.kinds)}, noise std {run.noise_std:.4g}"
    )
    print(f"proposed {propose_kind} layers (largest effect first): {', '.join(map(str, layers))}")
    print(f"wrote {out / 'trace.json'} and {len(figure_names)} figures in {out / 'figures'}")


# -------------------------------------------------------------------------------------------- unlearn
#: UnlearnConfig fields that have a flag of the same name (``--module-kind`` sets ``module_kind``).
_UNLEARN_FLAGS: tuple[str, ...] = (
    "method",
    "layers",
    "module_kind",
    "param_pattern",
    "epochs",
    "lr",
    "batch_size",
    "grad_accum",
    "alpha_min",
    "alpha_max",
    "alpha_reference",
    "retain_weight",
    "max_length",
    "eval_steps",
    "seed",
)


def unlearn_config(args: argparse.Namespace) -> Any:
    """The `UnlearnConfig` of a command line: ``--config`` TOML values, overridden by the flags given.

    The TOML file holds `UnlearnConfig` keys at its top level, or in an ``[unlearn]`` table.
    """
    from reprokit.cli import load_toml_config
    from reprokit.config import config_from_mapping
    from selective_amnesia.unlearning import UnlearnConfig

    mapping: dict[str, Any] = {}
    path = ""
    if args.config is not None:
        data = load_toml_config(args.config)
        if isinstance(data.get("unlearn"), dict) and len(data) == 1:
            data, path = data["unlearn"], "unlearn"
        mapping.update(data)
    for name in _UNLEARN_FLAGS:
        if hasattr(args, name):  # the flags default to argparse.SUPPRESS: present only when given
            value = getattr(args, name)
            mapping[name] = list(value) if isinstance(value, tuple) else value
    if args.no_chat_template:
        mapping["chat_template"] = False
    if args.bf16:
        mapping["bf16"] = True
    if args.verbose:
        mapping["show_progress"] = True
    try:
        return config_from_mapping(UnlearnConfig, mapping, path=path)
    except ConfigError as err:
        if args.config is None:
            raise
        raise ConfigError(f"--config {args.config} with the flags: {err}") from None


def _check_unlearn_model(lm: Any, config: Any) -> None:
    """The chat template and the layer range, in the command line's words (`unlearn` checks the rest of
    its input, the parameters and every row's encoding, before it creates the output folder)."""
    from selective_amnesia.layout import find_layout

    if config.chat_template and not lm.chat_template:
        raise ConfigError(
            f"{lm.name}'s tokenizer has no chat template, which the inputs are formatted with; pass "
            "--no-chat-template to train on the raw inputs, or give the tokenizer a template."
        )
    if config.param_pattern is None and config.layers is not None:
        n_layers = find_layout(lm.model).num_layers
        outside = [i for i in config.layers if i >= n_layers]
        if outside:
            raise ConfigError(
                f"layers: layer {outside[0]} is out of range: {lm.name} has {n_layers} layers "
                f"(0..{n_layers - 1}); pass --layers (or the config's layers) in that range, e.g. "
                f"--layers 0-{min(5, n_layers - 1)}."
            )


def _cmd_unlearn(args: argparse.Namespace) -> None:
    out = check_output_path(args.out, folder=True)
    if args.eval_retain is not None and args.eval_forget is None:
        raise ConfigError(
            "--eval-retain needs --eval-forget (or pass --eval-forget alone with a file whose split column "
            "holds both sets)."
        )
    config = unlearn_config(args)
    data = load_sets(args.forget, args.retain)
    eval_data = (
        None
        if args.eval_forget is None
        else load_sets(args.eval_forget, args.eval_retain, flags=("--eval-forget", "--eval-retain"))
    )
    _check_device(args.device)
    lm = _load_lm(args)
    _check_unlearn_model(lm, config)

    from selective_amnesia.unlearning import unlearn

    result = unlearn(lm, data, config, output_dir=out, eval_data=eval_data)
    if not _is_main_process():
        return
    share = result.trainable
    where = "every layer" if config.layers is None else f"layers {', '.join(map(str, config.layers))}"
    chosen = (
        f"parameters matching {config.param_pattern!r}"
        if config.param_pattern
        else (f"{config.module_kind} of {where}")
    )
    best = "n/a" if result.best_eval_loss is None else f"{result.best_eval_loss:.4f}"
    print(
        f"{config.method} unlearning of {len(data.forget)} forget rows (retain {len(data.retain)}): "
        f"trained {chosen}, {share.trainable:,} of {share.total:,} parameters ({share.share:.2%})"
    )
    print(
        f"{result.steps} optimizer steps in {result.wall_time_s:.1f} s; kept step {result.best_step} "
        f"(eval loss {best})"
        + (f"; training diverged at step {result.diverged_at_step}" if result.diverged_at_step else "")
    )
    print(f"wrote {result.checkpoint} and {out / 'unlearn.json'}")


# ---------------------------------------------------------------------------------------------- score
def _mmlu_from_file(path: Path, dev: Path | None, shots: int) -> tuple[list[Any], list[Any]]:
    """MMLU questions and few-shot examples from local files with the cais/mmlu columns.

    With `dev` the shots come from it; otherwise the first `shots` rows of each subject in `path` are
    the shots and are not scored (as MMLU's dev split holds 5 per subject).
    """
    from reprokit.datafiles import load_data_files
    from selective_amnesia.scoring import mmlu_from_dataset

    def read(file: Path, what: str) -> list[Any]:
        try:
            return mmlu_from_dataset(load_data_files(file, what=what))
        except DataError as err:
            text = str(err)
            raise DataError(text if text.startswith(what) else f"{what} {file}: {text}") from None

    questions = read(path, "--mmlu-file")
    if dev is not None:
        return questions, read(dev, "--mmlu-dev-file")
    if shots == 0:
        return questions, []
    taken: dict[str, int] = {}
    held, scored = [], []
    for q in questions:
        if taken.get(q.subject, 0) < shots:
            taken[q.subject] = taken.get(q.subject, 0) + 1
            held.append(q)
        else:
            scored.append(q)
    if not scored:
        raise DataError(
            f"--mmlu-file {path}: all {len(questions)} rows are taken as few-shot examples (the first "
            f"{shots} of each subject), so none is left to score; add rows, pass --mmlu-dev-file, or "
            "--mmlu-shots 0."
        )
    return scored, held


def _documents(path: Path, field: str, flag: str) -> list[str]:
    """The MIA documents of one file; a missing text column names --document-field."""
    from selective_amnesia.data import load_documents

    try:
        return load_documents(path, field=field, what=f"{flag} {path}")
    except DataError as err:
        text = str(err).replace("Pass field= naming", "Pass --document-field naming")
        raise DataError(text) from None


def _fmt(value: float) -> str:
    return "not computed" if math.isnan(value) else f"{value:.4f}"


def _cmd_score(args: argparse.Namespace) -> None:
    from reprokit.results import atomic_write_json, atomic_write_text
    from selective_amnesia.scoring import ScoreConfig, load_mmlu, score_model

    out = check_output_path(args.out)
    rows_path = out.with_name(f"{out.stem}.rows.csv")
    if (args.members is None) != (args.nonmembers is None):
        raise ConfigError("pass both --members and --nonmembers for the MIA score, or neither.")
    if args.mmlu_dev_file is not None and args.mmlu_file is None:
        raise ConfigError("--mmlu-dev-file needs --mmlu-file (the questions it gives shots for).")
    config = ScoreConfig(
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        mia_batch_size=args.mia_batch_size,
        mmlu_batch_size=args.mmlu_batch_size,
        mmlu_shots=args.mmlu_shots,
        show_progress=args.verbose,
    )
    data = load_sets(args.forget, args.retain)
    members = nonmembers = None
    if args.members is not None:
        members = _documents(args.members, args.document_field, "--members")
        nonmembers = _documents(args.nonmembers, args.document_field, "--nonmembers")
    questions = shots = None
    if args.mmlu:
        questions, shots = load_mmlu()
    elif args.mmlu_file is not None:
        questions, shots = _mmlu_from_file(args.mmlu_file, args.mmlu_dev_file, args.mmlu_shots)
    _check_device(args.device)
    lm = _load_lm(args)
    score = score_model(
        lm,
        data,
        members=members,
        nonmembers=nonmembers,
        mmlu_questions=questions,
        mmlu_shots=shots,
        config=config,
    )
    atomic_write_text(rows_path, score.task.per_row.to_csv(index=False))
    atomic_write_json(out, {"model": str(args.model), "config": _asdict(config), **score.to_dict()})
    task = score.task
    print(
        f"final {_fmt(score.final)}   task aggregate {_fmt(score.task_aggregate)}   MIA {_fmt(score.mia)}   "
        f"MMLU {_fmt(score.mmlu)}"
    )
    print(f"forget mean {_fmt(task.forget_mean)} (lower is better)   retain mean {_fmt(task.retain_mean)}")
    if score.mia_result is not None:
        print(f"MIA AUC {score.mia_result.auc:.4f} (0.5 is the goal)")
    if score.mmlu_result is None:
        print("7B award gate (MMLU > 0.371): not checked, no MMLU (pass --mmlu or --mmlu-file)")
    else:
        verdict = "passed" if score.passes_gate else "failed"
        print(f"7B award gate (MMLU > {config.mmlu_gate}): {verdict}")
    print(f"wrote {out} and {rows_path}")


def _asdict(config: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(config)


# ---------------------------------------------------------------------------------------------- parser
_UNLEARN_EPILOG = """\
On several GPUs: training runs on transformers.Trainer, so launch the same command
with accelerate, which spreads it over the GPUs (data parallel):
  accelerate launch -m selective_amnesia unlearn MODEL --forget F --retain R --out DIR
Writes DIR/best/ (the kept model: safetensors and tokenizer) and DIR/unlearn.json (the
result and the config). Flags override --config values, which override the defaults
(the released code's, with the paper's alpha_max 2.8). --config is a TOML file of
UnlearnConfig keys, at its top level or in an [unlearn] table.
"""

_TRACE_EPILOG = """\
Writes DIR/trace.json (each traced fact's grids, the skipped facts, the mean indirect
effect per token role and layer of each kind, and the proposed layers) and DIR/figures/
(aggregate.png, and fact-<i>-<kind>.png for the first --figures traced facts; the folder
is replaced as a whole). Layers are proposed from the MLP effects (or the first of
--kinds when mlp is not traced).
"""

_SCORE_EPILOG = """\
Writes FILE (the scores as JSON) and, next to it, <stem>.rows.csv (every row's
generation and score). --mmlu-file is a .parquet/.jsonl/.json file with the cais/mmlu
columns question, subject, choices (a list) and answer (an index); without
--mmlu-dev-file the first --mmlu-shots rows of each subject are the few-shot examples
and are not scored. MIA files are .parquet/.jsonl/.json with a text column
(--document-field).
"""


def build_parser() -> argparse.ArgumentParser:
    """The `selective-amnesia` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Find where a language model stores facts (causal tracing), unlearn them there, and "
        "score the result as SemEval-2025 Task 4 does.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("model", help="model: local folder or hub id (safetensors, decoder-only)")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, cuda, cuda:N or mps")
        p.add_argument("--dtype", choices=DTYPES, default="auto", help="model dtype (default: auto)")
        p.add_argument("-v", "--verbose", action="store_true", help="log progress")
        add_debug_flag(p)

    fmt = argparse.RawDescriptionHelpFormatter

    # ------------------------------------------------------------------------------------ trace
    t = sub.add_parser(
        "trace",
        help="causal tracing: where along (token, layer) the model recalls facts",
        description="ROME-style causal tracing of facts, batched: per-fact grids, mean effects by\n"
        "token role, and the layers with the largest MLP effect (the layers to unlearn in).",
        epilog=_TRACE_EPILOG,
        formatter_class=fmt,
    )
    model_args(t)
    source = t.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--facts",
        type=Path,
        help="jsonl: prompt, subject, answer (the prompt's continuation, e.g. ' Paris') and optional id",
    )
    source.add_argument(
        "--data",
        type=Path,
        nargs="+",
        help="task-format .parquet/.jsonl files; facts are their --task QA rows 'What is the X of NAME?', "
        "asked subject first",
    )
    t.add_argument(
        "--task", default="Task2", help="task label of the rows --data takes facts from (default Task2)"
    )
    t.add_argument("--out", type=Path, required=True, help="output folder")
    t.add_argument("--samples", type=positive_int, default=10, help="noise samples per fact (default 10)")
    t.add_argument(
        "--window", type=positive_int, default=10, help="MLP/attention layers restored together (default 10)"
    )
    t.add_argument(
        "--noise-scale",
        type=_non_negative_float,
        default=3.0,
        help="noise std in subject-embedding stds (default 3)",
    )
    t.add_argument("--seed", type=non_negative_int, default=1, help="noise seed (default 1)")
    t.add_argument(
        "--kinds",
        type=_kinds,
        default=("hidden", "mlp", "attn"),
        help="comma list of hidden, mlp, attn (default all three)",
    )
    t.add_argument(
        "--batch-size",
        type=positive_int,
        default=256,
        help="rows (settings x samples) per forward pass (default 256)",
    )
    t.add_argument("--max-facts", type=positive_int, default=None, help="trace only the first N facts")
    t.add_argument(
        "--keep-unknown",
        action="store_true",
        help="also trace facts whose answer is not the model's next token (skipped by default, as ROME)",
    )
    t.add_argument(
        "--min-clean-prob",
        type=_probability,
        default=0.0,
        help="skip facts with a lower clean p(answer) (default 0)",
    )
    t.add_argument(
        "--top-k",
        type=positive_int,
        default=None,
        help="layers to propose (default 6, or the model's layer count if smaller)",
    )
    t.add_argument(
        "--role",
        default=None,
        help="rank layers by their effect at this token role (e.g. subject_last); default: the best role",
    )
    t.add_argument(
        "--figures",
        type=non_negative_int,
        default=3,
        help="per-fact heatmaps of the first N traced facts (default 3)",
    )
    common(t)
    t.set_defaults(func=_cmd_trace)

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--forget", type=Path, required=True, help="forget rows (.parquet/.jsonl/.json)")
        p.add_argument(
            "--retain",
            type=Path,
            default=None,
            help="retain rows (default: --forget's split column holds both)",
        )

    # ---------------------------------------------------------------------------------- unlearn
    u = sub.add_parser(
        "unlearn",
        help="unlearn a forget set in chosen layers, keeping a retain set",
        description="Train only the chosen parameters to forget the forget rows while keeping the\n"
        "retain rows; the weights with the lowest evaluation loss are kept.",
        epilog=_UNLEARN_EPILOG,
        formatter_class=fmt,
    )
    model_args(u)
    data_args(u)
    u.add_argument("--out", type=Path, required=True, help="output folder")
    u.add_argument("--config", type=Path, default=None, help="TOML file of UnlearnConfig keys")
    u.add_argument(
        "--method",
        default=SUPPRESS,
        help="constrained (default), gradient_ascent, gradient_difference, kl, npo",
    )
    u.add_argument(
        "--layers",
        type=parse_layers,
        default=SUPPRESS,
        help="layers to train: 0,1,2 or 0-5 or all (default 0-5)",
    )
    u.add_argument("--module-kind", default=SUPPRESS, help="mlp (default), attn or all (the whole layer)")
    u.add_argument(
        "--param-pattern", default=SUPPRESS, help="regex of parameter names to train (replaces --layers)"
    )
    u.add_argument("--epochs", type=float, default=SUPPRESS, help="training epochs (default 8)")
    u.add_argument("--lr", type=float, default=SUPPRESS, help="learning rate (default 1.5e-5)")
    u.add_argument(
        "--batch-size", type=positive_int, default=SUPPRESS, help="rows per device batch (default 12)"
    )
    u.add_argument(
        "--grad-accum", type=positive_int, default=SUPPRESS, help="gradient accumulation (default 10)"
    )
    u.add_argument(
        "--alpha-min", type=float, default=SUPPRESS, help="lower bound of the adaptive alpha (1.2)"
    )
    u.add_argument(
        "--alpha-max", type=float, default=SUPPRESS, help="upper bound of the adaptive alpha (2.8)"
    )
    u.add_argument(
        "--alpha-reference", default=SUPPRESS, help="mean (default) or per_example (released code)"
    )
    u.add_argument("--retain-weight", type=float, default=SUPPRESS, help="retain weight of the baselines (1)")
    u.add_argument("--max-length", type=positive_int, default=SUPPRESS, help="tokens per row (default 512)")
    u.add_argument(
        "--eval-steps", type=positive_int, default=SUPPRESS, help="optimizer steps between evaluations (4)"
    )
    u.add_argument(
        "--no-chat-template", action="store_true", help="train on the raw input, not the chat template"
    )
    u.add_argument("--bf16", action="store_true", help="bf16 autocast")
    u.add_argument(
        "--eval-forget",
        type=Path,
        default=None,
        help="evaluation forget rows for model selection (default: a sample of the training rows)",
    )
    u.add_argument("--eval-retain", type=Path, default=None, help="evaluation retain rows")
    u.add_argument("--seed", type=non_negative_int, default=SUPPRESS, help="seed (default 0)")
    common(u)
    u.set_defaults(func=_cmd_unlearn)

    # ------------------------------------------------------------------------------------ score
    s = sub.add_parser(
        "score",
        help="SemEval-2025 Task 4 scores: task aggregate, MIA, MMLU and the final score",
        description="Score a model as the official evaluate_generations.py does (batched).",
        epilog=_SCORE_EPILOG,
        formatter_class=fmt,
    )
    model_args(s)
    data_args(s)
    s.add_argument("--out", type=Path, required=True, help="JSON output file")
    s.add_argument("--members", type=Path, default=None, help="MIA member documents")
    s.add_argument("--nonmembers", type=Path, default=None, help="MIA non-member documents")
    s.add_argument("--document-field", default="document", help="text column of the MIA files (document)")
    mmlu = s.add_mutually_exclusive_group()
    mmlu.add_argument("--mmlu", action="store_true", help="MMLU from the hub (cais/mmlu test, dev shots)")
    mmlu.add_argument("--mmlu-file", type=Path, default=None, help="MMLU questions from a local file")
    s.add_argument("--mmlu-dev-file", type=Path, default=None, help="few-shot examples for --mmlu-file")
    s.add_argument("--mmlu-shots", type=non_negative_int, default=5, help="MMLU shots (default 5)")
    s.add_argument("--max-new-tokens", type=positive_int, default=256, help="generation length (256)")
    s.add_argument("--batch-size", type=positive_int, default=16, help="generation batch (default 16)")
    s.add_argument("--mia-batch-size", type=positive_int, default=8, help="MIA documents per pass (8)")
    s.add_argument("--mmlu-batch-size", type=positive_int, default=8, help="MMLU prompts per pass (8)")
    common(s)
    s.set_defaults(func=_cmd_score)
    return parser


def _main(argv: list[str]) -> int:
    from reprokit.progress import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("INFO" if args.verbose else "WARNING")
    args.func(args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `selective-amnesia` console script: exit 0, or 2 with one line for bad input."""
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
