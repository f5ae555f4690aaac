"""The paper's claims, checked on a run's tables: ``claims(results, section) -> [Claim]``.

Every claim is a number measured once per seed and judged on its across-seed mean with a Student-t 95%
interval (`Claim.across_seeds`); comparisons between methods are per-seed differences, so the same world
and target model enter both sides. Thresholds were fixed before the first run, from the paper's and the
leaderboard's numbers (cited in ``paper_value``), not tuned afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from reprokit.results import Claim
from selective_amnesia.experiments import BASELINES, PAPER_ROW

if TYPE_CHECKING:
    from reprokit.reproduce import SeedResults

__all__ = ["LEADERBOARD", "PAPER", "claims"]

#: The paper's numbers (arXiv 2504.12996, through the abstract and third-party summaries of its body) and
#: the organizers' leaderboard (SemEval-2025 Task 4 website), shown beside ours.
PAPER: dict[str, str] = {
    "tracing": "largest effects in the MLPs of layers 0-5 (of 16 in OLMo-1B, of 32 in OLMo-7B)",
    "task_1b": "task aggregate 0.973 (1B), 0.964 (7B)",
    "mia_1b": "MIA score 0.741 (1B), 0.894 (7B)",
    "mmlu": "retains 88% of baseline MMLU (abstract); 1B 0.243 vs about 0.24 untouched",
    "final": "final score 0.652 (1B, 2nd), 0.711 (7B, highest of any 7B entry)",
    "mlp": "MLP modules are the most influential component type",
}
LEADERBOARD: dict[str, str] = {
    "baselines": "7B organizer baselines: task aggregate 0 (GA), 0 (GD), 0 (KL), 0.021 (NPO)",
    "baseline_final": "7B baselines final 0.394 (GA), 0.243 (GD), 0.395 (KL), 0.188 (NPO); SHA256 0.711",
}
_SOURCE_PAPER = "arXiv 2504.12996, abstract and Section 4 (results)"
_SOURCE_TRACING = "arXiv 2504.12996, Section 3.1 and the causal-tracing figure"
_SOURCE_BOARD = "SemEval-2025 Task 4 leaderboard and organizer baselines (task overview, arXiv 2504.02883)"


def _values(results: SeedResults, table: str, column: str, **where: Any) -> np.ndarray:
    return np.asarray(results.values(table, column, **where), dtype=float)


def claims(results: SeedResults, section: Any) -> list[Claim]:
    """Every claim the run can test, each with its per-seed values and interval."""
    out: list[Claim] = []
    trace = "table_trace_summary"
    share = _values(results, trace, "top_k_share", model="target")
    uniform = _values(results, trace, "uniform_share", model="target")[0]
    out.append(
        Claim.across_seeds(
            "tracing_band",
            f"Tracing concentrates the MLP effect in a band: the top {section.top_k} MLP layers carry more "
            f"than half of it at the {(section.trace_role or 'best').replace('_', ' ')} token "
            f"(uniform: {uniform:.2f})",
            share.tolist(),
            ">",
            0.5,
            paper_value=PAPER["tracing"],
            source=_SOURCE_TRACING,
        )
    )
    depth = _values(results, trace, "mean_top_layer", model="target")
    num_layers = len([c for c in results.first("table_trace").columns if c.startswith("layer_")])
    out.append(
        Claim.across_seeds(
            "tracing_early",
            "The band lies in the lower half of the model (mean index of the top MLP layers below the "
            "middle)",
            depth.tolist(),
            "<",
            (num_layers - 1) / 2,
            paper_value=PAPER["tracing"],
            source=_SOURCE_TRACING,
        )
    )
    main = "table_main"
    task = _values(results, main, "task_aggregate", method=PAPER_ROW)
    out.append(
        Claim.across_seeds(
            "constrained_task_aggregate",
            "Constrained unlearning reaches a high task aggregate (harmonic mean of the 12 numbers)",
            task.tolist(),
            ">=",
            0.8,
            paper_value=PAPER["task_1b"],
            source=_SOURCE_PAPER,
        )
    )
    before = _values(results, main, "knowledge", method="original")
    after = _values(results, main, "knowledge", method=PAPER_ROW)
    out.append(
        Claim.across_seeds(
            "constrained_keeps_knowledge",
            "Constrained unlearning keeps the knowledge test (MMLU analogue): at least 88% of the original "
            "model's accuracy",
            (after / before).tolist(),
            ">=",
            0.88,
            paper_value=PAPER["mmlu"],
            source=_SOURCE_PAPER,
        )
    )
    mia = _values(results, main, "mia", method=PAPER_ROW)
    out.append(
        Claim.across_seeds(
            "constrained_mia",
            "Constrained unlearning brings the MIA score (1 - 2|AUC - 0.5|) above 0.5",
            mia.tolist(),
            ">",
            0.5,
            paper_value=PAPER["mia_1b"],
            source=_SOURCE_PAPER,
        )
    )
    baseline_task = np.stack([_values(results, main, "task_aggregate", method=b) for b in BASELINES])
    out.append(
        Claim.across_seeds(
            "baselines_collapse",
            "The organizers' baselines (GA, GD, KL, NPO) collapse the harmonic mean: their mean task "
            "aggregate is below 0.1",
            baseline_task.mean(axis=0).tolist(),
            "<",
            0.1,
            paper_value=LEADERBOARD["baselines"],
            source=_SOURCE_BOARD,
        )
    )
    final = _values(results, main, "final", method=PAPER_ROW)
    best_baseline = np.stack([_values(results, main, "final", method=b) for b in BASELINES]).max(axis=0)
    out.append(
        Claim.across_seeds(
            "constrained_beats_baselines",
            "Constrained unlearning beats the best organizer baseline on the final score (per-seed "
            "difference)",
            (final - best_baseline).tolist(),
            ">",
            0.0,
            paper_value=LEADERBOARD["baseline_final"],
            source=_SOURCE_BOARD,
        )
    )
    layers = "table_ablation_layers"
    traced = _values(results, layers, "final", layers="traced")
    others = [
        _values(results, layers, "final", layers=choice)
        for choice in ("lowest", "highest", "random")
        if (results.first(layers)["layers"] == choice).any()
    ]
    if others:
        out.append(
            Claim.across_seeds(
                "traced_beats_untraced",
                "Training the traced layers beats training as many untraced ones (lowest, highest, random): "
                "smallest per-seed final-score margin",
                (traced - np.stack(others).max(axis=0)).tolist(),
                ">",
                0.0,
                paper_value="the layers causal tracing selects are the ones to train",
                source=_SOURCE_TRACING,
            )
        )
    kind = "table_ablation_kind"
    mlp = _values(results, kind, "final", module_kind="mlp")
    attn = _values(results, kind, "final", module_kind="attn")
    out.append(
        Claim.across_seeds(
            "mlp_beats_attention",
            "Unlearning through the MLPs beats unlearning through the attention blocks of the same layers "
            "(per-seed final-score difference)",
            (mlp - attn).tolist(),
            ">",
            0.0,
            paper_value=PAPER["mlp"],
            source=_SOURCE_TRACING,
        )
    )
    return out
