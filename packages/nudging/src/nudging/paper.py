"""The paper-scale setup: the paper's model families (hub ids) and tasks, and what the preflight must find.

The model ids follow the paper's tables; the OLMo 1B instruct checkpoint is the closest public match
(the paper names it "OLMo-1b-instruct" without an id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nudging.evaluation import NudgingSetup
    from nudging.reproduce import PaperSection
    from reprokit.reproduce import Requirement, RunContext

__all__ = ["PAPER_FAMILIES", "PaperModels", "requirements", "setup"]


@dataclass(frozen=True)
class PaperModels:
    """One paper family: hub ids of the base, small aligned and large aligned models, and its gamma."""

    name: str
    base: str
    small_aligned: str
    large_aligned: str
    gamma: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"family {self.name!r}: gamma must be in [0, 1], got {self.gamma}")

    @property
    def model_ids(self) -> tuple[str, str, str]:
        """(base, small aligned, large aligned)."""
        return (self.base, self.small_aligned, self.large_aligned)


#: The paper's three families (Table 1) with the gamma the paper uses for each.
PAPER_FAMILIES = (
    PaperModels(
        "Llama-2",
        "meta-llama/Llama-2-70b-hf",
        "meta-llama/Llama-2-7b-chat-hf",
        "meta-llama/Llama-2-70b-chat-hf",
        0.4,
    ),
    PaperModels("Gemma-2", "google/gemma-2-27b", "google/gemma-2-2b-it", "google/gemma-2-27b-it", 0.3),
    PaperModels(
        "OLMo",
        "allenai/OLMo-7B-0724-hf",
        "hamishivi/OLMo-1B-0724-Instruct-hf",
        "allenai/OLMo-7B-0724-Instruct-hf",
        0.3,
    ),
)


def requirements(section: PaperSection) -> list[Requirement]:
    """Every model and data set the paper section names, for the preflight."""
    from nudging.tasks import PAPER_TASKS
    from reprokit.reproduce import Requirement

    models = [
        Requirement("model", model_id, why=f"{fam.name} {role}")
        for fam in section.families
        for role, model_id in zip(("base", "small aligned", "large aligned"), fam.model_ids, strict=True)
    ]
    datasets = [Requirement("dataset", PAPER_TASKS[t].dataset, why=f"task {t}") for t in section.tasks]
    return models + datasets


def setup(section: PaperSection, ctx: RunContext) -> NudgingSetup:
    """Load every family's three models (safetensors, `ctx.device` / `ctx.dtype`), the tasks and the judge."""
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
        families.append(Family(f.name, load(f.base), load(f.small_aligned), load(f.large_aligned), f.gamma))
    by_name = {f.name: f for f in families}
    pairs = [(by_name[a], by_name[b]) for a, b in section.cross]
    return NudgingSetup(ctx, section, families, tasks, cross_pairs=pairs, judge=judge)
