"""One function per table or figure of the reproduction: ``(setup, section) -> DataFrame | Figure``.

Both scales share this code; only the setup differs (`nudging.tiny.setup`: trained tiny families;
`nudging.paper.setup`: the paper's models and tasks). The runs several tables use are computed once
per seed and kept on the `nudging.evaluation.NudgingSetup`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nudging.evaluation import NudgingSetup
from nudging.prompts import base_prompt
from nudging.tasks import TaskItem, score
from reprokit.generation import generate_texts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nudging.reproduce import Evaluation
    from reprokit.lm import LanguageModel

__all__ = [
    "examples",
    "figure_gamma_sweep",
    "figure_uncertainty",
    "table1",
    "table1_ci",
    "table1_items",
    "table_cross_family",
    "table_cross_family_items",
    "table_gamma_sweep",
    "table_gamma_sweep_items",
    "table_knowledge",
    "table_knowledge_items",
    "table_run_on",
    "table_uncertainty",
    "uncertainty_summary",
]


# ------------------------------------------------------------------------------------------- Table 1
def table1(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """Table 1 analogue: accuracy (%) per task and family of base, small aligned, large aligned, nudging."""
    return pd.DataFrame.from_records(setup.accuracy[0])


def table1_ci(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """Per-task accuracy (%) with 95% bootstrap intervals (seeded with the run seed)."""
    return pd.DataFrame.from_records(setup.accuracy[1])


def table1_items(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """One row per family, system, task and item: its correctness (for paired intervals) and, for the
    nudging systems, the share of its answer's tokens the nudging model wrote."""
    rows = []
    for fam in setup.families:
        for system, by_task in setup.family_runs(fam).items():
            for t, run in by_task.items():
                for item, ok, share in zip(setup.tasks[t], run.correct, run.token_shares(), strict=True):
                    rows.append(
                        {
                            "family": fam.name,
                            "model": system,
                            "task": t,
                            "item": item.id,
                            "correct": ok,
                            "nudged_token_share": float(share),
                        }
                    )
    return pd.DataFrame(rows, columns=["family", "model", "task", "item", "correct", "nudged_token_share"])


def first_paragraph(text: str) -> str:
    """The text up to its first blank line: where a base model trained on a stream starts another text."""
    return text.strip().split("\n\n")[0]


def table_run_on(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """How much of each system's accuracy the run-on after an answer costs (rule-scored tasks only).

    A base model that never saw an end of text after an answer writes on into another text, and the
    rule-based scorer reads the last "answer is" it finds. Per family and system: the share of answers
    that run on past a blank line, the accuracy as scored (Table 1, mean over items of every task) and
    the accuracy of the answers cut at their first blank line. A diagnostic, not a claim of the paper.
    """
    rows = []
    for fam in setup.families:
        for system, by_task in setup.family_runs(fam).items():
            run_on, scored, cut = [], [], []
            for t, run in by_task.items():
                for item, text, ok in zip(setup.tasks[t], run.outputs, run.correct, strict=True):
                    if item.scoring in ("judge", "rating"):
                        continue
                    first = first_paragraph(text)
                    run_on.append(first != text.strip())
                    scored.append(float(ok))
                    cut.append(float(score(item, first)))
            if scored:
                rows.append(
                    {
                        "family": fam.name,
                        "model": system,
                        "run_on_%": 100 * float(np.mean(run_on)),
                        "accuracy": 100 * float(np.mean(scored)),
                        "accuracy_first_paragraph": 100 * float(np.mean(cut)),
                        "n": len(scored),
                    }
                )
    return pd.DataFrame.from_records(rows)


def examples(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """The first two items of every task: question, gold answer, and the base, nudging and large aligned
    answers."""
    rows = []
    for fam in setup.families:
        runs = setup.family_runs(fam)
        for t, items in setup.tasks.items():
            for i in range(min(2, len(items))):
                rows.append(
                    {
                        "family": fam.name,
                        "task": t,
                        "question": items[i].question,
                        "gold": items[i].answer,
                        "base": runs["base"][t].outputs[i],
                        "nudging": runs["nudging"][t].outputs[i],
                        "large_aligned": runs["large_aligned"][t].outputs[i],
                    }
                )
    return pd.DataFrame.from_records(rows)


# ---------------------------------------------------------------------------------------- knowledge
def arithmetic_after_opening(lm: LanguageModel, items: Sequence[TaskItem], section: Evaluation) -> list[bool]:
    """Per item: does a model answer the plain prompt right after an aligned opening is written for it?

    This is the situation nudging puts the base model in (the nudging model writes the opening, the
    base continues): does the base still solve the problem in the aligned style? Openings rotate over
    `reprokit.world.ALIGNED_OPENINGS`; the answer is scored like the tasks (last number) on the first
    line the model writes, as the probes are: a base model trained on a continuous stream runs on into
    another text after its answer, which is not a matter of knowledge.
    """
    from reprokit.world.chat import ALIGNED_OPENINGS

    openings = [ALIGNED_OPENINGS[i % len(ALIGNED_OPENINGS)] for i in range(len(items))]
    prompts = [base_prompt(i.question) + o for i, o in zip(items, openings, strict=True)]
    texts = generate_texts(
        lm,
        prompts,
        max_new_tokens=section.nudging.max_new_tokens,
        batch_size=section.batch_size,
    )
    return [bool(score(i, o + t.split("\n")[0])) for i, o, t in zip(items, openings, texts, strict=True)]


#: The models of a family whose knowledge is probed, by their row name in `table_knowledge`.
KNOWLEDGE_MODELS = {"large base": "base", "small base": "small_base", "large aligned": "large_aligned"}


def knowledge_items(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """One row per family, probed model, probe and item: correct (0/1) on the plain-text probes
    ("fact", "arithmetic") and on the arithmetic tasks continued after an aligned opening
    ("arithmetic_after_opening"); `known_to_small` marks facts on the small model's pages."""
    from nudging.tiny import probe_knowledge

    probes, arithmetic = setup.probes, setup.tasks.get("arithmetic", ())
    rows = []
    for fam in setup.families:
        for name, role in KNOWLEDGE_MODELS.items():
            lm = getattr(fam, role)
            if lm is None:
                continue
            ok = probe_knowledge(lm, probes, batch_size=section.batch_size)
            for i, (p, o) in enumerate(zip(probes, ok, strict=True)):
                rows.append((fam.name, name, p.kind, p.id or f"{p.kind}-{i}", float(o), p.known_to_small))
            if arithmetic:
                after = arithmetic_after_opening(lm, arithmetic, section)
                for item, o in zip(arithmetic, after, strict=True):
                    rows.append((fam.name, name, "arithmetic_after_opening", item.id, float(o), True))
    return pd.DataFrame(rows, columns=["family", "model", "probe", "item", "correct", "known_to_small"])


def table_knowledge_items(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """`knowledge_items` of the seed (for the premise checks' paired intervals)."""
    return setup.knowledge_items


def table_knowledge(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """Plain-text knowledge of each family's large base, small base and large aligned model.

    Facts: greedy completion of "<name> lives in" / "<name> works as" for the evaluation people; the
    `facts_read_by_small` column restricts to the people whose pages the small model read.
    Arithmetic: greedy completion of "Problem: <question>\\nSolution:" for the evaluation problems, and
    (`arithmetic_after_opening`) the same problems asked with the plain prompt, an aligned opening
    already written: the base model's skill where nudging relies on it. The large aligned row shows
    what the alignment fine-tune itself added.
    """
    items = setup.knowledge_items
    rows = []
    for (family, model), g in items.groupby(["family", "model"], sort=False):
        facts = g[g["probe"] == "fact"]
        arith = g[g["probe"] == "arithmetic"]
        after = g[g["probe"] == "arithmetic_after_opening"]
        rows.append(
            {
                "family": family,
                "model": model,
                "facts": _mean_pct(facts["correct"]),
                "facts_read_by_small": _mean_pct(facts["correct"][facts["known_to_small"].astype(bool)]),
                "arithmetic": _mean_pct(arith["correct"]),
                "arithmetic_after_opening": _mean_pct(after["correct"]),
                "n_facts": len(facts),
                "n_arithmetic": len(arith),
            }
        )
    return pd.DataFrame.from_records(rows)


def _mean_pct(values: pd.Series) -> float:
    """Percentage of true values (NaN when there are none)."""
    return 100 * float(values.mean()) if len(values) else float("nan")


# ------------------------------------------------------------------------------------------ cross-family
def table_cross_family(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """A base model of one family nudged by the small aligned model of another (accuracy %)."""
    rows = []
    for base_fam, nudge_fam in setup.cross_pairs:
        runs = setup.cross_runs[(base_fam.name, nudge_fam.name)]
        base_alone = setup.family_runs(base_fam)["base"]
        nudger_alone = setup.family_runs(nudge_fam)["small_aligned"]
        row: dict[str, Any] = {"base": base_fam.name, "nudger": nudge_fam.name}
        for t in section.cross_tasks:
            row[f"{t}_base"] = 100 * float(base_alone[t].correct.mean())
            row[f"{t}_nudger"] = 100 * float(nudger_alone[t].correct.mean())
            row[f"{t}_nudging"] = 100 * float(runs[t].correct.mean())
            row[f"{t}_nudged_tokens_%"] = 100 * float(runs[t].token_share.mean())
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def table_cross_family_items(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """One row per cross pair, task and item: correctness of the base alone, the nudger alone, nudging."""
    rows = []
    for base_fam, nudge_fam in setup.cross_pairs:
        runs = setup.cross_runs[(base_fam.name, nudge_fam.name)]
        base_alone = setup.family_runs(base_fam)["base"]
        nudger_alone = setup.family_runs(nudge_fam)["small_aligned"]
        for t in section.cross_tasks:
            for i, item in enumerate(setup.tasks[t]):
                rows.append(
                    {
                        "base": base_fam.name,
                        "nudger": nudge_fam.name,
                        "task": t,
                        "item": item.id,
                        "base_alone": base_alone[t].correct[i],
                        "nudger_alone": nudger_alone[t].correct[i],
                        "nudging": runs[t].correct[i],
                    }
                )
    columns = ["base", "nudger", "task", "item", "base_alone", "nudger_alone", "nudging"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------- uncertainty
_SUMMARY_KEYS = (
    "n",
    "disagree_share",
    "captured_at_0.5",
    "captured_at_0.5_style",
    "captured_at_0.5_content",
    "content_share_of_disagreements",
    "captured_at_gamma",
    "below_0.5_share",
    "below_gamma_share",
    "disagree_given_p1_below_0.1",
)


def uncertainty_summary(df: pd.DataFrame, gamma: float) -> dict[str, float]:
    """Shares behind the paper's 'base is uncertain where alignment changes its output' analysis."""
    if df.empty:
        return {k: float("nan") for k in _SUMMARY_KEYS}
    dis = df["rank"] > 1
    low = df["p1"] < 0.1
    content = df["content"].astype(bool) if "content" in df.columns else pd.Series(False, index=df.index)

    def captured(mask: pd.Series) -> float:
        return float((df.loc[mask, "p1"] < 0.5).mean()) if mask.any() else float("nan")

    return {
        "n": float(len(df)),
        "disagree_share": float(dis.mean()),
        "captured_at_0.5": captured(dis),
        "captured_at_0.5_style": captured(dis & ~content),
        "captured_at_0.5_content": captured(dis & content),
        "content_share_of_disagreements": float(content[dis].mean()) if dis.any() else float("nan"),
        "captured_at_gamma": float((df.loc[dis, "p1"] < gamma).mean()) if dis.any() else float("nan"),
        "below_0.5_share": float((df["p1"] < 0.5).mean()),
        "below_gamma_share": float((df["p1"] < gamma).mean()),
        "disagree_given_p1_below_0.1": float(dis[low].mean()) if low.any() else float("nan"),
    }


def table_uncertainty(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """Base top-1 probability where it agrees / disagrees with the large aligned model, per family."""
    rows = [
        {"family": fam.name, **uncertainty_summary(setup.agreement[fam.name], fam.gamma)}
        for fam in setup.families
    ]
    return pd.DataFrame.from_records(rows)


def figure_uncertainty(setup: NudgingSetup, section: Evaluation) -> Figure:
    """Histogram of base top-1 probability by agreement label, one panel per family."""
    from reprokit.results import new_figure

    frames = setup.agreement
    fig, axes = new_figure(1, len(frames), figsize=(4.2 * len(frames), 3.2), squeeze=False)
    bins = np.linspace(0, 1, 21)
    colors = {"agree": "#4c9a2a", "weakly disagree": "#f0a202", "disagree": "#c0392b"}
    for ax, (name, df) in zip(axes[0], frames.items(), strict=True):
        data = (
            [df.loc[df["label"] == lab, "p1"].to_numpy() for lab in colors]
            if len(df)
            else [[] for _ in colors]
        )
        ax.hist(data, bins=bins, stacked=True, color=list(colors.values()), label=list(colors))
        ax.set_yscale("log")
        ax.set_xlabel("base model top-1 probability")
        ax.set_title(name)
    axes[0][0].set_ylabel("positions of the large aligned answer")
    axes[0][0].legend(fontsize=7)
    return fig


# ------------------------------------------------------------------------------------------ gamma sweep
def table_gamma_sweep(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """Nudging accuracy and nudged-token share of the first family for each gamma of the sweep."""
    return setup.sweep


def table_gamma_sweep_items(setup: NudgingSetup, section: Evaluation) -> pd.DataFrame:
    """The gamma sweep per item (correct, nudged-token share), for the robustness claim's interval."""
    return setup.sweep_items


def figure_gamma_sweep(setup: NudgingSetup, section: Evaluation) -> Figure:
    """Accuracy and nudged-token share against gamma (the paper finds it robust in [0.2, 0.5])."""
    from reprokit.results import new_figure

    df = setup.sweep
    fig, ax = new_figure(figsize=(5, 3.2))
    ax.plot(df["gamma"], df["accuracy"], marker="o", label="nudging accuracy (%)")
    ax.plot(df["gamma"], df["nudged_tokens_%"], marker="s", label="nudged tokens (%)")
    ax.axhline(float(df["small_aligned"].iloc[0]), ls="--", color="grey", label="small aligned (%)")
    ax.axvspan(0.2, 0.5, color="#dddddd", alpha=0.5)
    ax.set_xlabel("gamma")
    ax.legend(fontsize=7)
    return fig
