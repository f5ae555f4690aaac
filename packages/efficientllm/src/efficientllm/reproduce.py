"""The reproduction's spec for the shared runner: config sections, setup, experiments, claims and report.

    python reproduce/efficientllm.py --scale tiny     # == python -m reprokit.reproduce efficientllm

The config has a ``tiny`` section (CPU, several seeds; it nests the tiny setup's `TinyConfig`) and a
``paper`` section (a SmolLM source, the SmolLM corpus, lm-evaluation-harness), each nesting the pruning
config (`PruneConfig`) and the two training phases (`PruneTrainConfig`), read from
``reproduce/configs/efficientllm/<scale>.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from efficientllm import experiments as ex
from efficientllm.claims import claims
from efficientllm.evaluation import PAPER_TASKS
from efficientllm.paper import PaperSource, TinySource, paper_requirements
from efficientllm.report import SUMMARY, comparisons, notes
from efficientllm.schedule import PruneConfig
from efficientllm.tiny import TinyConfig, TinySetup
from efficientllm.training import PruneTrainConfig
from reprokit.errors import ConfigError
from reprokit.reproduce import Experiment, PaperSpec, RunContext

__all__ = ["SPEC", "PaperSection", "ReproduceConfig", "TinySection", "setup"]


def _check_common(section: TinySection | PaperSection) -> None:
    problems = []
    if section.n_seeds < 1:
        problems.append(f"n_seeds must be >= 1, got {section.n_seeds}")
    unknown = [a for a in section.ablations if a not in ex.ABLATIONS]
    if unknown:
        problems.append(f"unknown ablations {unknown}; choose from {list(ex.ABLATIONS)}")
    if section.scale_factor < 2:
        problems.append(
            f"scale_factor must be >= 2 (the 10x row of the scaling table), got {section.scale_factor}"
        )
    if section.calibration_sequences < 1:
        problems.append(f"calibration_sequences must be >= 1, got {section.calibration_sequences}")
    p1, p2 = section.phase1, section.phase2
    if (p1.batch_size, p1.seq_len) != (p2.batch_size, p2.seq_len):
        problems.append(
            f"phase1 and phase2 must use the same batch_size and seq_len (tokens per step), got "
            f"{p1.batch_size}x{p1.seq_len} and {p2.batch_size}x{p2.seq_len}"
        )
    if section.prune.stop_step is not None and section.prune.stop_step > p1.steps:
        problems.append(f"[prune] stop_step {section.prune.stop_step} is after phase1's {p1.steps} steps")
    if problems:
        raise ConfigError("; ".join(problems))


@dataclass(frozen=True)
class TinySection:
    """Tiny scale: the world and source (`TinyConfig`), the pruning config and the two training phases."""

    SCALE: ClassVar[str] = "tiny"

    n_seeds: int = 3
    setup: TinyConfig = field(default_factory=TinyConfig)
    prune: PruneConfig = field(
        default_factory=lambda: PruneConfig(every=2, budget_fraction=0.03, target_ratio=0.25)
    )
    phase1: PruneTrainConfig = field(
        default_factory=lambda: PruneTrainConfig(
            steps=150, batch_size=8, seq_len=128, lr=1e-3, warmup_steps=10, schedule="constant", log_every=5
        )
    )
    phase2: PruneTrainConfig = field(
        default_factory=lambda: PruneTrainConfig(
            steps=100, batch_size=8, seq_len=128, lr=1e-3, warmup_steps=10, log_every=5
        )
    )
    scale_factor: int = 10
    calibration_sequences: int = 16
    ablations: tuple[str, ...] = tuple(ex.ABLATIONS)
    knowledge_task: str = "knowledge"
    eval_batch_size: int = 64

    def __post_init__(self) -> None:
        _check_common(self)


@dataclass(frozen=True)
class PaperSection:
    """Paper scale: a SmolLM source pruned to the 469M shape on the SmolLM corpus, lm-eval's tasks."""

    SCALE: ClassVar[str] = "paper"

    n_seeds: int = 1
    source_model: str = "HuggingFaceTB/SmolLM-1.7B"
    dataset: str = "HuggingFaceTB/smollm-corpus"
    dataset_configs: tuple[str, ...] = ("fineweb-edu-dedup", "cosmopedia-v2", "python-edu")
    text_column: str = "text"
    train_tokens: int = 1_000_000_000
    heldout_documents: int = 1000
    paper_targets: tuple[int, ...] = (134_000_000, 469_000_000, 1_100_000_000)
    paper_continued_tokens: dict[str, list[int]] = field(
        default_factory=lambda: {
            "134M": [500_000_000_000],
            "469M": [50_000_000_000, 500_000_000_000],
            "1.1B": [50_000_000_000, 320_000_000_000],
        }
    )
    prune: PruneConfig = field(
        default_factory=lambda: PruneConfig(
            every=1, budget_fraction=0.0002, target_params=469_000_000, round_to=64, compact_every=50
        )
    )
    phase1: PruneTrainConfig = field(
        default_factory=lambda: PruneTrainConfig(
            steps=8000,
            batch_size=8,
            seq_len=2048,
            lr=3e-4,
            warmup_steps=200,
            schedule="constant",
            checkpoint_every=500,
            log_every=50,
        )
    )
    phase2: PruneTrainConfig = field(
        default_factory=lambda: PruneTrainConfig(
            steps=8000,
            batch_size=8,
            seq_len=2048,
            lr=3e-4,
            warmup_steps=200,
            checkpoint_every=500,
            log_every=50,
        )
    )
    scale_factor: int = 10
    calibration_sequences: int = 128
    ablations: tuple[str, ...] = ()
    tasks: tuple[str, ...] = (*PAPER_TASKS[1:], PAPER_TASKS[0])
    acc_norm_tasks: tuple[str, ...] = ("arc_challenge", "arc_easy", "hellaswag", "openbookqa", "piqa")
    knowledge_task: str = "mmlu"

    def __post_init__(self) -> None:
        _check_common(self)


@dataclass(frozen=True)
class ReproduceConfig:
    """The reproduction's config: one section per scale (``[tiny]`` and ``[paper]`` in the TOML)."""

    tiny: TinySection = field(default_factory=TinySection)
    paper: PaperSection = field(default_factory=PaperSection)


def setup(section: TinySection | PaperSection, ctx: RunContext) -> ex.EfficientRun:
    """One seed's run: at tiny scale the world and the source pretrained (or loaded from the cache)."""
    if isinstance(section, PaperSection):
        return ex.EfficientRun(section, PaperSource(section, ctx), ctx)
    tiny = TinySetup(section.setup, seed=ctx.seed, cache_dir=ctx.cache_dir)
    ctx.log("pretraining (or loading) the source model")
    _ = tiny.source_folder
    return ex.EfficientRun(section, TinySource(tiny, section.eval_batch_size), ctx)


EXPERIMENTS = [
    Experiment.table_from(
        ex,
        "table_main",
        "Table 2 analogue: every method at the same final size and the same tokens after the source; "
        "zero-shot accuracy per task, the average of the common-sense tasks (the knowledge test excluded, "
        "as the paper's Avg. excludes MMLU), held-out perplexity.",
        "method",
    ),
    Experiment.table_from(
        ex, "table_scaling", "The pruned model after 0x, 1x and more continued-training tokens.", "stage"
    ),
    Experiment.table_from(
        ex,
        "table_ablations",
        "Ablations of the pruning-aware stage, each after 1x continued training.",
        "variant",
        "description",
    ),
    Experiment.table_from(
        ex,
        "table_pruning_order",
        "When each type was first pruned (tokens) and the share of it pruned, per variant.",
        "variant",
        "type",
    ),
    Experiment.figure_from(ex, "figure_size_vs_tokens"),
    Experiment.figure_from(ex, "figure_pruned_share"),
    Experiment.figure_from(ex, "figure_training_curves"),
]

SPEC = PaperSpec(
    name="efficientllm",
    title="EfficientLLM: Scalable Pruning-Aware Pretraining (arXiv 2502.06663)",
    config_class=ReproduceConfig,
    setup=setup,
    experiments=EXPERIMENTS,
    claims=claims,
    summary=SUMMARY,
    notes=notes,
    comparisons=comparisons,
    requirements=paper_requirements,
)
