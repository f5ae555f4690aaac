"""The reproduction's spec for the shared runner: config sections, setup, experiments, claims and report.

    python reproduce/nudging.py --scale tiny      # == python -m reprokit.reproduce nudging

The config has a ``tiny`` section (CPU, several seeds; it nests the tiny setup's `TinyConfig`) and a
``paper`` section (the paper's models and tasks), both nesting the method's own `NudgingConfig`, read
from ``reproduce/configs/nudging/<scale>.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from nudging import experiments as ex
from nudging import paper as pp
from nudging import tiny
from nudging.claims import claims
from nudging.config import NudgingConfig
from nudging.evaluation import NudgingSetup
from nudging.paper import PAPER_FAMILIES, PaperModels
from nudging.report import SUMMARY, comparisons, notes
from nudging.tasks import PAPER_TASKS, TINY_TASKS
from reprokit.reproduce import Experiment, PaperSpec, RunContext

__all__ = ["SPEC", "Evaluation", "PaperSection", "ReproduceConfig", "TinySection", "setup"]


#: The paper's baselines that Table 1 can add (see `nudging.baselines`).
BASELINES = ("ensemble", "proxy_tuning", "urial")


@dataclass(frozen=True)
class Evaluation:
    """What both scales evaluate and how: tasks, decoding (`nudging`: gamma, answer length), the
    cross-family, uncertainty and gamma-sweep sizes and the bootstrap resamples of `table1_ci`."""

    SCALE: ClassVar[str] = ""
    KNOWN_TASKS: ClassVar[tuple[str, ...]] = ()

    n_seeds: int = 1
    nudging: NudgingConfig = field(default_factory=NudgingConfig)
    batch_size: int = 16
    tasks: tuple[str, ...] = ()
    cross_tasks: tuple[str, ...] = ()
    sweep_gammas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    sweep_tasks: tuple[str, ...] = ()
    sweep_n: int = 15
    uncertainty_n: int = 30
    n_bootstrap: int = 1000
    baselines: tuple[str, ...] = ("ensemble", "proxy_tuning", "urial")
    """The paper's baselines, extra rows of Table 1: the ensemble of base and small aligned next-token
    distributions, proxy tuning (base + small aligned - small base) and URIAL in-context alignment."""

    def __post_init__(self) -> None:
        bad_baselines = [b for b in self.baselines if b not in BASELINES]
        if bad_baselines:
            raise ValueError(f"unknown baselines {bad_baselines}; choose from {list(BASELINES)}")
        if self.nudging.seed != 0:
            raise ValueError("nudging.seed is not used: sampling follows --seed; remove the key")
        for name in ("n_seeds", "batch_size", "sweep_n", "uncertainty_n", "n_bootstrap"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.tasks:
            raise ValueError(f"tasks is empty; list some of {list(self.KNOWN_TASKS)}")
        unknown = [t for t in self.tasks if t not in self.KNOWN_TASKS]
        if unknown:
            raise ValueError(
                f"unknown task(s) {unknown} in tasks; the {self.SCALE} scale has {list(self.KNOWN_TASKS)}"
            )
        for name in ("cross_tasks", "sweep_tasks"):
            extra = [t for t in getattr(self, name) if t not in self.tasks]
            if extra:
                raise ValueError(f"{name} {extra} must be among tasks {list(self.tasks)}")
        if not self.sweep_tasks:
            raise ValueError("sweep_tasks is empty; name at least one of tasks for the gamma sweep")
        bad = [g for g in self.sweep_gammas if not 0.0 <= g <= 1.0]
        if bad or not self.sweep_gammas:
            raise ValueError(f"sweep_gammas must be probabilities in [0, 1], got {list(self.sweep_gammas)}")


@dataclass(frozen=True)
class TinySection(Evaluation):
    """Tiny scale: the setup (`TinyConfig`: world, two model families, training) and what is evaluated."""

    SCALE: ClassVar[str] = "tiny"
    KNOWN_TASKS: ClassVar[tuple[str, ...]] = TINY_TASKS

    n_seeds: int = 3
    batch_size: int = 64  # a task's items in one batch: tiny models decode at a per-step cost
    setup: tiny.TinyConfig = field(default_factory=tiny.TinyConfig)
    nudging: NudgingConfig = field(default_factory=lambda: NudgingConfig(gamma=0.3, max_new_tokens=128))
    tasks: tuple[str, ...] = TINY_TASKS
    cross_tasks: tuple[str, ...] = ("arithmetic", "fact_mc")
    sweep_tasks: tuple[str, ...] = ("arithmetic", "fact_mc")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.setup.families:
            raise ValueError("setup.families is empty; list at least one model family")


@dataclass(frozen=True)
class PaperSection(Evaluation):
    """Paper scale: the paper's three families, its cross-family pairs and 13 tasks (an OpenAI-compatible
    `judge_model` scores the open-ended ones; its key is read from $OPENAI_API_KEY)."""

    SCALE: ClassVar[str] = "paper"
    KNOWN_TASKS: ClassVar[tuple[str, ...]] = tuple(PAPER_TASKS)

    nudging: NudgingConfig = field(default_factory=lambda: NudgingConfig(max_new_tokens=512))
    batch_size: int = 8
    tasks: tuple[str, ...] = tuple(PAPER_TASKS)
    cross_tasks: tuple[str, ...] = ("gsm8k", "mmlu")
    sweep_tasks: tuple[str, ...] = ("gsm8k",)
    sweep_n: int = 200
    uncertainty_n: int = 100
    n_bootstrap: int = 2000
    families: tuple[PaperModels, ...] = PAPER_FAMILIES
    cross: tuple[tuple[str, str], ...] = (("Gemma-2", "Llama-2"), ("Gemma-2", "OLMo"))
    """(base family, nudging family) pairs of the cross-family table."""
    n: int | None = 1000
    """Items per task (a random subset seeded like the official loader); None: every item."""
    judge_model: str | None = "paper"  # per task as in the paper: GPT-4o for coin_flip and just-eval
    judge_base_url: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        names = [f.name for f in self.families]
        if not names:
            raise ValueError("families is empty; list the paper's model families ([[paper.families]])")
        for pair in self.cross:
            missing = [name for name in pair if name not in names]
            if missing:
                raise ValueError(f"cross pair {list(pair)} names {missing}, not among families {names}")
        if self.n is not None and self.n < 1:
            raise ValueError(f"n must be >= 1 or absent (every item), got {self.n}")


@dataclass(frozen=True)
class ReproduceConfig:
    """The reproduction's config: one section per scale (``[tiny]`` and ``[paper]`` in the TOML)."""

    tiny: TinySection = field(default_factory=TinySection)
    paper: PaperSection = field(default_factory=PaperSection)


def setup(section: TinySection | PaperSection, ctx: RunContext) -> NudgingSetup:
    """One seed's models and tasks: at tiny scale trained (or loaded from the cache) with ``ctx.seed``."""
    if isinstance(section, PaperSection):
        return pp.setup(section, ctx)
    return tiny.setup(section, ctx)


_TINY = ("tiny",)
EXPERIMENTS = [
    Experiment(
        "table_knowledge",
        ex.table_knowledge,
        "Knowledge on plain-text probes (%): greedy completion of '<name> lives in' / '<name> works as' "
        "for the evaluation people and of 'Problem: ...\\nSolution:' for the evaluation problems; "
        "arithmetic_after_opening: the evaluation problems on the plain prompt, continuing an aligned "
        "opening written for the model (what nudging asks of the base model)",
        keys=("family", "model"),
        scales=_TINY,
    ),
    Experiment(
        "table_knowledge_items",
        ex.table_knowledge_items,
        "Correctness (0/1) of every probed model on every probe (for the premise checks' paired intervals)",
        kind="items",
        scales=_TINY,
    ),
    Experiment(
        "table1",
        ex.table1,
        "Zero-shot accuracy (%) per task; nudging = large base + small aligned (Table 1 analogue)",
        keys=("family", "model"),
    ),
    Experiment(
        "table1_ci",
        ex.table1_ci,
        "Per-task accuracy (%) with 95% bootstrap confidence intervals",
        keys=("family", "model", "task"),
    ),
    Experiment(
        "table1_items",
        ex.table1_items,
        "Correctness (0/1) of every system on every item (for the paired intervals of the claims)",
        kind="items",
    ),
    Experiment(
        "table_run_on",
        ex.table_run_on,
        "Run-on after the answer: share of answers that go on past a blank line, accuracy as scored (the "
        "last 'answer is') and accuracy of the answers cut at their first blank line (%; a diagnostic)",
        keys=("family", "model"),
        scales=_TINY,
    ),
    Experiment("examples", ex.examples, "Example outputs (first two items per task)", kind="items"),
    Experiment(
        "table_cross_family",
        ex.table_cross_family,
        "Cross-family nudging: a base model of one family nudged by the small aligned model of another "
        "(accuracy %)",
        keys=("base", "nudger"),
    ),
    Experiment(
        "table_cross_family_items",
        ex.table_cross_family_items,
        "Correctness (0/1) per item of the base alone, the nudger alone and the cross-family nudging",
        kind="items",
    ),
    Experiment(
        "table_uncertainty",
        ex.table_uncertainty,
        "Base top-1 probability at positions where it agrees / disagrees with the large aligned model",
        keys=("family",),
    ),
    Experiment("figure_uncertainty", ex.figure_uncertainty, kind="figure"),
    Experiment(
        "table_gamma_sweep",
        ex.table_gamma_sweep,
        "Gamma sweep of the first family (tasks: sweep_tasks; the first sweep_n items of each)",
        keys=("family", "gamma"),
    ),
    Experiment(
        "table_gamma_sweep_items",
        ex.table_gamma_sweep_items,
        "The gamma sweep per item: correctness and nudged-token share (for the robustness claim)",
        kind="items",
    ),
    Experiment("figure_gamma_sweep", ex.figure_gamma_sweep, kind="figure"),
]

SPEC = PaperSpec(
    name="nudging",
    title="Nudging (arXiv 2410.09300)",
    config_class=ReproduceConfig,
    setup=setup,
    experiments=EXPERIMENTS,
    claims=claims,
    summary=SUMMARY,
    notes=notes,
    comparisons=comparisons,
    requirements=pp.requirements,
)
