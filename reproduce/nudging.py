"""Reproduce "Nudging: Inference-time Alignment via Model Collaboration" (Fei, Razeghi, Singh 2024).

python reproduce/nudging.py --scale tiny           # CPU, minutes; writes results/nudging/tiny/
python reproduce/nudging.py --scale paper          # the paper's models and tasks (GPUs, judge)
python reproduce/nudging.py --smoke --out /tmp/x   # seconds, for tests
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

# This script is named like the package it uses: keep its own folder off the import path.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from nudging.reproduce import ReproduceConfig, run
from nudging.tiny import FamilySpec, TinyConfig
from reprokit.cli import add_common_args, load_toml_config, parse_common
from reprokit.progress import configure_logging
from reprokit.zoo import TrainConfig


def smoke(cfg: ReproduceConfig) -> ReproduceConfig:
    """Drastically smaller sizes: every code path, in well under a minute."""
    tiny = TinyConfig(
        seed=cfg.tiny.seed,
        n_people=24,
        n_arithmetic=40,
        n_symbolic=12,
        n_eval=3,
        doc_repeats=2,
        small_doc_repeats=1,
        n_align_arithmetic=12,
        n_align_symbolic=6,
        families=(
            FamilySpec("llama", "llama-0.3m", "llama-0.3m", 400),
            FamilySpec("neox", "gpt_neox-0.3m", "gpt_neox-0.3m", 520),
        ),
        large_pretrain=TrainConfig(epochs=1.0, batch_size=16),
        small_pretrain=TrainConfig(epochs=0.5, batch_size=16),
        finetune=TrainConfig(epochs=1.0, batch_size=16),
        max_length=96,
    )
    return dataclasses.replace(
        cfg, tiny=tiny, max_new_tokens=24, sweep_gammas=(0.2, 0.5), sweep_n=2, uncertainty_n=2, n_bootstrap=50
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(parser, paper="nudging", resumable=True)
    args = parse_common(parser.parse_args(argv), paper="nudging")
    configure_logging("INFO")
    args.apply_threads()
    raw = load_toml_config(args.config) if args.config is not None else {"scale": args.scale}
    cfg = ReproduceConfig.from_dict(raw)
    if cfg.scale != args.scale:
        cfg = dataclasses.replace(cfg, scale=args.scale)
    if args.smoke:
        cfg = smoke(cfg)
    device = "cpu" if args.device == "auto" and cfg.scale == "tiny" else args.device
    out = run(
        cfg,
        args.out,
        seed=args.seed,
        cache_dir=args.cache_dir,
        device=device,
        dtype=args.dtype,
        resume=not args.fresh,
    )
    logging.getLogger("nudging").info("results in %s", out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
