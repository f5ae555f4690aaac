"""Command line: `nudging generate` (one nudged answer, nudged words marked) and `nudging eval`.

Options, the prompt, the task data and the output path are checked before the models load; bad input
is one line on stderr and exit status 2 (`reprokit.cli.run_cli`), and nothing is written. torch and
transformers are imported inside the commands so that ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nudging.config import NudgingConfig
from nudging.tasks import PAPER_TASKS
from reprokit.cli import (
    DTYPES,
    add_debug_flag,
    check_output_path,
    device_arg,
    non_negative_int,
    positive_int,
    run_cli,
)
from reprokit.errors import ConfigError


def _config(args: argparse.Namespace) -> NudgingConfig:
    return NudgingConfig(
        gamma=args.gamma,
        max_new_tokens=args.max_new_tokens,
        lookahead_tokens=args.lookahead,
        do_sample=args.sample,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
    )


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", required=True, help="base model: hub id or local folder")
    p.add_argument("--nudger", required=True, help="small aligned (nudging) model: hub id or local folder")
    p.add_argument(
        "--gamma", type=float, default=0.3, help="top-1 probability threshold in [0, 1] (default 0.3)"
    )
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--lookahead", type=int, default=16, help="nudging look-ahead in tokens (default 16)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--plain-nudger-prompt", action="store_true", help="nudging model without a chat template")
    p.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="model dtype (default: auto)")
    p.add_argument("--out", type=Path, default=None, help="also write the result as JSON to this file")
    add_debug_flag(p)


def build_parser() -> argparse.ArgumentParser:
    """The `nudging` argument parser."""
    parser = argparse.ArgumentParser(prog="nudging", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="answer one prompt with nudging; nudged words are [marked]")
    _add_model_args(gen)
    gen.add_argument("--prompt", required=True, help="the question")
    gen.add_argument("--json", action="store_true", help="print the full result as JSON")
    ev = sub.add_parser("eval", help="accuracy of nudging on a task")
    _add_model_args(ev)
    ev.add_argument("--task", required=True, choices=sorted(PAPER_TASKS), help="a paper task key")
    ev.add_argument(
        "--data-files", default=None, help="local json/jsonl/parquet file of the task instead of the hub"
    )
    ev.add_argument("-n", type=positive_int, default=None, help="random subset size (seeded like the paper)")
    ev.add_argument("--judge-model", default=None, help="OpenAI-compatible judge model for non-math tasks")
    ev.add_argument("--judge-base-url", default=None)
    ev.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        help="questions decoded together in lock-step (default 8)",
    )
    return parser


def _load_nudger(args: argparse.Namespace, config: NudgingConfig) -> Any:
    from nudging.nudger import Nudger
    from reprokit.lm import resolve_device

    resolve_device(args.device)  # an unavailable device fails before the first model loads
    return Nudger.from_pretrained(
        args.base,
        args.nudger,
        config,
        dtype=args.dtype,
        device=args.device,
        plain_nudger_prompt=args.plain_nudger_prompt,
    )


def _write(out: Path | None, payload: dict[str, Any]) -> None:
    if out is not None:
        from reprokit.results import atomic_write_json

        atomic_write_json(out, payload)
        print(f"wrote {out}", file=sys.stderr)


def _generate(args: argparse.Namespace, config: NudgingConfig, out: Path | None) -> None:
    from nudging.prompts import _check_question

    _check_question(args.prompt)
    res = _load_nudger(args, config)(args.prompt)
    payload = {
        "text": res.text,
        "segments": [{"text": s.text, "source": s.source} for s in res.segments],
        "stop_reason": res.stop_reason,
        "nudged_word_share": res.nudged_word_share,
        "nudged_token_share": res.nudged_token_share,
    }
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print(res.marked())
        print(
            f"\n[nudged words are in brackets] stop: {res.stop_reason}, nudged tokens: "
            f"{res.nudged_token_share:.1%}, nudged words: {res.nudged_word_share:.1%}",
            file=sys.stderr,
        )
    _write(out, payload)


def _eval(args: argparse.Namespace, config: NudgingConfig, out: Path | None) -> None:
    from nudging.tasks import OpenAIJudge, item_value, load_paper_task

    items = load_paper_task(args.task, n=args.n, data_files=args.data_files)
    if args.judge_model is None and any(i.scoring in ("judge", "rating") for i in items):
        raise ConfigError(f"task {args.task!r} needs a judge; pass --judge-model (and --judge-base-url).")
    judge = OpenAIJudge(args.judge_model, base_url=args.judge_base_url) if args.judge_model else None
    nudger = _load_nudger(args, config)
    results = nudger.generate_batch(
        [i.question for i in items], batch_size=args.batch_size, show_progress=True
    )
    values = [item_value(i, r.text, judge) for i, r in zip(items, results, strict=True)]
    share = sum(r.nudged_token_share for r in results) / max(1, len(results))
    metric = "mean_rating" if any(i.scoring == "rating" for i in items) else "accuracy"  # just-eval: 1-5
    payload = {
        "task": args.task,
        "n": len(items),
        metric: sum(values) / max(1, len(items)),
        "nudged_token_share": share,
    }
    print(json.dumps(payload))
    _write(out, payload)


def _main(argv: list[str]) -> int:
    from reprokit.progress import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(logging.WARNING)
    config = _config(args)
    out = check_output_path(args.out) if args.out is not None else None
    (_generate if args.command == "generate" else _eval)(args, config, out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nudging` console script: exit 0, or 2 with one line for bad input."""
    return run_cli(_main, argv, prog="nudging")


if __name__ == "__main__":
    raise SystemExit(main())
