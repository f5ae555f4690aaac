"""The paper-scale setup: the paper's model families (hub ids) and tasks, and what the preflight must find.

The model ids follow the paper's tables; the OLMo 1B instruct checkpoint is the closest public match
(the paper names it "OLMo-1b-instruct" without an id). The cross-family table nudges Gemma-2-27b with
Llama-2-7b-chat (a small aligned model) and with OLMo-7b-it (OLMo's *large* aligned model), as the
paper does (`PAPER_CROSS_PAIRS`). Aligned models are prompted with the official code's hand-written
template of their family (`template="official"`; "chat" uses the tokenizer's chat template).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from nudging.prompts import TEMPLATE_CHOICES

if TYPE_CHECKING:
    from nudging.evaluation import NudgingSetup
    from nudging.reproduce import PaperSection
    from reprokit.reproduce import Requirement, RunContext

__all__ = [
    "PAPER_CROSS_PAIRS",
    "PAPER_FAMILIES",
    "CrossPair",
    "PaperModels",
    "cross_nudger_role",
    "requirements",
    "setup",
]

#: Which of a family's aligned models nudges in a cross-family pair.
NudgerRole = Literal["small_aligned", "large_aligned"]


@dataclass(frozen=True)
class PaperModels:
    """One paper family: hub ids of the base, small aligned and large aligned models, its gamma, the
    prompt template of its aligned models ("official": the official hand-written one; "chat") and the
    small base model (the proxy-tuning anti-expert; None: no proxy tuning for the family)."""

    name: str
    base: str
    small_aligned: str
    large_aligned: str
    gamma: float
    template: str = "official"
    small_base: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"family {self.name!r}: gamma must be in [0, 1], got {self.gamma}")
        if self.template not in TEMPLATE_CHOICES:
            raise ValueError(
                f"family {self.name!r}: template must be one of {list(TEMPLATE_CHOICES)}, "
                f"got {self.template!r}"
            )

    @property
    def model_ids(self) -> tuple[str, str, str]:
        """(base, small aligned, large aligned)."""
        return (self.base, self.small_aligned, self.large_aligned)


#: The paper's three families (Table 1) with the gamma the paper uses for each; the small base models
#: (proxy tuning's anti-experts) are the bases of the small aligned models.
PAPER_FAMILIES = (
    PaperModels(
        "Llama-2",
        "meta-llama/Llama-2-70b-hf",
        "meta-llama/Llama-2-7b-chat-hf",
        "meta-llama/Llama-2-70b-chat-hf",
        0.4,
        small_base="meta-llama/Llama-2-7b-hf",
    ),
    PaperModels(
        "Gemma-2",
        "google/gemma-2-27b",
        "google/gemma-2-2b-it",
        "google/gemma-2-27b-it",
        0.3,
        small_base="google/gemma-2-2b",
    ),
    PaperModels(
        "OLMo",
        "allenai/OLMo-7B-0724-hf",
        "hamishivi/OLMo-1B-0724-Instruct-hf",
        "allenai/OLMo-7B-0724-Instruct-hf",
        0.3,
        small_base="allenai/OLMo-1B-0724-hf",
    ),
)


@dataclass(frozen=True)
class CrossPair:
    """A cross-family pair: the base model of `base` nudged by the `role` aligned model of `nudger`."""

    base: str
    nudger: str
    role: NudgerRole = "small_aligned"


#: The paper's cross-family table: Gemma-2-27b + Llama-2-7b-chat, and Gemma-2-27b + OLMo-7b-it (OLMo's
#: 7B instruct model, not the 1B nudger of Table 1).
PAPER_CROSS_PAIRS = (
    CrossPair("Gemma-2", "Llama-2", "small_aligned"),
    CrossPair("Gemma-2", "OLMo", "large_aligned"),
)


def cross_nudger_role(base: str, nudger: str) -> NudgerRole:
    """Which aligned model of family `nudger` nudges family `base`'s base model (the paper's pairs; a
    pair the paper does not have uses the small aligned model)."""
    for pair in PAPER_CROSS_PAIRS:
        if (pair.base, pair.nudger) == (base, nudger):
            return pair.role
    return "small_aligned"


def requirements(section: PaperSection) -> list[Requirement]:
    """Every model and data set the paper section names, for the preflight."""
    from nudging.tasks import PAPER_TASKS
    from reprokit.reproduce import Requirement

    models = [
        Requirement("model", model_id, why=f"{fam.name} {role}")
        for fam in section.families
        for role, model_id in zip(("base", "small aligned", "large aligned"), fam.model_ids, strict=True)
    ]
    models += [
        Requirement("model", fam.small_base, why=f"{fam.name} small base (proxy-tuning anti-expert)")
        for fam in section.families
        if fam.small_base
    ]
    datasets = [Requirement("dataset", PAPER_TASKS[t].dataset, why=f"task {t}") for t in section.tasks]
    return models + datasets


def setup(section: PaperSection, ctx: RunContext) -> NudgingSetup:
    """Load every family's models (safetensors, `ctx.device` / `ctx.dtype`): base, small and large aligned
    and, where named, the small base (proxy tuning); the tasks and the judge."""
    from nudging.evaluation import Family, NudgingSetup
    from nudging.tasks import OpenAIJudge, load_paper_task
    from reprokit.lm import load_lm

    def load(model_id: str):
        return load_lm(model_id, dtype=ctx.dtype, device=ctx.device)

    # the cheap checks first: a missing judge key or a broken task fails before any weights are loaded
    tasks = {t: tuple(load_paper_task(t, n=section.n)) for t in section.tasks}
    judge = OpenAIJudge(section.judge_model, base_url=section.judge_base_url) if section.judge_model else None
    families = []
    for f in section.families:
        ctx.log("loading the %s family", f.name)
        small_base = load(f.small_base) if f.small_base else None
        families.append(
            Family(
                f.name,
                load(f.base),
                load(f.small_aligned),
                load(f.large_aligned),
                f.gamma,
                small_base,
                template=f.template,
                nudger_prefix=None,  # the item's own prefix ("Question: "), as the official code
            )
        )
    by_name = {f.name: f for f in families}
    pairs = [(by_name[a], by_name[b]) for a, b in section.cross]
    return NudgingSetup(ctx, section, families, tasks, cross_pairs=pairs, judge=judge)
