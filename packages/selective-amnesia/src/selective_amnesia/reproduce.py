"""The reproduction's spec for the shared runner: config sections, setup, experiments, claims and report.

    python reproduce/selective_amnesia.py --scale tiny     # == python -m reprokit.reproduce selective-amnesia

The config has a ``tiny`` section (CPU, several seeds; it nests the tiny setup's `TinyConfig`) and a
``paper`` section (the task's OLMo models and data), each nesting the tracing, unlearning and scoring
configs, read from ``reproduce/configs/selective-amnesia/<scale>.toml``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from reprokit.errors import ConfigError
from reprokit.reproduce import Experiment, PaperSpec, RunContext
from selective_amnesia import experiments as ex
from selective_amnesia.claims import claims
from selective_amnesia.paper import PaperSource, paper_requirements
from selective_amnesia.report import SUMMARY, comparisons, notes
from selective_amnesia.roles import ROLES
from selective_amnesia.scoring import ScoreConfig
from selective_amnesia.tiny import TinyConfig, TinySetup
from selective_amnesia.tracing import TracingConfig
from selective_amnesia.unlearning import UnlearnConfig

__all__ = ["SPEC", "PaperSection", "ReproduceConfig", "TinySection", "setup"]


def _check_common(section: TinySection | PaperSection) -> None:
    if section.n_seeds < 1:
        raise ConfigError(f"n_seeds must be >= 1, got {section.n_seeds}")
    if section.max_facts < 1:
        raise ConfigError(f"max_facts must be >= 1, got {section.max_facts}")
    if section.top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {section.top_k}")
    if section.unlearn.method != "constrained":
        raise ConfigError(
            f"[unlearn] method must be 'constrained' (the paper's), got {section.unlearn.method!r}"
        )
    if section.trace_role and section.trace_role not in ROLES:
        raise ConfigError(f"trace_role {section.trace_role!r} is not a token role; choose one of {ROLES}")
    if not section.epoch_grid:
        raise ConfigError("epoch_grid is empty; list the epoch counts of the epochs ablation")


@dataclass(frozen=True)
class TinySection:
    """Tiny scale: the world and target model (`TinyConfig`), tracing, unlearning and scoring configs."""

    SCALE: ClassVar[str] = "tiny"

    n_seeds: int = 3
    setup: TinyConfig = field(default_factory=TinyConfig)
    tracing: TracingConfig = field(default_factory=lambda: TracingConfig(window=1))
    max_facts: int = 60
    trace_kinds: tuple[str, ...] = ("mlp", "attn")
    trace_role: str = "subject_last"
    top_k: int = 2
    layers: tuple[int, ...] = ()
    unlearn: UnlearnConfig = field(default_factory=UnlearnConfig)
    baseline: UnlearnConfig = field(default_factory=lambda: UnlearnConfig(param_pattern=".*"))
    scoring: ScoreConfig = field(default_factory=ScoreConfig)
    epoch_grid: tuple[int, ...] = (2, 8)

    def __post_init__(self) -> None:
        _check_common(self)


@dataclass(frozen=True)
class PaperSection:
    """Paper scale: the task's fine-tuned OLMo, its data set (train or validation fold) and MMLU."""

    SCALE: ClassVar[str] = "paper"

    n_seeds: int = 1
    model: str = "llmunlearningsemeval2025organization/olmo-1B-model-semeval25-unlearning"
    second_model: str = ""
    dataset: str = "llmunlearningsemeval2025organization/semeval25-unlearning-dataset-public"
    data_split: str = "train"
    forget_files: str = "data/forget_{split}-*.parquet"
    retain_files: str = "data/retain_{split}-*.parquet"
    member_files: str = "mia_data/member*"
    nonmember_files: str = "mia_data/nonmember*"
    mmlu_dataset: str = "cais/mmlu"
    max_facts: int = 125
    tracing: TracingConfig = field(default_factory=TracingConfig)
    trace_kinds: tuple[str, ...] = ("hidden", "mlp", "attn")
    trace_role: str = "subject_last"
    top_k: int = 6
    layers: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    unlearn: UnlearnConfig = field(default_factory=lambda: UnlearnConfig(bf16=True))
    baseline: UnlearnConfig = field(
        default_factory=lambda: UnlearnConfig(param_pattern=".*", lr=1e-5, bf16=True)
    )
    scoring: ScoreConfig = field(default_factory=ScoreConfig)
    epoch_grid: tuple[int, ...] = (4, 8)

    def __post_init__(self) -> None:
        _check_common(self)


@dataclass(frozen=True)
class ReproduceConfig:
    """The reproduction's config: one section per scale (``[tiny]`` and ``[paper]`` in the TOML)."""

    tiny: TinySection = field(default_factory=TinySection)
    paper: PaperSection = field(default_factory=PaperSection)


def setup(section: TinySection | PaperSection, ctx: RunContext) -> ex.AmnesiaRun:
    """One seed's run: at tiny scale the world and the target model trained (or loaded from the cache)."""
    work = Path(tempfile.mkdtemp(prefix=f"amnesia-seed{ctx.seed}-"))
    if isinstance(section, PaperSection):
        return ex.AmnesiaRun(section, PaperSource(section, ctx), ctx, work_dir=work)
    first = ctx.seed_index == 0  # the second architecture is traced on the first seed only
    tiny = TinySetup(section.setup, seed=ctx.seed, cache_dir=ctx.cache_dir, with_second=first)
    ctx.log("training (or loading) the target model")
    _ = tiny.target
    if tiny.with_second:
        ctx.log("training (or loading) the second architecture (%s)", section.setup.second_architecture)
        _ = tiny.second
    return ex.AmnesiaRun(section, tiny, ctx, work_dir=work)


EXPERIMENTS = [
    Experiment.table_from(
        ex, "table_trace_summary", "Facts traced, p(answer) and the MLP effect's concentration.", "model"
    ),
    Experiment.table_from(
        ex, "table_trace", "Mean indirect effect by token role and layer.", "model", "kind", "role"
    ),
    Experiment.figure_from(ex, "figure_trace_aggregate"),
    Experiment.figure_from(ex, "figure_trace_example"),
    Experiment.figure_from(ex, "figure_trace_second"),
    Experiment.table_from(
        ex, "table_main", "SemEval-2025 Task 4 scores per method (final: mean of the other three).", "method"
    ),
    Experiment.table_from(
        ex, "table_subtasks", "The 12 per-task means (raw; forget ones enter inverted).", "method"
    ),
    Experiment.table_from(ex, "table_ablation_layers", "Which layers: traced against untraced.", "layers"),
    Experiment.table_from(
        ex, "table_ablation_kind", "Which module kind of the traced layers.", "module_kind"
    ),
    Experiment.table_from(ex, "table_ablation_alpha", "Adaptive against fixed retain weight.", "alpha"),
    Experiment.table_from(ex, "table_ablation_epochs", "Constrained unlearning by epochs.", "epochs"),
    Experiment.table_from(
        ex, "table_cost", "Trainable share, wall time and peak memory per method.", "method"
    ),
    Experiment.figure_from(ex, "figure_unlearning_curves"),
]

SPEC = PaperSpec(
    name="selective-amnesia",
    title="Selective Amnesia (SHA256 at SemEval-2025 Task 4, arXiv 2504.12996)",
    config_class=ReproduceConfig,
    setup=setup,
    experiments=EXPERIMENTS,
    claims=claims,
    summary=SUMMARY,
    notes=notes,
    comparisons=comparisons,
    requirements=paper_requirements,
)
