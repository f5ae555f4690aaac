"""Reproduce "Blackbox Model Provenance via Palimpsestic Membership Inference" (arXiv 2510.19796).

python reproduce/palimpsest.py --scale tiny            # CPU, minutes; writes results/palimpsest/tiny/
python reproduce/palimpsest.py --scale paper --device cuda   # needs the paper's weights and transcripts
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

# This file is named like the package: keep its folder off sys.path so `import palimpsest` finds the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


from palimpsest.reproduce import PaperConfig, ReproduceConfig, run_paper, run_tiny  # noqa: E402
from reprokit.cli import add_common_args, load_toml_config, parse_common  # noqa: E402
from reprokit.progress import configure_logging  # noqa: E402
from reprokit.results import RunOutput  # noqa: E402
from reprokit.seed import set_seed  # noqa: E402

SUMMARY = (
    "Tiny-scale reproduction on CPU: Alice is a tiny llama trained for one epoch on synthetic "
    "`reprokit.world` documents in a recorded random order; suspects are derived from her or trained "
    "independently. All p-values are one-sided in the pre-registered direction; the reshuffle test reports "
    "the exact rank p, the t-corrected p and the paper's Gaussian approximation (labelled as such)."
)
NOTES = (
    "- The paper's numbers come from the brief (`shared/papers/palimpsest.md`); the full paper table was not "
    "available, so per-model parity is not claimed.\n"
    "- The paper's reshuffle p-values use a Gaussian fit to K = 9 copies (anti-conservative); we report it "
    "beside the exact rank p (floor 1/(K+1)) and the t-corrected p.\n"
    "- Fine-tuning shares are of Alice's pretraining *examples*; the paper's sweep used 0.02%-2%, "
    "ours 1%-50%.\n"
    "- Chat fine-tunes use 1/10 of Alice's learning rate (3e-4); a first run at 1e-3 left the full chat "
    "fine-tune at query p = 0.037: at this scale the query signal survives light, not aggressive, "
    "fine-tuning.\n"
    "- Our distilled student (pretrained on world B, then trained on 800 bos-prompted samples of Alice) "
    "keeps a strong query signal, unlike the paper's weak 1e-1.4..1e-2.8; the claim only checks that it "
    "is weaker.\n"
    "- With 1,064 documents in batches of 16, the 2% retrain fraction is one partial optimizer step "
    "(8 documents; see `retrained_examples`), too little for the reshuffle test at this corpus size.\n"
    "- Torch uses all CPU cores by default; pass `--threads 1` on a busy machine (oversubscribed cores "
    "slow tiny models down several times)."
)


def smoke(rc: ReproduceConfig) -> ReproduceConfig:
    """Drastically smaller sizes for the test suite (well under a minute)."""
    tiny = dataclasses.replace(
        rc.tiny,
        n_people=120,
        n_people_other=80,
        vocab_size=400,
        alice_recipe="llama-0.3m",
        batch_size=8,
        references=(("same-recipe", "llama-0.3m", "same"), ("other-data", "llama-0.3m", "other")),
        nulls=(("null-llama", "llama-0.3m"),),
        n_chat=40,
        finetune_fractions=(0.1, 0.5),
        distill_samples=40,
        distill_new_tokens=24,
        retrain_fractions=(0.05, 0.1),
    )
    return dataclasses.replace(
        rc,
        tiny=tiny,
        query_n=(50,),
        n_null_orders=100,
        n_permutations=99,
        main_fraction=0.1,
        k=4,
        k_sweep=2,
        n_samples=40,
        n_robustness_samples=10,
        sample_tokens=16,
        token_grid=(100,),
        n_draws=2,
        ngram_permutations=49,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(parser, paper="palimpsest")
    args = parse_common(parser.parse_args(), paper="palimpsest")
    configure_logging("INFO")
    args.apply_threads()
    set_seed(args.seed)
    raw = load_toml_config(args.config) if args.config else {}
    t0 = time.perf_counter()
    if args.scale == "tiny":
        rc = ReproduceConfig.from_dict(raw)
        rc = dataclasses.replace(rc, tiny=dataclasses.replace(rc.tiny, seed=args.seed))
        if args.smoke:
            rc = smoke(rc)
        out = RunOutput(
            args.out, paper="palimpsest", scale="tiny", seed=args.seed, config=dataclasses.asdict(rc)
        )
        run_tiny(rc, out, cache_dir=args.cache_dir)
        title = "Palimpsest (arXiv 2510.19796), tiny scale" + (" (smoke)" if args.smoke else "")
    else:
        pc = PaperConfig.from_dict(raw.get("paper", raw))
        out = RunOutput(
            args.out,
            paper="palimpsest",
            scale="paper",
            seed=args.seed,
            config=dataclasses.asdict(pc),
            device=args.device,
        )
        run_paper(pc, out, device=args.device, dtype=args.dtype)
        title = "Palimpsest (arXiv 2510.19796), paper scale"
    out.finish(title=title, summary=SUMMARY, notes=NOTES)
    holding = sum(c.holds for c in out.claims)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s: {holding} of {len(out.claims)} claims hold")
    for c in out.claims:
        print(f"  [{'holds' if c.holds else 'FAILS'}] {c.id}: {c.measured}  (expected {c.expected})")


if __name__ == "__main__":
    main()
