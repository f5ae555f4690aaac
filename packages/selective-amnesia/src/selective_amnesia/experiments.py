"""The reproduction's tables and figures: one function each, ``(run, section) -> DataFrame | Figure``.

`AmnesiaRun` is one seed's experiment at either scale: a `Source` (the target model, the forget and
retain sets, the MIA documents, the knowledge test, the facts to trace) plus the work several tables
share, each computed once: the trace, the selected layers, the original model's scores and every
unlearning run (saved as it finishes, so an interrupted run resumes).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from reprokit.results import new_figure
from selective_amnesia.figures import plot_role_effects, plot_trace
from selective_amnesia.roles import ROLES, propose_layers, role_effects
from selective_amnesia.tracing import Fact, TraceRun, trace_facts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from reprokit.lm import LanguageModel
    from reprokit.reproduce import RunContext
    from selective_amnesia.data import UnlearningData
    from selective_amnesia.records import MCQuestion
    from selective_amnesia.scoring import SemEvalScore
    from selective_amnesia.unlearning import UnlearnConfig

__all__ = [
    "AmnesiaRun",
    "Source",
    "ablation_layers",
    "figure_trace_aggregate",
    "figure_trace_example",
    "figure_trace_second",
    "figure_unlearning_curves",
    "table_ablation_alpha",
    "table_ablation_epochs",
    "table_ablation_kind",
    "table_ablation_layers",
    "table_cost",
    "table_main",
    "table_subtasks",
    "table_trace",
]

logger = logging.getLogger(__name__)

#: Rows of the main table: (label, method name in `selective_amnesia.unlearning.METHODS`, preset).
MAIN_ROWS: tuple[tuple[str, str, str], ...] = (
    ("gradient ascent", "gradient_ascent", "baseline"),
    ("gradient difference", "gradient_difference", "baseline"),
    ("KL minimisation", "kl", "baseline"),
    ("NPO", "npo", "baseline"),
    ("constrained (paper, alpha_max 2.8)", "constrained", "paper"),
    ("constrained (code, alpha_max 2.3)", "constrained", "code"),
)
BASELINES = tuple(label for label, _, preset in MAIN_ROWS if preset == "baseline")
PAPER_ROW = MAIN_ROWS[4][0]
CODE_ROW = MAIN_ROWS[5][0]


class Source(Protocol):
    """What an experiment needs from a scale: models, the task's data, the MIA documents, the utility test."""

    data: UnlearningData
    members: Sequence[str]
    nonmembers: Sequence[str]
    knowledge: Sequence[MCQuestion]
    knowledge_shots: Sequence[MCQuestion]
    trace_facts: Sequence[Fact]

    def target_lm(self) -> LanguageModel: ...

    def second_lm(self) -> LanguageModel | None: ...


def ablation_layers(traced: Sequence[int], num_layers: int, choice: str, seed: int) -> tuple[int, ...]:
    """The layers of one ablation: the traced ones, or as many untraced ones (lowest, highest, random)."""
    k = len(traced)
    if choice == "traced":
        return tuple(sorted(traced))
    others = [layer for layer in range(num_layers) if layer not in set(traced)]
    if not others:
        return ()
    if choice == "lowest":
        return tuple(others[:k])
    if choice == "highest":
        return tuple(others[-k:])
    if choice == "random":
        return tuple(sorted(random.Random(seed).sample(others, min(k, len(others)))))
    raise ValueError(f"unknown layer choice {choice!r}; choose traced, lowest, highest or random")


class AmnesiaRun:
    """One seed's experiments: tracing, the original model's scores and every unlearning run."""

    def __init__(self, section: Any, source: Source, ctx: RunContext, *, work_dir: Path) -> None:
        self.section = section
        self.source = source
        self.ctx = ctx
        self.work_dir = Path(work_dir)
        self._runs: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------------------ shared work
    @cached_property
    def run_id(self) -> dict[str, Any]:
        """What every saved piece depends on: the section, seed, device, code and library versions."""
        import reprokit
        import selective_amnesia

        return self.ctx.run_id(self.section, selective_amnesia, reprokit)

    @cached_property
    def store(self):
        """Finished unlearning runs, one file each (``--fresh`` recomputes them)."""
        return self.ctx.resume_store(self.ctx.scale, f"seed-{self.ctx.seed}")

    @cached_property
    def target(self) -> LanguageModel:
        """The model before unlearning (kept in memory: every run starts from a fresh copy of it)."""
        return self.source.target_lm()

    def _trace(self, lm: LanguageModel, label: str) -> TraceRun:
        facts = list(self.source.trace_facts)[: self.section.max_facts]
        self.ctx.log("tracing %d facts on the %s model", len(facts), label)
        run = trace_facts(lm, facts, self.section.tracing, kinds=self.section.trace_kinds)
        self.ctx.log(
            "traced %d facts (%d skipped as not known)",
            len({id(r.fact) for r in run.results}),
            len(run.skipped),
        )
        return run

    @cached_property
    def trace(self) -> TraceRun:
        """The target model's trace over the facts it knows."""
        return self._trace(self.target, "target")

    @cached_property
    def second_trace(self) -> TraceRun | None:
        """The second architecture's trace (None when the scale has no second model)."""
        lm = self.source.second_lm()
        return None if lm is None else self._trace(lm, "second")

    @cached_property
    def num_layers(self) -> int:
        """Decoder layers of the target model."""
        from selective_amnesia.layout import find_layout

        return find_layout(self.target.model).num_layers

    @cached_property
    def traced_layers(self) -> tuple[int, ...]:
        """The layers to train: the section's fixed list, or the top-k MLP layers of the trace."""
        fixed = self.section.layers
        if fixed:
            return tuple(fixed)
        role = self.section.trace_role or None
        layers = propose_layers(self.trace.results, "mlp", self.section.top_k, role=role)
        self.ctx.log("traced layers (top %d MLP at %s): %s", self.section.top_k, role or "any role", layers)
        return tuple(sorted(layers))

    def score(self, lm: LanguageModel) -> SemEvalScore:
        """The SemEval-2025 Task 4 scores of `lm` on this run's data."""
        from selective_amnesia.scoring import score_model

        s = self.source
        return score_model(
            lm,
            s.data,
            members=s.members,
            nonmembers=s.nonmembers,
            mmlu_questions=s.knowledge,
            mmlu_shots=s.knowledge_shots,
            config=self.section.scoring,
        )

    @staticmethod
    def flat_scores(score: SemEvalScore) -> dict[str, Any]:
        """The numbers of one scored model, flat (the 12 per-task numbers keyed ``split/task/probe``)."""
        return {
            "final": score.final,
            "task_aggregate": score.task_aggregate,
            "mia": score.mia,
            "knowledge": score.mmlu,
            "forget_mean": score.task.forget_mean,
            "retain_mean": score.task.retain_mean,
            "mia_auc": score.mia_result.auc if score.mia_result is not None else float("nan"),
            "subtasks": dict(score.task.raw),
        }

    @cached_property
    def original(self) -> dict[str, Any]:
        """The target model's scores before unlearning."""

        def compute() -> dict[str, Any]:
            self.ctx.log("scoring the original model")
            return self.flat_scores(self.score(self.target))

        return self.store.fetch_or_run({**self.run_id, "piece": "original"}, compute)

    def unlearn_config(self, preset: str, **changes: Any) -> UnlearnConfig:
        """The section's constrained (``paper``, ``code``) or baseline config, with `changes`."""
        from selective_amnesia.unlearning import RELEASED_CODE

        if preset == "baseline":
            base = self.section.baseline
        elif preset == "paper":
            base = dataclasses.replace(self.section.unlearn, layers=self.traced_layers)
        elif preset == "code":
            base = dataclasses.replace(
                self.section.unlearn,
                layers=self.traced_layers,
                alpha_max=RELEASED_CODE.alpha_max,
                alpha_reference=RELEASED_CODE.alpha_reference,
            )
        else:
            raise ValueError(f"unknown preset {preset!r}")
        return dataclasses.replace(base, seed=self.ctx.seed, **changes)

    def unlearned(self, name: str, config: UnlearnConfig) -> dict[str, Any]:
        """Unlearn with `config` from a fresh copy of the target and score the best checkpoint."""
        if name in self._runs:
            return self._runs[name]

        def compute() -> dict[str, Any]:
            import copy

            from reprokit.lm import LanguageModel
            from selective_amnesia.unlearning import unlearn

            self.ctx.log("unlearning: %s", name)
            start = LanguageModel(
                copy.deepcopy(self.target.model), self.target.tokenizer, name=self.target.name
            )
            folder = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
            result = unlearn(start, self.source.data, config, output_dir=self.work_dir / "unlearn" / folder)
            scores = self.flat_scores(self.score(result.lm))
            self.ctx.log(
                "%s: final %.3f, task %.3f, MIA %.3f, knowledge %.3f",
                name,
                scores["final"],
                scores["task_aggregate"],
                scores["mia"],
                scores["knowledge"],
            )
            history = [
                {k: h.get(k) for k in ("step", "epoch", "forget_loss", "retain_loss", "alpha", "loss")}
                for h in result.history
            ]
            del start, result.lm
            gc.collect()
            return {
                **scores,
                "trainable": result.trainable.trainable,
                "trainable_share": result.trainable.share,
                "wall_time_s": result.wall_time_s,
                "peak_memory_mb": result.peak_memory_bytes / 2**20,
                "best_step": result.best_step,
                "diverged_at_step": result.diverged_at_step,
                "history": history,
            }

        piece = {**self.run_id, "piece": name, "unlearn": dataclasses.asdict(config)}
        self._runs[name] = self.store.fetch_or_run(piece, compute)
        return self._runs[name]

    def main_run(self, label: str) -> dict[str, Any]:
        """One row of the main table by its label (see `MAIN_ROWS`)."""
        for row_label, method, preset in MAIN_ROWS:
            if row_label == label:
                return self.unlearned(label, self.unlearn_config(preset, method=method))
        raise KeyError(label)


# ------------------------------------------------------------------------------------------- tables
_SCORE_COLUMNS = ("final", "task_aggregate", "mia", "knowledge", "forget_mean", "retain_mean", "mia_auc")


def _row(label_key: str, label: str, scores: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {label_key: label, **extra, **{c: scores[c] for c in _SCORE_COLUMNS}}


def table_main(run: AmnesiaRun, section: Any) -> pd.DataFrame:
    """The leaderboard analogue: final score, task aggregate, MIA and knowledge score per method."""
    rows = [_row("method", "original", run.original, trainable_share=0.0)]
    for label, _, _ in MAIN_ROWS:
        r = run.main_run(label)
        rows.append(_row("method", label, r, trainable_share=r["trainable_share"]))
    return pd.DataFrame(rows)


def table_subtasks(run: AmnesiaRun, section: Any) -> pd.DataFrame:
    """The 12 per-task numbers (raw metric means; forget rows are inverted only inside the aggregate)."""
    rows = [{"method": "original", **run.original["subtasks"]}]
    rows += [{"method": label, **run.main_run(label)["subtasks"]} for label, _, _ in MAIN_ROWS]
    return pd.DataFrame(rows)


def table_ablation_layers(run: AmnesiaRun, section: Any) -> pd.DataFrame:
    """Constrained unlearning on the traced layers against as many untraced ones."""
    rows = []
    for choice in ("traced", "lowest", "highest", "random"):
        layers = ablation_layers(run.traced_layers, run.num_layers, choice, seed=run.ctx.seed)
        if choice == "traced":
            scores = run.main_run(PAPER_ROW)
        elif not layers:
            continue
        else:
            scores = run.unlearned(f"layers {choice}", run.unlearn_config("paper", layers=layers))
        rows.append(_row("layers", choice, scores, which=" ".join(map(str, layers))))
    return pd.DataFrame(rows)


def table_ablation_kind(run: AmnesiaRun, section: Any) -> pd.DataFrame:
    """Constrained unlearning of the traced layers' MLPs, attention blocks, or both."""
    rows = []
    for kind in ("mlp", "attn", "all"):
        if kind == run.section.unlearn.module_kind:
            scores = run.main_run(PAPER_ROW)
        else:
            scores = run.unlearned(f"kind {kind}", run.unlearn_config("paper", module_kind=kind))
        rows.append(_row("module_kind", kind, scores, trainable_share=scores["trainable_share"]))
    return pd.DataFrame(rows)


def table_ablation_alpha(run: AmnesiaRun, section: Any) -> pd.DataFrame:
    """The adaptive retain weight against fixed ones at its two bounds."""
    cfg = run.section.unlearn
    rows = [_row("alpha", "adaptive", run.main_run(PAPER_ROW))]
    for value in (cfg.alpha_min, cfg.alpha_max):
        changes = {"alpha_schedule": "fixed", "alpha_fixed": value}
        scores = run.unlearned(f"alpha fixed {value}", run.unlearn_config("paper", **changes))
        rows.append(_row("alpha", f"fixed {value}", scores))
    return pd.DataFrame(rows)


def table_ablation_epochs(run: AmnesiaRun, section: Any) -> pd.DataFrame:
    """Constrained unlearning for fewer epochs than the paper's."""
    rows = []
    for epochs in run.section.epoch_grid:
        if epochs == run.section.unlearn.epochs:
            scores = run.main_run(PAPER_ROW)
        else:
            scores = run.unlearned(f"epochs {epochs}", run.unlearn_config("paper", epochs=epochs))
        rows.append(_row("epochs", str(epochs), scores))
    return pd.DataFrame(rows)


def table_cost(run: AmnesiaRun, section: Any) -> pd.DataFrame:
    """Trainable parameters, wall time and peak memory of every method."""
    rows = []
    for label, _, _ in MAIN_ROWS:
        r = run.main_run(label)
        rows.append(
            {
                "method": label,
                "trainable": r["trainable"],
                "trainable_share": r["trainable_share"],
                "wall_time_s": r["wall_time_s"],
                "peak_memory_mb": r["peak_memory_mb"],
            }
        )
    return pd.DataFrame(rows)


def _trace_rows(trace: TraceRun, model: str) -> list[dict[str, Any]]:
    rows = []
    for kind in sorted({r.kind for r in trace.results}):
        table = role_effects(trace.results, kind)
        for role in ROLES:
            row: dict[str, Any] = {"model": model, "kind": kind, "role": role}
            row.update({f"layer_{layer}": float(table.loc[role, layer]) for layer in table.columns})
            rows.append(row)
    return rows


def table_trace(run: AmnesiaRun, section: Any) -> pd.DataFrame:
    """Mean indirect effect per (model, module kind, token role, layer): the aggregate figure as numbers."""
    rows = _trace_rows(run.trace, "target")
    if run.second_trace is not None:
        rows += _trace_rows(run.second_trace, "second")
    return pd.DataFrame(rows)


def table_trace_summary(run: AmnesiaRun, section: Any) -> pd.DataFrame:
    """Facts traced and skipped, clean and corrupted p(answer), and the MLP effect's concentration."""
    rows = []
    for model, trace in (("target", run.trace), ("second", run.second_trace)):
        if trace is None:
            continue
        mlp = [r for r in trace.results if r.kind == "mlp"]
        facts = {id(r.fact) for r in trace.results}
        table = role_effects(mlp, "mlp")
        role = run.section.trace_role
        effects = table.loc[role] if role else table.max(axis=0, skipna=True)
        per_layer = np.nan_to_num(effects.to_numpy(dtype=float), nan=0.0).clip(min=0)
        k = run.section.top_k
        top = sorted(range(len(per_layer)), key=lambda i: (-per_layer[i], i))[:k]
        share = float(per_layer[top].sum() / per_layer.sum()) if per_layer.sum() > 0 else float("nan")
        rows.append(
            {
                "model": model,
                "n_traced": len(facts),
                "n_skipped": len(trace.skipped),
                "high_score": float(np.mean([r.high_score for r in mlp])),
                "low_score": float(np.mean([r.low_score for r in mlp])),
                "top_k_share": share,
                "uniform_share": k / len(per_layer),
                "mean_top_layer": float(np.mean(top)),
                "selected": " ".join(map(str, sorted(top))),
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ figures
def _aggregate(trace: TraceRun, title: str) -> Figure:
    tables = {
        {"mlp": "MLP", "attn": "Attention", "hidden": "Residual"}[kind]: role_effects(trace.results, kind)
        for kind in ("mlp", "attn")
        if any(r.kind == kind for r in trace.results)
    }
    fig = plot_role_effects(tables)
    fig.suptitle(title)
    return fig


def figure_trace_aggregate(run: AmnesiaRun, section: Any) -> Figure:
    """The paper's aggregate figure: indirect effect by token role and centre layer, MLP and attention."""
    n_facts = len({id(r.fact) for r in run.trace.results})
    return _aggregate(run.trace, f"Target model: mean indirect effect over {n_facts} facts")


def figure_trace_second(run: AmnesiaRun, section: Any) -> Figure:
    """The same figure for the second architecture."""
    if run.second_trace is None:
        fig, ax = new_figure()
        ax.text(0.5, 0.5, "no second model at this scale", ha="center")
        return fig
    return _aggregate(run.second_trace, "Second architecture")


def figure_trace_example(run: AmnesiaRun, section: Any) -> Figure:
    """One fact traced ROME style (the first traced fact's MLP grid)."""
    results = [r for r in run.trace.results if r.kind == "mlp"]
    return plot_trace(results[0])


def figure_unlearning_curves(run: AmnesiaRun, section: Any) -> Figure:
    """Forget and retain loss and the adaptive alpha over training, constrained against gradient ascent."""
    fig, (ax_loss, ax_alpha) = new_figure(ncols=2, figsize=(10, 3.6))
    for label, style in ((PAPER_ROW, "-"), (BASELINES[0], ":")):
        history = [h for h in run.main_run(label)["history"] if h.get("forget_loss") is not None]
        steps = [h["step"] for h in history]
        ax_loss.plot(
            steps, [h["forget_loss"] for h in history], style, color="tab:red", label=f"forget, {label}"
        )
        retain = [(h["step"], h["retain_loss"]) for h in history if h.get("retain_loss") is not None]
        if retain:
            ax_loss.plot(*zip(*retain, strict=True), style, color="tab:green", label=f"retain, {label}")
        alphas = [(h["step"], h["alpha"]) for h in history if h.get("alpha") is not None]
        if alphas and label == PAPER_ROW:
            ax_alpha.plot(*zip(*alphas, strict=True), color="tab:blue")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("output-token NLL")
    ax_loss.set_yscale("symlog")
    ax_loss.legend(fontsize=7)
    ax_alpha.set_xlabel("optimizer step")
    ax_alpha.set_ylabel("alpha (retain weight)")
    ax_alpha.set_title("adaptive alpha, constrained (paper)")
    return fig


TableFn = Callable[[AmnesiaRun, Any], pd.DataFrame]
