"""The reproduction's arms, tables and figures: one function each, ``(run, section) -> DataFrame | Figure``.

Every arm follows one recipe so that only the method differs: phase 1 (``section.phase1`` steps at a
constant learning rate after warmup; pruning-aware arms prune during it), then continued training
(``section.phase2`` steps, cosine decay, fresh optimizer; ``scale_factor`` times as many for the scaling
table). Baselines get the same two phases on the same data, so parameters and tokens are equal:

- pruning-aware (EfficientLLM): `prune_train` with the section's `PruneConfig` in phase 1;
- one-shot Taylor pruning of the source to the pruning-aware model's size (LLM-Pruner style, a small
  calibration set), then both phases;
- from scratch in the pruning-aware model's auto-designed shape, and in a uniform shape of the same size.

`EfficientRun` computes each arm once per seed and saves its numbers as it finishes (a rerun resumes); the
phase-1 models that later arms start from are exported once into the cache.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from efficientllm.evaluation import MCItem, multiple_choice, perplexity
from efficientllm.schedule import PruneConfig
from efficientllm.training import PruneTrainConfig, prune_train
from reprokit.results import new_figure
from reprokit.zoo import count_parameters

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import nn

    from reprokit.lm import LanguageModel
    from reprokit.reproduce import RunContext

__all__ = [
    "ABLATIONS",
    "EfficientRun",
    "Source",
    "figure_pruned_share",
    "figure_size_vs_tokens",
    "figure_training_curves",
    "table_ablations",
    "table_main",
    "table_pruning_order",
    "table_scaling",
]

logger = logging.getLogger(__name__)

#: Ablations of the pruning-aware stage: name -> (label, `PruneConfig` overrides).
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "second_order": ("second-order saliency (diagonal Fisher)", {"saliency": "second"}),
    "obs": ("with OBS compensation", {"obs": True}),
    "uniform_heads": ("heads uniform across layers", {"heads": "uniform"}),
    "summed": ("summed saliency (not normalised)", {"normalize": "none"}),
    "type_normalised": ("normalised per type (median)", {"normalize": "type"}),
    "every_1": ("N = 1 (prune after every step)", {"every": 1}),
}
#: Rows of the main table (Table 2 analogue).
MAIN_ROWS = (
    "source (dense)",
    "pruning-aware (EfficientLLM)",
    "one-shot Taylor + training",
    "from scratch, auto-designed shape",
    "from scratch, uniform shape",
)
PA_ROW, ONESHOT_ROW, SCRATCH_ROW, UNIFORM_ROW = MAIN_ROWS[1:]
KIND_LABELS = {"head": "heads", "ffn": "FFN channels", "hidden": "hidden channels"}


class Source(Protocol):
    """What the arms need from a scale: the source model, its tokenizer, data and evaluation."""

    tokenizer: Any
    train_data: Any  # texts or a token stream, as `prune_train` takes them

    def source(self) -> nn.Module: ...

    def source_config(self) -> Any: ...

    def calibration(self, n_sequences: int, seq_len: int) -> list: ...

    def evaluate(self, lm: LanguageModel) -> dict[str, float]: ...

    @property
    def task_names(self) -> tuple[str, ...]: ...


@dataclasses.dataclass(frozen=True)
class MCSuite:
    """Zero-shot multiple-choice tasks and held-out texts scored in-process (the tiny scale's evaluation)."""

    tasks: Mapping[str, Sequence[MCItem]]
    heldout: Sequence[str]
    knowledge_task: str = "knowledge"
    batch_size: int = 64

    def evaluate(self, lm: LanguageModel) -> dict[str, float]:
        """Accuracy per task (lm-eval ``acc``) and held-out perplexity."""
        out = {
            name: multiple_choice(lm, items, batch_size=self.batch_size).acc
            for name, items in self.tasks.items()
        }
        out["perplexity"] = perplexity(lm, list(self.heldout), batch_size=self.batch_size)
        return out


def _ranks() -> Any:
    """accelerate's process state (one process when not launched by accelerate)."""
    from accelerate import PartialState

    return PartialState()


def _lm(model: nn.Module, tokenizer: Any) -> LanguageModel:
    from reprokit.lm import LanguageModel

    return LanguageModel(model.eval(), tokenizer)


class EfficientRun:
    """One seed's experiment: every arm computed once (saved as it finishes), shared by the tables."""

    def __init__(self, section: Any, source: Source, ctx: RunContext) -> None:
        import efficientllm
        import reprokit

        self.section = section
        self.source = source
        self.ctx = ctx
        self.store = ctx.resume_store("pieces")
        self.run_id = ctx.run_id(section, efficientllm, reprokit)

    # ------------------------------------------------------------------------------------ configs
    def prune_config(self, ablation: str | None = None) -> PruneConfig:
        """The pruning-aware stage's config, with `ablation`'s overrides (see `ABLATIONS`)."""
        base = self.section.prune
        over = dict(ABLATIONS[ablation][1]) if ablation else {}
        return dataclasses.replace(base, seed=self.ctx.seed, **over)

    def _train_config(self, phase: str, factor: int = 1) -> PruneTrainConfig:
        cfg: PruneTrainConfig = getattr(self.section, phase)
        seed = 7919 * self.ctx.seed + (1 if phase == "phase1" else 2)  # the two phases read different orders
        return dataclasses.replace(cfg, steps=cfg.steps * factor, seed=seed)

    @property
    def tokens_per_step(self) -> int:
        """Tokens of one optimizer step (batch x sequence length; both phases use the same)."""
        return self.section.phase1.batch_size * self.section.phase1.seq_len

    def _piece(self, name: str, compute: Callable[[], Any]) -> Any:
        return self.store.fetch_or_run({**self.run_id, "piece": name}, compute)

    def _train(
        self, model: nn.Module, phase: str, piece: str, *, prune: PruneConfig | None = None, factor: int = 1
    ):
        """`prune_train` for one phase of `piece`; its checkpoints (``checkpoint_every``) sit in the cache, so
        a long phase interrupted at paper scale resumes from its last checkpoint."""
        out = self.store.path({**self.run_id, "piece": piece}).with_suffix(f".{phase}")
        result = prune_train(
            model,
            self.source.tokenizer,
            self.source.train_data,
            self._train_config(phase, factor),
            prune=prune,
            output_dir=out,
            resume=self.ctx.resume,
        )
        ranks = _ranks()
        ranks.wait_for_everyone()
        if ranks.is_main_process:
            shutil.rmtree(out, ignore_errors=True)
        return result

    def _record(self, model: nn.Module, label: str, parts: Sequence[Any], **extra: Any) -> dict[str, Any]:
        """Scores and size of `model`, with the loss curve and wall time of the training `parts` (train
        results, or earlier records) that made it, one after the other."""
        self.ctx.log("evaluating %s", label)
        scores = self.source.evaluate(_lm(model, self.source.tokenizer))
        curve: list[dict[str, Any]] = []
        steps, wall = 0, 0.0
        for part in parts:
            if not isinstance(part, Mapping):  # a TrainResult: the same three fields as a record
                part = {"curve": part.history, "steps": part.step, "wall_time_s": part.wall_time_s}
            for h in part["curve"]:
                curve.append({"step": steps + h["step"], "loss": h["loss"], "params": h["params"]})
            steps += part["steps"]
            wall += part["wall_time_s"]
        return {
            "label": label,
            "params": count_parameters(model),
            "steps": steps,
            "tokens": steps * self.tokens_per_step,
            "scores": scores,
            "curve": curve,
            "wall_time_s": wall,
            **extra,
        }

    # ---------------------------------------------------------------------------------- the arms
    @cached_property
    def source_record(self) -> dict[str, Any]:
        """The dense source's scores (no further training)."""

        def compute() -> dict[str, Any]:
            model = self.source.source()
            return self._record(model, MAIN_ROWS[0], [])

        return self._piece("source", compute)

    def _phase1_folder(self, ablation: str | None) -> Path:
        return self.store.path({**self.run_id, "piece": f"phase1-model-{ablation or 'main'}"}).with_suffix("")

    def pruning_stage(self, ablation: str | None = None) -> dict[str, Any]:
        """Phase 1 with pruning: events, widths, final size and scores; the model exported to the cache."""
        from efficientllm.export import export_model

        def compute() -> dict[str, Any]:
            label = ABLATIONS[ablation][0] if ablation else "pruning-aware"
            self.ctx.log("pruning-aware stage (%s)", label)
            piece = f"phase1-{ablation or 'main'}"
            result = self._train(self.source.source(), "phase1", piece, prune=self.prune_config(ablation))
            ranks = _ranks()
            if ranks.is_main_process:  # under accelerate launch every rank trains; one writes the model
                folder = self._phase1_folder(ablation)
                export_model(result.model, self.source.tokenizer, folder, overwrite=True)
            ranks.wait_for_everyone()
            rec = self._record(result.model, f"{label}, after the pruning stage", [result])
            rec.update(events=result.events, widths=result.widths, stop_reason=result.stop_reason)
            return rec

        name = f"phase1-{ablation or 'main'}"
        if not (self._phase1_folder(ablation) / "config.json").is_file():  # a record without its model
            self.store.path({**self.run_id, "piece": name}).unlink(missing_ok=True)
        return self._piece(name, compute)

    def _pruned_model(self, ablation: str | None) -> nn.Module:
        from efficientllm.export import load_exported

        self.pruning_stage(ablation)
        return load_exported(self._phase1_folder(ablation), dtype="float32", device="cpu").model.train()

    def pruning_aware(self, ablation: str | None = None, factor: int = 1) -> dict[str, Any]:
        """The pruning-aware arm after `factor` x the continued-training steps."""

        def compute() -> dict[str, Any]:
            stage = self.pruning_stage(ablation)
            model = self._pruned_model(ablation)
            self.ctx.log("continued training of the pruned model (%s, %dx)", ablation or "main", factor)
            result = self._train(model, "phase2", f"pa-{ablation or 'main'}-x{factor}", factor=factor)
            label = ABLATIONS[ablation][0] if ablation else PA_ROW
            rec = self._record(result.model, label, [stage, result])
            rec["widths"] = stage["widths"]
            return rec

        return self._piece(f"pa-{ablation or 'main'}-x{factor}", compute)

    @property
    def target_params(self) -> int:
        """The pruning-aware model's final size: every baseline is built or pruned to it."""
        return int(self.pruning_stage()["params"])

    def one_shot(self) -> dict[str, Any]:
        """One-shot Taylor pruning of the source to the pruning-aware size, then both phases."""
        from efficientllm.baselines import one_shot_prune

        def compute() -> dict[str, Any]:
            cfg = self.prune_config()
            model = self.source.source()
            self.ctx.log(
                "one-shot Taylor pruning on %d calibration sequences", self.section.calibration_sequences
            )
            calib = self.source.calibration(self.section.calibration_sequences, self.section.phase1.seq_len)
            one_shot_prune(
                model,
                calib,
                target_params=self.target_params,
                heads=cfg.heads,
                normalize=cfg.normalize,
                round_to=cfg.round_to,
                kinds=cfg.kinds,
                count_embeddings=True,
            )
            return self._two_phases(model.train(), ONESHOT_ROW, "one-shot")

        return self._piece("one-shot", compute)

    def _two_phases(self, model: nn.Module, label: str, piece: str) -> dict[str, Any]:
        self.ctx.log("training %s (%s parameters)", label, f"{count_parameters(model):,}")
        first = self._train(model, "phase1", piece)
        second = self._train(first.model.train(), "phase2", piece)
        from efficientllm.baselines import shape_of

        return self._record(second.model, label, [first, second], widths=_widths(shape_of(second.model)))

    def scratch_auto(self) -> dict[str, Any]:
        """The pruning-aware model's exact shape, freshly initialised, trained on the same tokens."""
        from efficientllm.baselines import from_scratch_like

        def compute() -> dict[str, Any]:
            model = from_scratch_like(self._pruned_model(None), seed=self.ctx.seed)
            return self._two_phases(model.train(), SCRATCH_ROW, "scratch-auto")

        return self._piece("scratch-auto", compute)

    def scratch_uniform(self) -> dict[str, Any]:
        """A uniform fixed-ratio shape of the same size (hidden size kept), trained on the same tokens."""
        from efficientllm.baselines import build_from_shape, uniform_shape

        def compute() -> dict[str, Any]:
            config = self.source.source_config()
            shape = uniform_shape(config, self.target_params, round_to=self.section.prune.round_to)
            model = build_from_shape(config, shape, seed=self.ctx.seed)
            return self._two_phases(model.train(), UNIFORM_ROW, "scratch-uniform")

        return self._piece("scratch-uniform", compute)

    def main_records(self) -> list[dict[str, Any]]:
        """The main table's arms, in `MAIN_ROWS` order."""
        return [
            self.source_record,
            self.pruning_aware(),
            self.one_shot(),
            self.scratch_auto(),
            self.scratch_uniform(),
        ]

    @cached_property
    def source_widths(self) -> dict[str, Any]:
        """The dense source's widths (for pruned shares), from its config: no weights are loaded."""
        from efficientllm.baselines import source_shape

        return _widths(source_shape(self.source.source_config()))


def _widths(shape: Mapping[str, Any]) -> dict[str, Any]:
    """Widths in `PruningState.widths` form from `baselines.shape_of`."""
    heads = list(shape["num_attention_heads"])
    kv = list(shape["num_key_value_heads"])
    return {
        "heads": heads,
        "kv_heads": kv,
        "ffn": list(shape["intermediate_size"]),
        "hidden": shape["hidden_size"],
    }


# ----------------------------------------------------------------------------------------- tables
def _score_row(rec: Mapping[str, Any], tasks: Sequence[str], knowledge: str) -> dict[str, Any]:
    scores = rec["scores"]
    common = [t for t in tasks if t != knowledge]
    row = {t: float(scores[t]) for t in tasks if t in scores}
    row["average"] = float(np.mean([scores[t] for t in common])) if common else float("nan")
    row["perplexity"] = float(scores["perplexity"])
    return row


def _knowledge(run: EfficientRun) -> str:
    return getattr(run.section, "knowledge_task", "knowledge")


def table_main(run: EfficientRun, section: Any) -> pd.DataFrame:
    """Table 2 analogue: every method's parameters, tokens after the source, each task and the average."""
    rows = []
    for rec in run.main_records():
        rows.append(
            {
                "method": rec["label"],
                "params": rec["params"],
                "tokens": rec["tokens"],
                **_score_row(rec, run.source.task_names, _knowledge(run)),
            }
        )
    return pd.DataFrame(rows)


def table_scaling(run: EfficientRun, section: Any) -> pd.DataFrame:
    """The pruned model right after the pruning stage, and after 1x and `scale_factor` x continued
    training."""
    stage = run.pruning_stage()
    rows = [("after pruning", 0, stage)]
    for factor in (1, section.scale_factor):
        rows.append((f"{factor}x continued", factor, run.pruning_aware(factor=factor)))
    out = []
    for label, factor, rec in rows:
        out.append(
            {
                "stage": label,
                "continued_tokens": factor * section.phase2.steps * run.tokens_per_step,
                "params": rec["params"],
                **_score_row(rec, run.source.task_names, _knowledge(run)),
            }
        )
    return pd.DataFrame(out)


def _shares(widths: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, float]:
    return {
        "head": 1.0 - sum(widths["kv_heads"]) / sum(source["kv_heads"]),
        "ffn": 1.0 - sum(widths["ffn"]) / sum(source["ffn"]),
        "hidden": 1.0 - widths["hidden"] / source["hidden"],
    }


def table_ablations(run: EfficientRun, section: Any) -> pd.DataFrame:
    """Each ablation of the pruning-aware stage after 1x continued training: size, scores, pruned shares."""
    rows = []
    for name in (None, *section.ablations):
        rec = run.pruning_aware(name)
        shares = _shares(rec["widths"], run.source_widths)
        rows.append(
            {
                "variant": "main" if name is None else name,
                "description": "the section's PruneConfig" if name is None else ABLATIONS[name][0],
                "params": rec["params"],
                **{f"{k}_pruned": v for k, v in shares.items()},
                **_score_row(rec, run.source.task_names, _knowledge(run)),
            }
        )
    return pd.DataFrame(rows)


def _first_prune_tokens(events: Sequence[Mapping[str, Any]], tokens_per_step: int) -> dict[str, float]:
    first: dict[str, float] = {}
    for e in events:
        for kind, n in e["removed"].items():
            if n and kind not in first:
                first[kind] = e["step"] * tokens_per_step
    return {k: first.get(k, float("nan")) for k in KIND_LABELS}


def table_pruning_order(run: EfficientRun, section: Any) -> pd.DataFrame:
    """Figure A in numbers: when each type was first pruned and the share of it pruned, per variant."""
    rows = []
    for name in (None, *section.ablations):
        stage = run.pruning_stage(name)
        first = _first_prune_tokens(stage["events"], run.tokens_per_step)
        shares = _shares(stage["widths"], run.source_widths)
        for kind in KIND_LABELS:
            rows.append(
                {
                    "variant": "main" if name is None else name,
                    "type": kind,
                    "first_pruned_tokens": first[kind],
                    "pruned_share": shares[kind],
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- figures
def _size_curve(stage: Mapping[str, Any], source_params: int, tokens_per_step: int) -> tuple[list, list]:
    xs, ys = [0], [source_params]
    for e in stage["events"]:
        xs.append(e["step"] * tokens_per_step)
        ys.append(e["params_after"])
    return xs, ys


def figure_size_vs_tokens(run: EfficientRun, section: Any) -> Figure:
    """Figure 1(c) analogue: model size against pruning tokens for N = every (main) and N = 1."""
    fig, ax = new_figure(figsize=(6, 4))
    events = run.pruning_stage()["events"]
    source_params = events[0]["params_before"] if events else 0
    arms = [(None, f"N = {section.prune.every}")]
    if "every_1" in section.ablations and section.prune.every != 1:
        arms.append(("every_1", "N = 1"))
    for name, label in arms:
        xs, ys = _size_curve(run.pruning_stage(name), source_params, run.tokens_per_step)
        ax.step(np.asarray(xs) / 1e3, np.asarray(ys) / 1e6, where="post", label=label)
    ax.set_xlabel("pruning-stage tokens (thousands)")
    ax.set_ylabel("parameters (millions, with embeddings)")
    ax.set_title("Continuous parameter dropping")
    ax.legend()
    return fig


def figure_pruned_share(run: EfficientRun, section: Any) -> Figure:
    """Figure A analogue: pruned share of heads, FFN and hidden channels, and the saliency per type."""
    fig, (ax, bx) = new_figure(1, 2, figsize=(11, 4))
    stage = run.pruning_stage()
    src = run.source_widths
    xs = [0.0]
    shares: dict[str, list[float]] = {k: [0.0] for k in KIND_LABELS}
    sal: dict[str, list[tuple[float, float]]] = {k: [] for k in KIND_LABELS}
    for e in stage["events"]:
        t = e["step"] * run.tokens_per_step / 1e3
        xs.append(t)
        for k, v in _shares(e["widths"], src).items():
            shares[k].append(v)
        for k, st in e["saliency"].items():
            if k in sal and "median" in st:
                sal[k].append((t, st["median"]))
    for k, label in KIND_LABELS.items():
        ax.step(xs, np.asarray(shares[k]) * 100, where="post", label=label)
        if sal[k]:
            bx.plot(*zip(*sal[k], strict=True), label=label)
    ax.set_xlabel("pruning-stage tokens (thousands)")
    ax.set_ylabel("pruned share (%)")
    ax.set_title("What the pruning-aware stage removed")
    ax.legend()
    bx.set_yscale("log")
    bx.set_xlabel("pruning-stage tokens (thousands)")
    bx.set_ylabel(f"median kept-unit saliency ({section.prune.normalize})")
    bx.set_title("Saliency per type before each event")
    bx.legend()
    return fig


def figure_training_curves(run: EfficientRun, section: Any) -> Figure:
    """Training loss against tokens for every arm of the main table (both phases)."""
    fig, ax = new_figure(figsize=(6, 4))
    for rec in run.main_records()[1:]:
        curve = rec["curve"]
        if curve:
            steps = np.asarray([c["step"] for c in curve]) * run.tokens_per_step / 1e3
            ax.plot(steps, [c["loss"] for c in curve], label=rec["label"])
    ax.axvline(section.phase1.steps * run.tokens_per_step / 1e3, color="gray", ls=":", lw=1)
    ax.set_xlabel("tokens after the source (thousands)")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return fig
