"""The paper's claims, checked on a run's tables: ``claims(results, section) -> [Claim]``.

Every claim is a number measured once per seed and judged on its across-seed mean with a Student-t 95%
interval (`Claim.across_seeds`). Comparisons between methods are per-seed differences of the common-sense
average (the paper's "Avg."), so the same world and source enter both sides. The bounds (zero, or the
pruned share of another type) were fixed before the first run from the paper's statements, not tuned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from efficientllm.experiments import ONESHOT_ROW, PA_ROW, SCRATCH_ROW, UNIFORM_ROW
from reprokit.results import Claim

if TYPE_CHECKING:
    from reprokit.reproduce import SeedResults

__all__ = ["PAPER", "claims"]

#: The paper's numbers (arXiv 2502.06663: Table 2, Figures 1(c) and A, through the brief), beside ours.
PAPER: dict[str, str] = {
    "post_training": "post-training pruning (LLM-Pruner/SparseGPT style) of Llama-7B degrades much more than "
    "pruning-aware pretraining (exact numbers not retrievable); 1.1B: 59.03 Avg vs Sheared-LLaMA-1.3B 54.00 "
    "at the same 50B continued tokens",
    "scratch": "134M: 50.54 Avg vs SmolLM-135M 50.54-0.67 = 49.87 (trained from scratch on 600B tokens)",
    "uniform": "auto-designed shapes (d_model ~1180, 19 heads, FFN ~3000 for 469M) vs hand-designed ones; "
    "no same-size uniform ablation is reported",
    "scaling": "469M: 54.77 -> 57.35 Avg (50B -> 500B tokens); 1.1B: 59.03 -> 60.75 (50B -> 320B)",
    "order": "Figure A: heads cut first (12.5% within ~3B tokens), FFN from ~3B tokens (to ~63%), hidden "
    "channels last, from ~44.5B tokens (to ~42%)",
}
_SOURCE_TABLE = "arXiv 2502.06663, Table 2"
_SOURCE_FIG_A = "arXiv 2502.06663, Figure A (appendix), measured from the figure's pixels in the brief"


def _arr(results: SeedResults, table: str, column: str, **where: Any) -> np.ndarray:
    return np.asarray(results.values(table, column, **where), dtype=float)


def _diff(results: SeedResults, a: str, b: str) -> list[float]:
    return (
        _arr(results, "table_main", "average", method=a) - _arr(results, "table_main", "average", method=b)
    ).tolist()


def claims(results: SeedResults, section: Any) -> list[Claim]:
    """Every claim the run can test, each with its per-seed values and interval."""
    out = [
        Claim.across_seeds(
            "pa_beats_post_training",
            "Pruning-aware training beats one-shot post-training pruning (then the same training) at equal "
            "size and tokens: difference of the common-sense average",
            _diff(results, PA_ROW, ONESHOT_ROW),
            ">",
            0.0,
            paper_value=PAPER["post_training"],
            source=_SOURCE_TABLE,
        ),
        Claim.across_seeds(
            "pa_beats_scratch",
            "Pruning-aware training beats the same shape trained from scratch on the same tokens: difference "
            "of the common-sense average",
            _diff(results, PA_ROW, SCRATCH_ROW),
            ">",
            0.0,
            paper_value=PAPER["scratch"],
            source=_SOURCE_TABLE,
        ),
        Claim.across_seeds(
            "auto_shape_beats_uniform",
            "The auto-designed shape beats a uniform fixed-ratio shape of the same size, both trained from "
            "scratch on the same tokens: difference of the common-sense average",
            _diff(results, SCRATCH_ROW, UNIFORM_ROW),
            ">",
            0.0,
            paper_value=PAPER["uniform"],
            source="arXiv 2502.06663, Section 3 (architecture auto-design)",
        ),
    ]
    big = f"{section.scale_factor}x continued"
    gain = _arr(results, "table_scaling", "average", stage=big) - _arr(
        results, "table_scaling", "average", stage="1x continued"
    )
    out.append(
        Claim.across_seeds(
            "more_continued_training_helps",
            f"More continued training helps the pruned model: common-sense average after {big} minus after "
            "1x",
            gain.tolist(),
            ">",
            0.0,
            paper_value=PAPER["scaling"],
            source=_SOURCE_TABLE,
        )
    )
    order = "table_pruning_order"
    heads_first = _arr(results, order, "first_pruned_tokens", variant="main", type="head")
    ffn_first = _arr(results, order, "first_pruned_tokens", variant="main", type="ffn")
    # a type never pruned counts as pruned after the stage's last token (a finite, measured bound)
    end = section.phase1.steps * section.phase1.batch_size * section.phase1.seq_len
    heads_first = np.where(np.isnan(heads_first), end, heads_first)
    ffn_first = np.where(np.isnan(ffn_first), end, ffn_first)
    out.append(
        Claim.across_seeds(
            "heads_pruned_before_ffn",
            "Heads are pruned before FFN channels (Figure A): tokens at the first FFN removal minus tokens "
            "at the first head removal (a type never pruned counts as the stage's end)",
            (ffn_first - heads_first).tolist(),
            ">",
            0.0,
            paper_value=PAPER["order"],
            source=_SOURCE_FIG_A,
        )
    )
    hidden = _arr(results, order, "pruned_share", variant="main", type="hidden")
    ffn = _arr(results, order, "pruned_share", variant="main", type="ffn")
    out.append(
        Claim.across_seeds(
            "hidden_pruned_least",
            "Hidden channels lose a smaller share than FFN channels (Figure A: ~42% against ~63%): FFN share "
            "minus hidden share",
            (ffn - hidden).tolist(),
            ">",
            0.0,
            paper_value=PAPER["order"],
            source=_SOURCE_FIG_A,
        )
    )
    return out
