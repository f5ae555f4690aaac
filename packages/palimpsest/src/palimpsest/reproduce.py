"""The reproduction's spec for the shared runner: config sections, setup, experiments, claims and report.

    python reproduce/palimpsest.py --scale tiny      # == python -m reprokit.reproduce palimpsest

The config has a ``tiny`` section (CPU, several seeds; it nests the tiny setup's `TinyConfig`) and a
``paper`` section (the paper's transcript and models; it nests the query test's `QueryConfig`), read
from ``reproduce/configs/palimpsest/<scale>.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from palimpsest import experiments as ex
from palimpsest import paper as pp
from palimpsest.claims import claims
from palimpsest.query import QueryConfig
from palimpsest.report import SUMMARY, comparisons, notes
from palimpsest.tiny import TinyConfig, TinySetup
from reprokit.errors import ConfigError
from reprokit.reproduce import Experiment, PaperSpec, RunContext

__all__ = ["SPEC", "PaperSection", "QueryFamily", "ReproduceConfig", "TinySection", "setup"]


@dataclass(frozen=True)
class TinySection:
    """Tiny scale: the setup (`TinyConfig`: world, models, training) and the sizes of the experiments."""

    SCALE: ClassVar[str] = "tiny"

    n_seeds: int = 3
    setup: TinyConfig = field(default_factory=TinyConfig)
    reference: str = "same-recipe"
    query_n: tuple[int, ...] = (100, 300, 1000)
    n_null_orders: int = 1000
    n_permutations: int = 999
    main_fraction: float = 0.1
    k: int = 19
    k_sweep: int = 9
    n_samples: int = 400
    sample_tokens: int = 32
    n_robustness_samples: int = 100
    token_grid: tuple[int, ...] = (100, 300, 1000, 3000, 10000)
    n_draws: int = 5
    ngram_samples: int = 1600  # Alice's samples for the n-gram test (the first n_samples are the reshuffle's)
    ngram_token_grid: tuple[int, ...] = (1000, 3000, 10000, 30000)
    ngram_max_n: int = 9  # the paper's longest span k + 1
    ngram_permutations: int = 499
    light_lr_fraction: float = 0.1  # a "light" fine-tune: at most this share of Alice's lr ...
    light_token_fraction: float = 0.1  # ... on at most this share of her tokens

    def __post_init__(self) -> None:
        names = [name for name, _, _ in self.setup.references]
        if self.reference not in names:
            raise ValueError(f"reference {self.reference!r} is not one of setup.references {names}")
        if self.main_fraction not in self.setup.retrain_fractions:
            raise ValueError(
                f"main_fraction {self.main_fraction} must be one of setup.retrain_fractions "
                f"{list(self.setup.retrain_fractions)} (Alice keeps a checkpoint only there)"
            )
        if not 1 <= self.k_sweep <= self.k:
            raise ValueError(f"k_sweep must lie in [1, k = {self.k}], got {self.k_sweep}")
        counts = (
            "n_seeds",
            "n_null_orders",
            "n_samples",
            "ngram_samples",
            "sample_tokens",
            "n_robustness_samples",
            "n_draws",
        )
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class QueryFamily:
    """Another training run's transcript with its own reference, suspects and nulls (``[[paper.families]]``).

    The query test runs on each family's transcript apart (its own positions and reference); the rows of
    every family share `table_query` and its Holm adjustment.
    """

    name: str
    subset: str
    transcript_tokenizer: str
    reference: str
    suspects: tuple[str, ...]
    nulls: tuple[str, ...] = ()
    transcript: str = "hij/sequence_samples"

    def __post_init__(self) -> None:
        if not self.suspects:
            raise ValueError(f"family {self.name!r}: suspects is empty; list its suspect models")
        if self.reference in self.suspects or self.reference in self.nulls:
            raise ValueError(
                f"family {self.name!r}: the reference {self.reference!r} is also listed as a suspect or "
                "null; a reference must be independent of the run's order"
            )


@dataclass(frozen=True)
class PaperSection:
    """Paper scale: the paper's transcript, suspects, references and OLMo-2 revisions (`query`: how
    examples are scored, and ``query.n`` how many are sampled).

    The top-level transcript, reference, suspects and nulls are the main family (`family`, also the one
    the reference ablation and the null calibration use); `families` adds other runs (OLMo, the
    non-deduplicated Pile). The OLMo-2 ingredient test prompts with the first `olmo_prompt_tokens`
    tokens of `olmo_prompt_dataset` stories, as the official code does (empty dataset: bos-only prompts).
    """

    SCALE: ClassVar[str] = "paper"

    n_seeds: int = 1
    family: str = "pythia-deduped"
    transcript: str = "hij/sequence_samples"
    subset: str = "pythia_deduped_100k"
    transcript_tokenizer: str = "EleutherAI/pythia-6.9b-deduped"
    query: QueryConfig = field(default_factory=lambda: QueryConfig(n=100_000, batch_size=32, retokenize=True))
    suspects: tuple[str, ...] = ()
    reference: str = "EleutherAI/pythia-6.9b"
    nulls: tuple[str, ...] = ()
    families: tuple[QueryFamily, ...] = ()
    ablation_suspect: str = "EleutherAI/pythia-6.9b-deduped"
    ablation_references: tuple[str, ...] = ()
    ablation_n: tuple[int, ...] = (1000, 4000, 10000)
    n_null_orders: int = 1000
    olmo_model: str = "allenai/OLMo-2-0425-1B"
    olmo_revisions: tuple[str, ...] = ()
    olmo_samples: int = 100
    olmo_tokens: int = 32
    olmo_prompt_dataset: str = "roneneldan/TinyStories"
    olmo_prompt_split: str = "validation"
    olmo_prompt_tokens: int = 20

    def __post_init__(self) -> None:
        names = [self.family, *(f.name for f in self.families)]
        if len(set(names)) != len(names):
            raise ValueError(f"family names must be distinct, got {names}")
        if self.olmo_prompt_tokens < 1:
            raise ValueError(f"olmo_prompt_tokens must be >= 1, got {self.olmo_prompt_tokens}")
        if self.query.seed != 0:
            raise ValueError("query.seed is not used: the transcript sample follows --seed; remove the key")
        if 0 < len(self.olmo_revisions) < 3:
            raise ValueError(
                f"olmo_revisions lists {len(self.olmo_revisions)} revision(s); the ingredient test needs "
                "at least 3 (one suspect, two candidates) or none"
            )
        if self.n_seeds < 1 or self.n_null_orders < 1:
            raise ValueError("n_seeds and n_null_orders must be >= 1")


@dataclass(frozen=True)
class ReproduceConfig:
    """The reproduction's config: one section per scale (``[tiny]`` and ``[paper]`` in the TOML)."""

    tiny: TinySection = field(default_factory=TinySection)
    paper: PaperSection = field(default_factory=PaperSection)


def setup(section: TinySection | PaperSection, ctx: RunContext) -> ex.TinyRun | pp.PaperRun:
    """One seed's setup: at tiny scale every model trained (or loaded from the cache) with ``ctx.seed``."""
    if isinstance(section, PaperSection):
        if not section.suspects:
            raise ConfigError("[paper] suspects is empty; list the suspect models (hub ids or folders).")
        return pp.PaperRun(section, ctx)
    models = TinySetup(section.setup, seed=ctx.seed, cache_dir=ctx.cache_dir)
    models.build()
    return ex.TinyRun(section, models)


_TINY, _PAPER = ("tiny",), ("paper",)
_QUERY_KEYS = ("suspect", "kind", "reference")
_QUERY_CAPTION = "Query test: one row per suspect; Holm-adjusted log10 p over all rows."
_ABLATION_CAPTION = "log10 p of {} for references of different quality."
_NULL_CAPTION = "False-positive rates under H0 with 95% Clopper-Pearson CIs; KS test of uniformity."

EXPERIMENTS = [
    Experiment("table_query", ex.table_query, _QUERY_CAPTION, keys=_QUERY_KEYS, scales=_TINY),
    Experiment(
        "table_reference_ablation",
        ex.table_reference_ablation,
        _ABLATION_CAPTION.format("Alice"),
        keys=("reference",),
        scales=_TINY,
    ),
    Experiment(
        "table_null_calibration", ex.table_null_calibration, _NULL_CAPTION, keys=("source",), scales=_TINY
    ),
    Experiment("figure_null_qq", ex.figure_null_qq, kind="figure", scales=_TINY),
    Experiment("figure1", ex.figure1, kind="figure", scales=_TINY),
    Experiment(
        "table_reshuffle_tokens",
        ex.table_reshuffle_tokens,
        "Reshuffle test: median p against suspect tokens.",
        keys=("retrain_fraction", "k", "target"),
        scales=_TINY,
    ),
    Experiment(
        "table_reshuffle_fraction",
        ex.table_reshuffle_fraction,
        "Reshuffle test against retrain fraction.",
        keys=("retrain_fraction", "k", "target"),
        scales=_TINY,
    ),
    Experiment(
        "table_finetune_robustness",
        ex.table_finetune_robustness,
        "Reshuffle (and query) p for Bob = derived/null.",
        keys=("suspect", "kind"),
        scales=_TINY,
    ),
    Experiment(
        "table_ngram_tokens",
        ex.table_ngram_tokens,
        "n-gram test: median permutation p against suspect tokens.",
        keys=("target",),
        scales=_TINY,
    ),
    Experiment("figure_tokens", ex.figure_tokens, kind="figure", scales=_TINY),
    Experiment(
        "table_query",
        pp.paper_table_query,
        "Query test on the paper's models; Holm-adjusted log10 p over all rows.",
        keys=_QUERY_KEYS,
        scales=_PAPER,
    ),
    Experiment(
        "table_reference_ablation",
        pp.paper_table_reference_ablation,
        _ABLATION_CAPTION.format("the ablation suspect"),
        keys=("reference",),
        scales=_PAPER,
    ),
    Experiment(
        "table_null_calibration",
        pp.paper_table_null_calibration,
        _NULL_CAPTION,
        keys=("source",),
        scales=_PAPER,
    ),
    Experiment(
        "table_olmo_ingredients",
        pp.paper_table_olmo_ingredients,
        "OLMo-2 stage-2 ingredients: reshuffle test of each one's samples against the others.",
        keys=("bob",),
        scales=_PAPER,
    ),
]

SPEC = PaperSpec(
    name="palimpsest",
    title="Palimpsest (arXiv 2510.19796)",
    config_class=ReproduceConfig,
    setup=setup,
    experiments=EXPERIMENTS,
    claims=claims,
    summary=SUMMARY,
    notes=notes,
    comparisons=comparisons,
    requirements=pp.paper_requirements,
)
