"""REPORT.md's text: the summary, the paper's numbers beside ours, and notes computed from the run.

Every number in the notes and comparisons is read from this run's tables (across-seed means when there
are several seeds), so the report never quotes a stale measurement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nudging.evaluation import SYSTEMS
from nudging.tasks import TINY_ANALOGUES
from reprokit.results import PaperComparison

if TYPE_CHECKING:
    from nudging.reproduce import Evaluation
    from reprokit.reproduce import SeedResults

__all__ = ["PAPER_AVG", "PAPER_CROSS", "SUMMARY", "comparisons", "notes"]

#: Table 1 of the paper: family -> (base, small aligned, large aligned, nudging) average accuracy (11 tasks).
PAPER_AVG = {
    "Llama-2": (33.8, 42.5, 56.7, 57.9),
    "Gemma-2": (12.4, 55.7, 74.4, 70.3),
    "OLMo": (28.9, 31.3, 39.2, 40.8),
}
#: The paper's cross-family table, its best pair on GSM8K: base alone / nudger alone / nudging.
PAPER_CROSS = "Gemma-2-27b + Llama-2-7b-chat on GSM8K: 7.0 / 22.0 / 65.0"

SUMMARY = (
    "A large base model nudged by a small aligned model against the base alone, the small aligned and the "
    "large aligned model (Table 1), across model families, where the base model is uncertain, and over "
    "gamma. Greedy decoding; accuracies in %, 95% bootstrap intervals over items in `table1_ci`. The "
    "paper's numbers are on real 7B-70B models and 11 tasks; only directions and rough magnitudes are "
    "comparable."
)


def _rows(frame: pd.DataFrame, *keys: str) -> dict[Any, dict[str, Any]]:
    """Rows of `frame` keyed by the values of `keys` (a tuple when several)."""
    out = {}
    for record in frame.to_dict("records"):
        key = tuple(record[k] for k in keys)
        out[key[0] if len(key) == 1 else key] = record
    return out


def _seeds_note(results: SeedResults) -> str:
    n = len(results.seeds)
    return "" if n == 1 else f"mean of {n} seeds"


def comparisons(results: SeedResults, section: Evaluation) -> list[PaperComparison]:
    """Our averages, cross-family accuracies and uncertainty shares beside the paper's."""
    note = _seeds_note(results)
    paper_avg = "; ".join(f"{k}: {' / '.join(str(v) for v in vals)}" for k, vals in PAPER_AVG.items())
    t1 = _rows(results.mean("table1"), "family", "model")
    out = []
    for family in dict.fromkeys(f for f, _ in t1):
        ours = " / ".join(f"{t1[(family, m)]['avg']:.1f}" for m in SYSTEMS)
        item = f"{family}: average accuracy base / small aligned / large aligned / nudging"
        out.append(PaperComparison(item, ours, paper_avg, note))
    task = section.cross_tasks[0] if section.cross_tasks else None
    for row in results.mean("table_cross_family").to_dict("records") if task else ():
        ours = f"{row[f'{task}_base']:.1f} / {row[f'{task}_nudger']:.1f} / {row[f'{task}_nudging']:.1f}"
        item = f"cross-family {row['base']} + {row['nudger']} on {task}: base / nudger / nudging"
        out.append(PaperComparison(item, ours, PAPER_CROSS, note))
    for row in results.mean("table_uncertainty").to_dict("records"):
        ours = f"{100 * row['captured_at_0.5']:.1f}% / {100 * row['below_0.5_share']:.1f}%"
        item = f"{row['family']}: disagreement positions with p1 < 0.5 / all positions with p1 < 0.5"
        out.append(PaperComparison(item, ours, "> 80% / about 11%", note))
    return out


def _setup_line(results: SeedResults, section: Evaluation) -> str:
    families = list(dict.fromkeys(results.first("table1")["family"]))
    tasks = (
        ", ".join(f"{t} ({TINY_ANALOGUES[t]})" for t in section.tasks)
        if section.SCALE == "tiny"
        else ", ".join(section.tasks)
    )
    seeds = results.seeds
    seed_text = (
        f"seed {seeds[0]}"
        if len(seeds) == 1
        else f"{len(seeds)} seeds ({seeds[0]}..{seeds[-1]}; the world, training and evaluation change with "
        "the seed): tables show the across-seed mean with a 95% t-interval (`_lo` / `_hi`), one row per seed "
        "in `<table>_per_seed`"
    )
    own = {f.name: f.gamma for f in getattr(section, "families", ()) if hasattr(f, "gamma")}
    gamma = (
        "gamma per family: " + ", ".join(f"{name} {own[name]:g}" for name in families if name in own)
        if own and all(name in own for name in families)
        else f"gamma {section.nudging.gamma}"
    )
    return (
        f"- Setup: scale `{section.SCALE}`; tasks: {tasks}; families: {', '.join(families)}; {gamma} "
        f"(sweep on {families[0]}); greedy decoding, at most "
        f"{section.nudging.max_new_tokens} new tokens; {seed_text}."
    )


def _knowledge_line(knowledge: Mapping[tuple[str, str], Mapping[str, Any]]) -> str:
    parts = []
    for family in dict.fromkeys(f for f, _ in knowledge):
        big, small = knowledge.get((family, "large base")), knowledge.get((family, "small base"))
        if big and small:
            parts.append(
                f"{family}: large base {big['facts']:.0f}% of facts and {big['arithmetic']:.0f}% of "
                f"problems, small base {small['facts']:.0f}% and {small['arithmetic']:.0f}% (on the "
                f"facts of the people it read: {small['facts_read_by_small']:.0f}%)"
            )
    return (
        "- Knowledge (`table_knowledge`, plain-text probes, greedy): " + "; ".join(parts) + ". The "
        "paper's premise that the large base model knows more than the small aligned one is checked "
        "here directly, not assumed."
    )


def _gap_line(
    family: str, big: Mapping[str, Any], tuned: Mapping[str, Any], b: Mapping, la: Mapping, n: Mapping
) -> str:
    """Where the arithmetic gap between nudging and the large aligned model comes from."""
    return (
        f"- Arithmetic in the aligned style ({family}): the large base model solves "
        f"{big['arithmetic']:.0f}% of the evaluation problems in textbook form and "
        f"{big['arithmetic_after_opening']:.0f}% when it continues an aligned opening on the plain "
        f"prompt, which is what nudging asks of it. Nudging scores {n['arithmetic']:.0f}% and the "
        f"base alone {b['arithmetic']:.0f}%. The large aligned model scores {la['arithmetic']:.0f}% "
        f"in its own chat format, but {tuned['arithmetic_after_opening']:.0f}% when it too continues "
        f"an aligned opening on the plain prompt (and {tuned['arithmetic']:.0f}% on the textbook "
        f"probes). The {la['arithmetic'] - n['arithmetic']:.1f}-point gap to the large aligned model "
        f"splits into {la['arithmetic'] - tuned['arithmetic_after_opening']:.1f} points of chat "
        "format (the aligned model on its chat prompt vs. on the plain prompt), "
        f"{tuned['arithmetic_after_opening'] - big['arithmetic_after_opening']:.1f} points the "
        "fine-tune added on the plain prompt, and "
        f"{big['arithmetic_after_opening'] - n['arithmetic']:.1f} points between the base model's "
        "own answers after an opening and nudging's."
    )


def _run_on_line(run_on: Mapping[tuple[str, str], Mapping[str, Any]]) -> str:
    """What the run-on after an answer costs base-alone and nudged answers (`table_run_on`)."""
    parts = []
    for family in dict.fromkeys(f for f, _ in run_on):
        b, n = run_on.get((family, "base")), run_on.get((family, "nudging"))
        if not (b and n):
            continue
        parts.append(
            f"{family}: {b['run_on_%']:.0f}% of base-alone and {n['run_on_%']:.0f}% of nudged answers run "
            f"on; nudging - base {n['accuracy'] - b['accuracy']:+.1f} points as scored, "
            f"{n['accuracy_first_paragraph'] - b['accuracy_first_paragraph']:+.1f} with every answer cut "
            "at its first blank line"
        )
    return (
        "- Run-on (`table_run_on`, a diagnostic): base models pretrained on one continuous stream write "
        "on into another text after an answer, and the scorer reads the last 'answer is'. "
        + "; ".join(parts)
        + ". The part of nudging's margin over the base model that disappears on the cut answers comes "
        "from where the answers stop, not from better content."
    )


def _fmt(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def notes(results: SeedResults, section: Evaluation) -> str:
    """The report's notes, every number taken from this run's tables."""
    from nudging.claims import claims

    lines = [
        _setup_line(results, section),
        "- Claims are measured and marked, never tuned per run: a claim that does not hold at this scale "
        "is reported as not holding. A claim holds on its point estimate and, separately, on its whole 95% "
        "interval, from the items of every seed stacked (paired bootstrap over items for two systems, two "
        "conditions or several gammas on the same items, a bootstrap over answers for the nudged share, "
        "exact binomial for a rate).",
        "- Nudged share: `nudged_tokens_%` counts every base-tokenizer token that starts inside a nudging "
        "segment, the final EOS-ending segment included; `nudged_words_%` is the official measure (words, "
        "final segment excluded).",
        "- Uncertainty analysis: positions of the large aligned model's own greedy answers, scored by the "
        "base model on the plain prompt (same tokenizer); 'disagree' = the aligned token is not the base "
        "model's top-1.",
    ]
    knowledge = (
        _rows(results.mean("table_knowledge"), "family", "model")
        if "table_knowledge" in results.frames
        else {}
    )
    if knowledge:
        lines.append(_knowledge_line(knowledge))
    t1 = _rows(results.mean("table1"), "family", "model")
    for family in dict.fromkeys(f for f, _ in t1):
        b, s, la, n = (t1.get((family, m)) for m in SYSTEMS)
        if not (b and s and la and n):
            continue
        big, tuned = knowledge.get((family, "large base")), knowledge.get((family, "large aligned"))
        if big and tuned and np.isfinite(big.get("arithmetic_after_opening", np.nan)) and "arithmetic" in n:
            lines.append(_gap_line(family, big, tuned, b, la, n))
        best = max(section.tasks, key=lambda t, n=n, b=b: n[t] - b[t])
        lines.append(
            f"- {family}: average accuracy base {b['avg']:.1f}, small aligned {s['avg']:.1f}, large aligned "
            f"{la['avg']:.1f}, nudging {n['avg']:.1f} (nudged words {n['nudged_words_%']:.1f}%, tokens "
            f"{n['nudged_tokens_%']:.1f}%); nudging's largest gain over the base is on {best} "
            f"({n[best] - b[best]:+.1f} points)."
        )
    if "table_run_on" in results.frames:
        lines.append(_run_on_line(_rows(results.mean("table_run_on"), "family", "model")))
    checked = claims(results, section)
    premise = [c for c in checked if c.sanity]
    if premise:
        broken = [c for c in premise if not c.holds]
        lines.append(
            "- The paper's premise, checked before its claims (sanity checks, outside the claim count): "
            + (
                "it holds here."
                if not broken
                else "it does not hold everywhere here, so read the claims with it: "
                + "; ".join(f"`{c.id}` (measured {_fmt(c.measured)}, expected {c.expected})" for c in broken)
                + "."
            )
        )
    verdicts = [c for c in checked if not c.sanity]
    failing = [c for c in verdicts if not c.holds]
    unsure = [c for c in verdicts if c.holds and c.holds_interval is False]
    if failing:
        text = "- Not holding at this scale: " + "; ".join(
            f"`{c.id}` (measured {_fmt(c.measured)}, expected {c.expected})" for c in failing
        )
        if section.SCALE == "tiny":
            text += (
                ". Tiny models (about 0.2M-1M parameters, minutes of CPU training) copy names and numbers "
                "from the question less reliably than the paper's 7B-70B models, so the base model is also "
                "uncertain at some content positions, where the weaker small model then writes (see "
                "`examples.csv`)"
            )
        lines.append(text + ".")
    else:
        lines.append("- Every claim holds at this scale on its point estimate.")
    if unsure:
        lines.append(
            "- Holding on the point estimate but not on the whole interval: "
            + "; ".join(
                f"`{c.id}` (interval {_fmt(c.interval[0])} to {_fmt(c.interval[1])})"
                for c in unsure
                if c.interval
            )
            + "."
        )
    return "\n".join(lines)
