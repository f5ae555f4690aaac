"""Command line: `palimpsest query | reshuffle | ngram`, each printing its result and writing JSON."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reprokit.results import atomic_write_json
from reprokit.stats import log10_p_to_str

logger = logging.getLogger(__name__)


def _read_texts(path: Path) -> tuple[list[Any], list[Any] | None]:
    """Suspect texts from jsonl (`text` or `tokens`, optional `prompt`) or plain text (one per line)."""
    if not path.is_file():
        raise FileNotFoundError(f"--texts {path}: no such file; pass a .jsonl or .txt file of suspect texts.")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"--texts {path} is empty; pass at least one suspect text.")
    if path.suffix.lower() != ".jsonl":
        return lines, None
    rows = [json.loads(ln) for ln in lines]
    key = "tokens" if "tokens" in rows[0] else "text"
    if key not in rows[0]:
        raise ValueError(f"--texts {path}: rows need a 'text' or 'tokens' field, got {sorted(rows[0])}.")
    texts = [r[key] for r in rows]
    prompts = [r["prompt"] for r in rows] if "prompt" in rows[0] else None
    return texts, prompts


def _emit(name: str, result: dict[str, Any], out: Path | None, lines: Sequence[str]) -> None:
    for line in lines:
        print(line)
    path = out or Path(f"palimpsest-{name}.json")
    atomic_write_json(path, result)
    print(f"wrote {path}")


def _cmd_query(args: argparse.Namespace) -> None:
    from palimpsest.query import QueryConfig, query_test, query_test_from_losses
    from palimpsest.transcript import Transcript
    from reprokit.models import load_causal_lm

    transcript = Transcript.load(args.transcript, subset=args.subset, split=args.split)
    if args.loss_column:
        sample = transcript.sample(args.n, seed=args.seed)
        missing = [c for c in (args.loss_column, args.reference_loss_column) if c and c not in sample.losses]
        if missing:
            raise ValueError(
                f"loss column(s) {missing} not in the transcript; it has {sorted(sample.losses)}."
            )
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
        if not args.suspect:
            raise ValueError("pass --suspect PATH_OR_ID (or --loss-column for precomputed losses).")
        config = QueryConfig(
            n=args.n,
            prefix_tokens=args.prefix_tokens,
            n_permutations=args.permutations,
            batch_size=args.batch_size,
            retokenize=args.retokenize,
            seed=args.seed,
        )
        suspect = load_causal_lm(args.suspect, revision=args.revision, device=args.device, dtype=args.dtype)
        if transcript.tokenizer is None and transcript.token_ids is not None and args.transcript_tokenizer:
            from transformers import AutoTokenizer

            transcript = Transcript(
                positions=transcript.positions,
                token_ids=transcript.token_ids,
                blocks=transcript.blocks,
                steps=transcript.steps,
                losses=transcript.losses,
                tokenizer=AutoTokenizer.from_pretrained(args.transcript_tokenizer),
                name=transcript.name,
            )
        reference = (
            load_causal_lm(
                args.reference, revision=args.reference_revision, device=args.device, dtype=args.dtype
            )
            if args.reference
            else None
        )
        result = query_test(transcript, suspect, reference, config, reference_name=args.reference)
        suspect_name = args.suspect
    payload = {
        "test": "query",
        "suspect": suspect_name,
        "transcript": str(args.transcript),
        **result.to_dict(),
    }
    _emit(
        "query",
        payload,
        args.out,
        [
            f"suspect {suspect_name}  reference {result.reference or 'none'}  n={result.n}",
            f"spearman rho = {result.statistic:+.4f}   one-sided p = {log10_p_to_str(result.log10_pvalue)}"
            + (f"   permutation p = {result.permutation_pvalue:.4g}" if result.permutation_pvalue else ""),
        ],
    )


def _cmd_reshuffle(args: argparse.Namespace) -> None:
    from palimpsest.reshuffle import reshuffle_test
    from reprokit.models import load_causal_lm

    texts, prompts = _read_texts(args.texts)
    original, tokenizer = load_causal_lm(args.original, device=args.device, dtype=args.dtype)
    copies = [load_causal_lm(p, device=args.device, dtype=args.dtype)[0] for p in args.reshuffled]
    result = reshuffle_test(original, copies, tokenizer, texts, prompts=prompts, batch_size=args.batch_size)
    payload = {"test": "reshuffle", "original": str(args.original), **result.to_dict()}
    _emit(
        "reshuffle",
        payload,
        args.out,
        [
            f"K={result.k} reshuffled copies, {result.n_texts} texts, {result.n_tokens} tokens",
            f"exact rank p = {result.rank_pvalue:.4g}",
            f"t-corrected p = {log10_p_to_str(result.log10_t_pvalue)}",
            f"Gaussian approximation p (paper, anti-conservative for small K) = "
            f"{log10_p_to_str(result.log10_normal_pvalue)}",
        ],
    )


def _cmd_ngram(args: argparse.Namespace) -> None:
    from transformers import AutoTokenizer

    from palimpsest.ngram import NGramIndex, ngram_test
    from palimpsest.transcript import Transcript

    transcript = Transcript.load(args.transcript, subset=args.subset, split=args.split)
    texts, _ = _read_texts(args.texts)
    if isinstance(texts[0], str):
        if not args.tokenizer:
            raise ValueError(
                "the suspect texts are strings; pass --tokenizer PATH_OR_ID of the transcript's tokens."
            )
        tok = AutoTokenizer.from_pretrained(args.tokenizer)
        texts = [tok(t, add_special_tokens=False).input_ids for t in texts]
    if transcript.token_ids is None:
        raise ValueError("the n-gram test needs a tokenized transcript (a 'tokens' column).")
    index = NGramIndex(
        transcript.token_ids, transcript.step_of_example, max_n=args.max_n, blocks=transcript.blocks
    )
    result = ngram_test(
        index, texts, n_permutations=args.permutations, min_length=args.min_length, blocks=transcript.blocks
    )
    payload = {"test": "ngram", "transcript": str(args.transcript), **result.to_dict()}
    _emit(
        "ngram",
        payload,
        args.out,
        [
            f"{result.n_tokens} suspect tokens, {result.n_matches} matches over {result.n_steps} steps",
            f"spearman rho = {result.statistic:+.4f}   permutation p = {result.pvalue:.4g} "
            f"({result.n_permutations} permutations)",
        ],
    )


def build_parser() -> argparse.ArgumentParser:
    """The `palimpsest` argument parser."""
    parser = argparse.ArgumentParser(
        prog="palimpsest",
        description="Exact provenance tests: does a model or text derive from a training run?",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--out", type=Path, default=None, help="JSON output (default: palimpsest-<command>.json)"
        )
        p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
        p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
        p.add_argument("--batch-size", type=int, default=32)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("-v", "--verbose", action="store_true")

    q = sub.add_parser("query", help="query test of a suspect model against Alice's transcript")
    q.add_argument("--suspect", help="suspect model: local folder or hub id")
    q.add_argument("--reference", help="reference model (independent of Alice's order)")
    q.add_argument("--transcript", required=True, help="parquet/jsonl file, saved dataset, or hub dataset id")
    q.add_argument("--subset", default=None, help="hub dataset configuration, e.g. pythia_deduped_100k")
    q.add_argument("--split", default="train")
    q.add_argument("--n", type=int, default=None, help="examples sampled uniformly (default: all)")
    q.add_argument("--prefix-tokens", type=int, default=0, help="score only the continuation after k tokens")
    q.add_argument("--permutations", type=int, default=0, help="also compute an exact permutation p-value")
    q.add_argument("--revision", default=None, help="suspect revision")
    q.add_argument("--reference-revision", default=None)
    q.add_argument("--retokenize", action="store_true", help="re-encode the transcript for other tokenizers")
    q.add_argument("--transcript-tokenizer", default=None, help="tokenizer of the transcript's token ids")
    q.add_argument("--loss-column", default=None, help="use the transcript's precomputed suspect loss column")
    q.add_argument("--reference-loss-column", default=None, help="precomputed reference loss column")
    common(q)
    q.set_defaults(func=_cmd_query)

    r = sub.add_parser("reshuffle", help="observational reshuffle test of a suspect text")
    r.add_argument("--original", required=True, type=Path, help="last phase retrained in Alice's order")
    r.add_argument("--reshuffled", required=True, nargs="+", type=Path, help="K retrains in shuffled orders")
    r.add_argument(
        "--texts", required=True, type=Path, help="jsonl (text, optional prompt) or one text per line"
    )
    common(r)
    r.set_defaults(func=_cmd_reshuffle)

    g = sub.add_parser("ngram", help="observational n-gram test of a suspect text")
    g.add_argument(
        "--transcript", required=True, help="Alice's tokenized documents with steps (tokens, step)"
    )
    g.add_argument("--subset", default=None)
    g.add_argument("--split", default="train")
    g.add_argument("--texts", required=True, type=Path, help="jsonl (tokens or text) or one text per line")
    g.add_argument("--tokenizer", default=None, help="tokenizer of the transcript, to encode string texts")
    g.add_argument("--max-n", type=int, default=8)
    g.add_argument("--min-length", type=int, default=1)
    g.add_argument("--permutations", type=int, default=999)
    common(g)
    g.set_defaults(func=_cmd_ngram)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `palimpsest` console script."""
    from reprokit.progress import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging("INFO" if args.verbose else "WARNING")
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"palimpsest {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
