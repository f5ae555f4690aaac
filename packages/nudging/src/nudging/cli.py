"""Command line: `nudging generate` (one nudged answer, nudged words marked) and `nudging eval`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from nudging.config import NudgingConfig
from reprokit.cli import positive_int


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
    p.add_argument("--gamma", type=float, default=0.3, help="top-1 probability threshold (default 0.3)")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--lookahead", type=int, default=16, help="nudging look-ahead in tokens (default 16)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plain-nudger-prompt", action="store_true", help="nudging model without a chat template")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")


def build_parser() -> argparse.ArgumentParser:
    """The `nudging` argument parser."""
    parser = argparse.ArgumentParser(prog="nudging", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="answer one prompt with nudging; nudged words are [marked]")
    _add_model_args(gen)
    gen.add_argument("--prompt", required=True, help="the question")
    gen.add_argument("--json", action="store_true", help="print the full result as JSON")
    ev = sub.add_parser("eval", help="accuracy of nudging on a task")
    _add_model_args(ev)
    ev.add_argument("--task", required=True, help="a paper task key (gsm8k, svamp, ...) ")
    ev.add_argument(
        "--data-files", default=None, help="local json/parquet file(s) of the task instead of the hub"
    )
    ev.add_argument("-n", type=int, default=None, help="random subset size (seeded like the paper)")
    ev.add_argument("--judge-model", default=None, help="OpenAI-compatible judge model for non-math tasks")
    ev.add_argument("--judge-base-url", default=None)
    ev.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        help="questions decoded together in lock-step (default 8)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nudging` console script."""
    from reprokit.progress import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(logging.WARNING)
    from nudging.nudger import Nudger

    try:
        config = _config(args)
        nudger = Nudger.from_pretrained(
            args.base,
            args.nudger,
            config,
            dtype=args.dtype,
            device=args.device,
            plain_nudger_prompt=args.plain_nudger_prompt,
        )
    except (ValueError, OSError) as err:
        print(f"nudging: error: {err}", file=sys.stderr)
        return 2
    if args.command == "generate":
        try:
            res = nudger(args.prompt)
        except ValueError as err:
            print(f"nudging: error: {err}", file=sys.stderr)
            return 2
        if args.json:
            print(
                json.dumps(
                    {
                        "text": res.text,
                        "segments": [{"text": s.text, "source": s.source} for s in res.segments],
                        "stop_reason": res.stop_reason,
                        "nudged_word_share": res.nudged_word_share,
                        "nudged_token_share": res.nudged_token_share,
                    },
                    indent=2,
                )
            )
        else:
            print(res.marked())
            print(
                f"\n[nudged words are in brackets] stop: {res.stop_reason}, nudged tokens: "
                f"{res.nudged_token_share:.1%}, nudged words: {res.nudged_word_share:.1%}",
                file=sys.stderr,
            )
        return 0
    from nudging.tasks import OpenAIJudge, load_paper_task, score

    items = load_paper_task(args.task, n=args.n, data_files=args.data_files)
    judge = OpenAIJudge(args.judge_model, base_url=args.judge_base_url) if args.judge_model else None
    if judge is None and any(i.scoring == "judge" for i in items):
        print(f"nudging: error: task {args.task!r} needs a judge; pass --judge-model", file=sys.stderr)
        return 2
    results = nudger.generate_batch(
        [i.question for i in items], batch_size=args.batch_size, show_progress=True
    )
    correct = [score(i, r.text, judge) for i, r in zip(items, results, strict=True)]
    share = sum(r.nudged_token_share for r in results) / max(1, len(results))
    print(
        json.dumps(
            {
                "task": args.task,
                "n": len(items),
                "accuracy": sum(correct) / max(1, len(items)),
                "nudged_token_share": share,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
