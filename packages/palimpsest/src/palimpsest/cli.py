"""Command line: `palimpsest query | reshuffle | ngram`, each printing its result and writing JSON.

Every input is checked before the first model loads and the output path before any work; bad input is
one line on stderr and exit status 2 (`reprokit.cli.run_cli`), and nothing is written. Heavy libraries
(torch, transformers, datasets) are imported inside the commands so that ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import logging
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
from reprokit.datafiles import read_jsonl, read_text_lines
from reprokit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

_TEXT_SUFFIXES = (".txt", "")


# ----------------------------------------------------------------------------------------------- inputs
def _token_list(value: Any, where: str) -> list[int]:
    """A non-empty list of non-negative int token ids, else a DataError naming `where`."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: 'tokens' must be a non-empty list of token ids, got {value!r:.60}.")
    for t in value:
        if isinstance(t, bool) or not isinstance(t, int):
            raise DataError(f"{where}: token ids must be integers, got {t!r}.")
        if t < 0:
            raise DataError(f"{where}: negative token id {t}; token ids are >= 0.")
    return value


def _read_texts(path: Path) -> tuple[list[Any], list[Any] | None]:
    """Suspect texts from jsonl (`text` or `tokens`, optional `prompt`) or plain text (one per line).

    With `tokens`, `prompt` is the prompt length in tokens; with `text`, the prompt string.
    """
    suffix = path.suffix.lower()
    if suffix != ".jsonl" and suffix not in _TEXT_SUFFIXES:
        raise DataError(
            f"--texts {path}: unknown format {path.suffix!r}; pass a .jsonl file (one JSON object per line "
            "with 'text' or 'tokens') or a .txt file (one text per line)."
        )
    if suffix != ".jsonl":
        return [ln for _, ln in read_text_lines(path, what="--texts")], None
    numbered = read_jsonl(path, what="--texts")
    rows = [row for _, row in numbered]
    key = "tokens" if "tokens" in rows[0] else "text"
    with_prompt = "prompt" in rows[0]
    texts: list[Any] = []
    prompts: list[Any] = []
    for number, row in numbered:
        where = f"--texts {path} line {number}"
        if key not in row:
            raise DataError(f"{where}: no {key!r} field (fields: {sorted(row)}); give every row {key!r}.")
        if ("prompt" in row) != with_prompt:
            raise DataError(f"{where}: give a 'prompt' in every row or in none.")
        if key == "tokens":
            tokens = _token_list(row["tokens"], where)
            prompt = row.get("prompt", 0)
            if isinstance(prompt, bool) or not isinstance(prompt, int) or not 0 <= prompt < len(tokens) - 1:
                raise DataError(
                    f"{where}: 'prompt' must be the prompt length in tokens, an int in "
                    f"[0, {len(tokens) - 1}), got {prompt!r}."
                )
            texts.append(tokens)
            prompts.append(prompt)
        else:
            text = row["text"]
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where}: 'text' must be a non-empty string, got {text!r:.60}.")
            prompt = row.get("prompt", "")
            if not isinstance(prompt, str):
                raise DataError(f"{where}: 'prompt' must be a string, got {prompt!r:.60}.")
            texts.append(text)
            prompts.append(prompt)
    return texts, prompts if with_prompt else None


def _check_vocab(sequences: Sequence[Sequence[int]], vocab: int, what: str, fix: str) -> None:
    """DataError if a token id is outside the tokenizer's vocabulary (ids 0..vocab-1)."""
    from reprokit.lm import check_token_range

    check_token_range(sequences, vocab, f"{what}: sequence", fix)


def _check_device(device: str) -> None:
    """Fail before any loading if the requested device is not available on this machine."""
    from reprokit.lm import resolve_device

    resolve_device(device)


def _load_lm(name: str | Path, args: argparse.Namespace, revision: str | None = None) -> Any:
    """A causal LM handle via `reprokit.lm.load_lm`, which refuses what it cannot serve."""
    from reprokit.lm import load_lm

    return load_lm(name, revision=revision, device=args.device, dtype=args.dtype)


def _load_transcript(args: argparse.Namespace, **columns: Any) -> Any:
    from palimpsest.transcript import Transcript

    return Transcript.load(
        args.transcript,
        subset=args.subset,
        split=args.split,
        position_column=args.position_column,
        block_column=args.block_column,
        step_column=args.step_column,
        **columns,
    )


def _out_path(args: argparse.Namespace, name: str) -> Path:
    """The JSON output path, checked before any work (nothing is written on a bad path)."""
    return check_output_path(args.out if args.out is not None else Path(f"palimpsest-{name}.json"))


def _emit(path: Path, result: dict[str, Any], lines: Sequence[str]) -> None:
    from reprokit.results import atomic_write_json

    for line in lines:
        print(line)
    atomic_write_json(path, result)
    print(f"wrote {path}")


# --------------------------------------------------------------------------------------------- commands
def _query_paths(args: argparse.Namespace, out: Path) -> tuple[Path, Path | None]:
    """The plot beside the JSON (`<out>.png`) and, when models are scored, the work folder of the saved
    score chunks (`--work-dir`, default `<out>.scores`); both checked before any work."""
    png = out.with_suffix(".png") if out.suffix.lower() != ".png" else out.with_name(out.name + ".png")
    plot = check_output_path(png)
    if args.loss_column:
        if args.work_dir is not None or args.chunk_size is not None:
            raise ConfigError(
                "--work-dir and --chunk-size are for scoring models; --loss-column scores none."
            )
        return plot, None
    work = args.work_dir if args.work_dir is not None else out.with_name(f"{out.stem}.scores")
    return plot, check_output_path(work, option="--work-dir", folder=True)


def _query_processes(device: str) -> tuple[str, int, bool]:
    """This process's device, the number of processes and whether this one is the main one: under
    `accelerate launch` with several processes, `auto` and `cuda` mean this process's own GPU."""
    from palimpsest.scoring import process_state
    from reprokit.lm import resolve_device

    state = process_state(cpu=resolve_device(device).type == "cpu")
    if state.num_processes > 1 and device in ("auto", "cuda"):
        device = str(state.device)
    return device, state.num_processes, state.is_main_process


def _cmd_query(args: argparse.Namespace) -> None:
    from palimpsest.query import QueryConfig, plot_query, query_test, query_test_from_losses
    from reprokit.stats import log10_p_to_str

    if args.suspect and args.loss_column:
        raise ConfigError("pass either --suspect (score a model) or --loss-column (precomputed), not both.")
    if not args.suspect and not args.loss_column:
        raise ConfigError("pass --suspect PATH_OR_ID (or --loss-column for precomputed losses).")
    if args.reference_loss_column and not args.loss_column:
        raise ConfigError("--reference-loss-column needs --loss-column (the suspect's precomputed losses).")
    if args.loss_column and args.reference:
        raise ConfigError("--reference scores a model; with --loss-column use --reference-loss-column.")
    out = _out_path(args, "query")
    plot, work = _query_paths(args, out)
    scoring: dict[str, Any] = {}
    main_process = True
    if args.loss_column:
        columns = [c for c in (args.loss_column, args.reference_loss_column) if c]
        transcript = _load_transcript(args, loss_columns=columns)
        sample = transcript.sample(args.n, seed=args.seed)
        result = query_test_from_losses(
            sample.positions,
            sample.losses[args.loss_column],
            sample.losses[args.reference_loss_column] if args.reference_loss_column else None,
            blocks=sample.blocks,
            n_permutations=args.permutations,
            seed=args.seed,
            reference=args.reference_loss_column,
        )
        suspect_name = args.loss_column
    else:
        from palimpsest.scoring import Sharding
        from reprokit.lm import load_tokenizer

        config = QueryConfig(
            n=args.n,
            prefix_tokens=args.prefix_tokens,
            n_permutations=args.permutations,
            batch_size=args.batch_size,
            retokenize=args.retokenize,
            seed=args.seed,
        )
        _check_device(args.device)
        transcript = _load_transcript(args)
        n = len(transcript.sample(config.n, seed=config.seed))  # a bad --n fails here, before any model loads
        if transcript.token_ids is not None and args.transcript_tokenizer:
            import dataclasses

            tok = load_tokenizer(args.transcript_tokenizer)
            _check_vocab(
                transcript.token_ids,
                len(tok),
                f"--transcript {args.transcript}",
                "pass the tokenizer that produced the transcript as --transcript-tokenizer.",
            )
            transcript = dataclasses.replace(transcript, tokenizer=tok)
        args.device, world, main_process = _query_processes(args.device)
        suspect = _load_lm(args.suspect, args, args.revision)
        reference = _load_lm(args.reference, args, args.reference_revision) if args.reference else None
        sharding = Sharding(work_dir=work, chunk_size=args.chunk_size or 1024)
        if main_process:
            models = "the suspect and the reference" if reference is not None else "the suspect"
            print(
                f"scoring {n} examples with {models} on {world} process{'es' if world > 1 else ''}; "
                f"finished chunks of {sharding.chunk_size} are saved in {work} (a rerun resumes)",
                flush=True,
            )
        result = query_test(
            transcript,
            suspect,
            reference,
            config,
            reference_name=args.reference,
            show_progress=True,
            sharding=sharding,
        )
        suspect_name = args.suspect
        scoring = {"work_dir": str(work), "processes": world, "chunk_size": sharding.chunk_size}
    if not main_process:
        return  # the other processes of an `accelerate launch` only score their shards
    payload = {
        "test": "query",
        "suspect": suspect_name,
        "transcript": str(args.transcript),
        **result.to_dict(),
        "plot": str(plot),
        **scoring,
    }
    _emit(
        out,
        payload,
        [
            f"suspect {suspect_name}  reference {result.reference or 'none'}  n={result.n}",
            f"spearman rho = {result.statistic:+.4f}   one-sided p = {log10_p_to_str(result.log10_pvalue)}"
            + (f"   permutation p = {result.permutation_pvalue:.4g}" if result.permutation_pvalue else ""),
        ],
    )
    plot_query(result, plot, title=f"query test: {suspect_name} vs {result.reference or 'no reference'}")
    print(f"wrote {plot}")


def _cmd_reshuffle(args: argparse.Namespace) -> None:
    from palimpsest.reshuffle import reshuffle_test
    from reprokit.stats import log10_p_to_str

    if args.original in args.reshuffled:
        raise ConfigError(
            f"--reshuffled lists --original {args.original}; pass K models retrained in other orders."
        )
    out = _out_path(args, "reshuffle")
    texts, prompts = _read_texts(args.texts)
    _check_device(args.device)
    original = _load_lm(args.original, args)
    if not isinstance(texts[0], str):
        _check_vocab(
            texts,
            len(original.tokenizer),
            f"--texts {args.texts}",
            "write the texts with the --original model's tokenizer, or as 'text'.",
        )
    copies = [_load_lm(p, args) for p in args.reshuffled]
    result = reshuffle_test(original, copies, texts, prompts=prompts, batch_size=args.batch_size)
    payload = {"test": "reshuffle", "original": str(args.original), **result.to_dict()}
    _emit(
        out,
        payload,
        [
            f"K={result.k} reshuffled copies, {result.n_texts} texts, {result.n_tokens} tokens",
            f"exact rank p = {result.rank_pvalue:.4g}",
            f"t-corrected p = {log10_p_to_str(result.log10_t_pvalue)}",
            f"Gaussian approximation p (paper, anti-conservative for small K) = "
            f"{log10_p_to_str(result.log10_normal_pvalue)}",
        ],
    )


def _cmd_ngram(args: argparse.Namespace) -> None:
    from palimpsest.ngram import NGramIndex, ngram_test
    from reprokit.lm import load_tokenizer

    out = _out_path(args, "ngram")
    texts, _ = _read_texts(args.texts)
    if isinstance(texts[0], str) and not args.tokenizer:
        raise ConfigError(
            "the suspect texts are strings; pass --tokenizer PATH_OR_ID of the transcript's tokens "
            "(or write the texts as 'tokens' in a .jsonl file)."
        )
    if args.min_length > args.max_n:
        raise ConfigError(
            f"--min-length {args.min_length} is longer than --max-n {args.max_n}; "
            "pass --min-length <= --max-n."
        )
    tok = load_tokenizer(args.tokenizer) if args.tokenizer else None
    # steps: --step-column (an error if absent), else a 'step' column when present, else the position
    transcript = _load_transcript(args, loss_columns=(), default_step_column="step")
    step_source = args.step_column or ("step" if transcript.steps is not None else None)
    if transcript.token_ids is None:
        raise DataError(
            f"--transcript {args.transcript} has no 'tokens' column; the n-gram test needs token ids."
        )
    if tok is not None:
        fix = "pass the tokenizer that produced the transcript as --tokenizer."
        _check_vocab(transcript.token_ids, len(tok), f"--transcript {args.transcript}", fix)
        if isinstance(texts[0], str):
            texts = [tok(t, add_special_tokens=False).input_ids for t in texts]
        else:
            _check_vocab(texts, len(tok), f"--texts {args.texts}", fix)
    index = NGramIndex(
        transcript.token_ids, transcript.step_of_example, max_n=args.max_n, blocks=transcript.blocks
    )
    result = ngram_test(
        index,
        texts,
        n_permutations=args.permutations,
        min_length=args.min_length,
        skip_tail=not args.keep_tail,
        max_occurrences=args.max_occurrences,
        empty_steps=args.empty_steps,
        blocks=transcript.blocks,
        seed=args.seed,
    )
    steps_from = f"column {step_source!r}" if step_source else f"position column {args.position_column!r}"
    payload = {
        "test": "ngram",
        "transcript": str(args.transcript),
        "steps_from": steps_from,
        **result.to_dict(),
    }
    _emit(
        out,
        payload,
        [
            f"{len(transcript)} documents; training steps from {steps_from}: {result.n_steps} steps "
            f"({'every step from first to last' if args.empty_steps == 'keep' else 'steps with documents'})",
            f"{result.n_tokens} suspect tokens, {result.n_positions} positions queried "
            f"(spans of {result.min_length}..{result.max_n} tokens), {result.n_matches} matches",
            f"spearman rho = {result.statistic:+.4f}   permutation p = {result.pvalue:.4g} "
            f"({result.n_permutations} permutations)",
        ],
    )


# ---------------------------------------------------------------------------------------------- parser
def _at_least_three(value: str) -> int:
    number = positive_int(value)
    if number < 3:
        raise argparse.ArgumentTypeError(
            f"n must be at least 3 (a rank test needs 3 examples), got {value!r}"
        )
    return number


_QUERY_EPILOG = """\
Scoring runs in chunks that are saved in --work-dir as they finish, so an interrupted run resumes where it
stopped. On several GPUs, launch it with accelerate: each process scores a contiguous shard, and the main
process merges them in order and writes the results:
  accelerate launch -m palimpsest query --suspect S --reference R --transcript T --out result.json
"""


def build_parser() -> argparse.ArgumentParser:
    """The `palimpsest` argument parser."""
    parser = argparse.ArgumentParser(
        prog="palimpsest",
        description="Exact provenance tests: does a model or text derive from a training run?",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, *, models: bool = True) -> None:
        p.add_argument(
            "--out", type=Path, default=None, help="JSON output (default: palimpsest-<command>.json)"
        )
        if models:
            p.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, cuda, cuda:N or mps")
            p.add_argument("--dtype", choices=DTYPES, default="auto", help="model dtype (default: auto)")
            p.add_argument("--batch-size", type=positive_int, default=32, help="sequences scored together")
        p.add_argument("--seed", type=non_negative_int, default=0)
        p.add_argument("-v", "--verbose", action="store_true")
        add_debug_flag(p)

    def transcript_columns(p: argparse.ArgumentParser) -> None:
        p.add_argument("--subset", default=None, help="hub dataset configuration, e.g. pythia_deduped_100k")
        p.add_argument("--split", default="train")
        p.add_argument("--position-column", default="index", help="training position of each example")
        p.add_argument(
            "--step-column", default=None, help="training step of each example (default: position)"
        )
        p.add_argument("--block-column", default=None, help="stage label, for runs shuffled within stages")

    q = sub.add_parser(
        "query",
        help="query test of a suspect model against Alice's transcript",
        description="Query test: Spearman's rho between each example's training position and the suspect's "
        "loss minus the reference's. Writes the result as JSON (--out) and a plot of position against "
        "loss difference with its fitted trend beside it (<out>.png).",
        epilog=_QUERY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--suspect", help="suspect model: local folder or hub id")
    q.add_argument("--reference", help="reference model (independent of Alice's order)")
    q.add_argument("--transcript", required=True, help="parquet/jsonl file, saved dataset, or hub dataset id")
    transcript_columns(q)
    q.add_argument(
        "--n", type=_at_least_three, default=None, help="examples sampled uniformly (default: all)"
    )
    q.add_argument(
        "--prefix-tokens",
        type=non_negative_int,
        default=0,
        help="score only the continuation after k tokens",
    )
    q.add_argument(
        "--permutations", type=non_negative_int, default=0, help="also compute an exact permutation p-value"
    )
    q.add_argument("--revision", default=None, help="suspect revision")
    q.add_argument("--reference-revision", default=None)
    q.add_argument("--retokenize", action="store_true", help="re-encode the transcript for other tokenizers")
    q.add_argument("--transcript-tokenizer", default=None, help="tokenizer of the transcript's token ids")
    q.add_argument("--loss-column", default=None, help="use the transcript's precomputed suspect loss column")
    q.add_argument("--reference-loss-column", default=None, help="precomputed reference loss column")
    q.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="folder for the saved score chunks, seen by every process (default: <out>.scores beside "
        "the JSON); a rerun skips the chunks already there",
    )
    q.add_argument(
        "--chunk-size", type=positive_int, default=None, help="examples per saved chunk (default: 1024)"
    )
    common(q)
    q.set_defaults(func=_cmd_query)

    r = sub.add_parser("reshuffle", help="observational reshuffle test of a suspect text")
    r.add_argument("--original", required=True, type=Path, help="last phase retrained in Alice's order")
    r.add_argument("--reshuffled", required=True, nargs="+", type=Path, help="K retrains in shuffled orders")
    r.add_argument(
        "--texts",
        required=True,
        type=Path,
        help="jsonl (text and optional prompt, or tokens and optional prompt length) or .txt, one per line",
    )
    common(r)
    r.set_defaults(func=_cmd_reshuffle)

    g = sub.add_parser(
        "ngram",
        help="observational n-gram test of a suspect text",
        description="Observational n-gram test (the paper's Algorithm 2): greedy longest matches of the "
        "suspect text in Alice's documents, counted per training step. Steps come from --step-column, "
        "else from a 'step' column when the transcript has one, else from the position column.",
    )
    g.add_argument(
        "--transcript",
        required=True,
        help="Alice's tokenized documents (a 'tokens' column; steps from --step-column or a 'step' column)",
    )
    transcript_columns(g)
    g.add_argument("--texts", required=True, type=Path, help="jsonl (tokens or text) or one text per line")
    g.add_argument("--tokenizer", default=None, help="tokenizer of the transcript, to encode string texts")
    g.add_argument("--max-n", type=positive_int, default=9, help="longest span in tokens (paper: k+1 = 9)")
    g.add_argument("--min-length", type=positive_int, default=2, help="shortest span counted (paper: 2)")
    g.add_argument(
        "--keep-tail",
        action="store_true",
        help="also query the last max-n - 1 positions of each text (the paper skips them)",
    )
    g.add_argument(
        "--empty-steps",
        choices=("keep", "drop"),
        default="keep",
        help="keep: correlate over every step from first to last (paper); drop: only steps with documents",
    )
    g.add_argument(
        "--max-occurrences",
        type=positive_int,
        default=None,
        help="skip positions whose span occurs more often (like the paper's 10 ms lookup timeout)",
    )
    g.add_argument("--permutations", type=positive_int, default=999)
    common(g, models=False)
    g.set_defaults(func=_cmd_ngram)
    return parser


def _main(argv: list[str]) -> int:
    from reprokit.progress import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging("INFO" if args.verbose else "WARNING")
    args.func(args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `palimpsest` console script: exit 0, or 2 with one line for bad input."""
    return run_cli(_main, argv, prog="palimpsest")


if __name__ == "__main__":
    raise SystemExit(main())
