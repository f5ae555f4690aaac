"""REPORT.md text: the summary, our numbers beside Table 2's, and notes on the run.

Every number is read from the run's tables (across-seed means), so the report never quotes a stale value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from efficientllm.claims import PAPER
from efficientllm.experiments import MAIN_ROWS, ONESHOT_ROW, PA_ROW, SCRATCH_ROW, UNIFORM_ROW
from reprokit.results import PaperComparison

if TYPE_CHECKING:
    from reprokit.reproduce import SeedResults

__all__ = ["SUMMARY", "comparisons", "notes"]

SUMMARY = (
    "Pruning-aware pretraining: a pretrained source keeps training while the least salient minimal "
    "parameter groups (attention heads, FFN channels, hidden channels), ranked globally by first-order "
    "Taylor saliency accumulated from the training step's own gradients, are removed every N steps until a "
    "target size; the resulting shape is exported as a smaller model and trained further. At tiny scale the "
    "source is a SmolLM-shaped llama of about a million parameters pretrained on a synthetic world; it is "
    "pruned to a quarter of its size, and every baseline gets the same final size and the same tokens."
)

#: Table 2 (arXiv 2502.06663) rows beside which ours are shown: Avg. of the 7 common-sense tasks, MMLU.
TABLE2 = {
    PA_ROW: "134M (500B tokens) 50.54 / 30.54; 469M (50B) 54.77 / 33.09; 1.1B (50B) 59.03 / 36.71",
    ONESHOT_ROW: "no same-source row; ShearedLlama-1.3B (pruned from Llama-2-7B, 50B tokens) 54.00 / 31.51",
    SCRATCH_ROW: "SmolLM-135M (600B tokens, from scratch) 49.87 / 30.05",
    UNIFORM_ROW: "not in the paper",
    MAIN_ROWS[0]: "source not reported (a SmolLM-1.7B is the likely source)",
}


def _cell(frame: pd.DataFrame, key: str, label: str, column: str, scale: float = 100.0) -> str:
    row = frame[frame[key] == label]
    if row.empty or column not in row:
        return "n/a"
    value = float(row[column].iloc[0]) * scale
    lo, hi = f"{column}_lo", f"{column}_hi"
    if lo in row and pd.notna(row[lo].iloc[0]):
        return f"{value:.1f} [{float(row[lo].iloc[0]) * scale:.1f}, {float(row[hi].iloc[0]) * scale:.1f}]"
    return f"{value:.1f}"


def comparisons(results: SeedResults, section: Any) -> list[PaperComparison]:
    """Our across-seed means beside Table 2 and Figure A."""
    main = results.mean("table_main")
    know = section.knowledge_task
    tiny = getattr(section, "SCALE", "tiny") == "tiny"
    note = "tiny: % accuracy, synthetic tasks" if tiny else ""
    out = [
        PaperComparison(
            f"{label}: Avg. / {know}",
            f"{_cell(main, 'method', label, 'average')} / {_cell(main, 'method', label, know)}",
            TABLE2[label],
            note,
        )
        for label in MAIN_ROWS
    ]
    scaling = results.mean("table_scaling")
    big = f"{section.scale_factor}x continued"
    out.append(
        PaperComparison(
            "continued training 1x -> more: Avg.",
            f"{_cell(scaling, 'stage', '1x continued', 'average')} -> "
            f"{_cell(scaling, 'stage', big, 'average')}",
            PAPER["scaling"],
            f"{section.scale_factor}x the continued-training tokens",
        )
    )
    order = results.mean("table_pruning_order")
    main_order = order[order["variant"] == "main"]
    shares = ", ".join(
        f"{t} {_cell(main_order, 'type', t, 'pruned_share')}%" for t in ("head", "ffn", "hidden")
    )
    out.append(
        PaperComparison("pruned share per type (main run)", shares, "heads 40.6%, FFN 63.4%, hidden 42.2%")
    )
    return out


def notes(results: SeedResults, section: Any) -> str:
    """Final shapes, the schedule, and where this run differs from the paper."""
    lines = []
    first = results.first("table_ablations")
    main = results.first("table_main")
    pa = main[main["method"] == PA_ROW]
    if not pa.empty:
        lines.append(
            f"- Size: the source has {int(main['params'].iloc[0]):,} parameters (embeddings included); the "
            f"pruning-aware model ends at {int(pa['params'].iloc[0]):,} (first seed), and every baseline is "
            "built or pruned to that size and trained on the same tokens."
        )
    if not first.empty:
        lines.append(
            "- Pruned shares per variant (first seed): "
            + "; ".join(
                f"{r.variant}: heads {r.head_pruned:.0%}, FFN {r.ffn_pruned:.0%}, "
                f"hidden {r.hidden_pruned:.0%}"
                for r in first.itertuples()
            )
            + "."
        )
    prune = section.prune
    lines.append(
        f"- Schedule: an event every N = {prune.every} steps removes {prune.fraction or 0:.1%} of the "
        f"remaining parameters (geometric; the paper's per-event budget is unknown), saliency "
        f"{prune.saliency}-order, normalised '{prune.normalize}', accumulated by {prune.accumulate}, "
        f"OBS {'on' if prune.obs else 'off'}, heads {prune.heads}."
    )
    lines.append(
        f"- Both phases: {section.phase1.steps} steps at a constant learning rate (pruning in the "
        f"pruning-aware arms), then {section.phase2.steps} steps of cosine decay with a fresh optimizer; "
        f"{section.phase1.batch_size} x {section.phase1.seq_len} tokens per step. The paper's learning-rate "
        "schedule, batch size and per-event budget are not published."
    )
    if getattr(section, "SCALE", "tiny") == "tiny":
        lines.append(
            "- The tiny tasks are synthetic analogues of the paper's (fact completion, place-country, "
            "arithmetic, counting, grammaticality, odd-one-out; a question-form knowledge test stands in for "
            "MMLU and is left out of the average, as MMLU is from the paper's Avg.)."
        )
    return "\n".join(lines)
