"""The reproduction as functions of a frozen config: Table 1, cross-family, uncertainty, gamma sweep, claims.

`reproduce/nudging.py` is a thin script over `run`. Both scales share the evaluation code; only the
model and task loaders differ (tiny: `nudging.tiny`; paper: `reprokit.models` + `datasets`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nudging.batch import generate_texts
from nudging.config import NudgingConfig
from nudging.nudger import Nudger
from nudging.prompts import base_prompt, nudger_prompt
from nudging.tasks import TINY_ANALOGUES, TaskItem, score
from nudging.tiny import FamilySpec, TinyConfig

logger = logging.getLogger(__name__)

Loaded = tuple[PreTrainedModel, PreTrainedTokenizerBase]

#: The paper's published numbers (brief §3), for REPORT.md.
PAPER_AVG = {  # family -> (base, small aligned, large aligned, nudging) average accuracy over 11 tasks
    "Llama-2": (33.8, 42.5, 56.7, 57.9),
    "Gemma-2": (12.4, 55.7, 74.4, 70.3),
    "OLMo": (28.9, 31.3, 39.2, 40.8),
}
PAPER_CROSS = {  # Gemma-2-27b nudged by: (GSM8K, MMLU)
    "base alone": (7.0, 16.5),
    "OLMo-7b-it": (41.0, 62.5),
    "Llama-2-7b-chat": (65.0, 67.0),
}


@dataclass(frozen=True)
class PaperModels:
    """One paper family: hub ids of the base, small aligned and large aligned models, and its gamma."""

    name: str
    base: str
    small_aligned: str
    large_aligned: str
    gamma: float


@dataclass(frozen=True)
class ReproduceConfig:
    """Everything a reproduction run depends on (TOML: `reproduce/configs/nudging/<scale>.toml`)."""

    scale: str = "tiny"
    tiny: TinyConfig = field(default_factory=TinyConfig)
    gamma: float = 0.3
    max_new_tokens: int = 128
    batch_size: int = 16
    tasks: tuple[str, ...] = tuple(TINY_ANALOGUES)
    cross_tasks: tuple[str, ...] = ("arithmetic", "fact_mc")
    sweep_gammas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    sweep_tasks: tuple[str, ...] = ("arithmetic", "fact_mc")
    sweep_n: int = 15
    uncertainty_n: int = 30
    n_bootstrap: int = 1000
    # paper scale
    paper_families: tuple[PaperModels, ...] = ()
    paper_cross: tuple[tuple[str, str], ...] = ()  # (base family, nudger family)
    paper_tasks: tuple[str, ...] = ()
    paper_n: int | None = None
    judge_model: str | None = None
    judge_base_url: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ReproduceConfig:
        """Build from a TOML dict (unknown keys are errors, at every level)."""
        from reprokit.cli import config_from_dict
        from reprokit.zoo import TrainConfig

        raw = dict(raw)
        built: dict[str, Any] = {}
        if "tiny" in raw:
            t = dict(raw.pop("tiny"))
            nested: dict[str, Any] = {}
            if "families" in t:
                nested["families"] = tuple(
                    config_from_dict(FamilySpec, f, what="tiny family") for f in t.pop("families")
                )
            for key in ("large_pretrain", "small_pretrain", "finetune"):
                if key in t:
                    nested[key] = config_from_dict(TrainConfig, t.pop(key), what=f"tiny {key}")
            built["tiny"] = config_from_dict(TinyConfig, t, what="tiny", **nested)
        if "paper_families" in raw:
            built["paper_families"] = tuple(
                config_from_dict(PaperModels, f, what="paper family") for f in raw.pop("paper_families")
            )
        return config_from_dict(cls, raw, what="nudging", **built)


# ------------------------------------------------------------------------------------------ evaluation
@dataclass
class SystemRun:
    """One system on one task: outputs, 0/1 correctness and (for nudging) nudged shares."""

    outputs: list[str]
    correct: np.ndarray
    token_share: np.ndarray | None = None
    word_share: np.ndarray | None = None


def _encode_run(run: SystemRun) -> dict[str, Any]:
    return {
        "outputs": run.outputs,
        "correct": run.correct.tolist(),
        "token_share": None if run.token_share is None else run.token_share.tolist(),
        "word_share": None if run.word_share is None else run.word_share.tolist(),
    }


def _decode_run(data: Mapping[str, Any]) -> SystemRun:
    def arr(v: Any) -> np.ndarray | None:
        return None if v is None else np.array(v, dtype=float)  # a saved null (NaN) becomes NaN again

    correct = np.array(data["correct"], dtype=float)
    return SystemRun(list(data["outputs"]), correct, arr(data["token_share"]), arr(data["word_share"]))


def run_single(
    model_tok: Loaded, items: Sequence[TaskItem], *, chat: bool, cfg: ReproduceConfig, judge=None
) -> SystemRun:
    """Greedy decoding with one model: plain prompt (base) or its chat template (aligned)."""
    model, tok = model_tok
    prompts = [nudger_prompt(tok, i.question) if chat else base_prompt(i.question) for i in items]
    outs = generate_texts(
        model,
        tok,
        prompts,
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size,
        add_special_tokens=not chat,
    )
    return SystemRun(
        outs, np.array([score(i, o, judge) for i, o in zip(items, outs, strict=True)], dtype=float)
    )


def run_nudging(
    base: Loaded,
    nudger: Loaded,
    items: Sequence[TaskItem],
    *,
    gamma: float,
    cfg: ReproduceConfig,
    desc: str = "nudging",
    judge=None,
) -> SystemRun:
    """Nudged decoding of every item."""
    n = Nudger(
        base[0], base[1], nudger[0], nudger[1], NudgingConfig(gamma=gamma, max_new_tokens=cfg.max_new_tokens)
    )
    res = n.generate_batch(
        [i.question for i in items], batch_size=cfg.batch_size, show_progress=True, desc=desc
    )
    return SystemRun(
        [r.text for r in res],
        np.array([score(i, r.text, judge) for i, r in zip(items, res, strict=True)], dtype=float),
        np.array([r.nudged_token_share for r in res]),
        np.array([r.nudged_word_share for r in res]),
    )


def _ci(values: np.ndarray, cfg: ReproduceConfig, seed: int) -> tuple[float, float]:
    from reprokit.stats import bootstrap_ci

    ci = bootstrap_ci(values, n_resamples=cfg.n_bootstrap, rng=seed)
    return ci.low, ci.high


def accuracy_rows(
    family: str,
    runs: Mapping[str, Mapping[str, SystemRun]],
    tasks: Sequence[str],
    cfg: ReproduceConfig,
    seed: int,
) -> tuple[list[dict], list[dict]]:
    """Wide rows (a Table 1 block: accuracy % per task, average, CI, nudged share) and long CI rows."""
    wide, long = [], []
    for system, by_task in runs.items():
        row: dict[str, Any] = {"family": family, "model": system}
        for t in tasks:
            run = by_task[t]
            acc = 100 * float(run.correct.mean())
            lo, hi = _ci(run.correct, cfg, seed)
            row[t] = acc
            long.append(
                {
                    "family": family,
                    "model": system,
                    "task": t,
                    "accuracy": acc,
                    "ci_low": 100 * lo,
                    "ci_high": 100 * hi,
                    "n": len(run.correct),
                }
            )
        pooled = np.concatenate([by_task[t].correct for t in tasks])
        lo, hi = _ci(pooled, cfg, seed)
        row["avg"] = float(np.mean([row[t] for t in tasks]))
        row["avg_ci_low"], row["avg_ci_high"] = 100 * lo, 100 * hi
        shares = [by_task[t].token_share for t in tasks if by_task[t].token_share is not None]
        words = [by_task[t].word_share for t in tasks if by_task[t].word_share is not None]
        row["nudged_tokens_%"] = 100 * float(np.mean(np.concatenate(shares))) if shares else float("nan")
        row["nudged_words_%"] = 100 * float(np.mean(np.concatenate(words))) if words else float("nan")
        wide.append(row)
    return wide, long


# ------------------------------------------------------------------------------------------ uncertainty
@torch.no_grad()
def token_agreement(base: Loaded, items: Sequence[TaskItem], aligned_outputs: Sequence[str]) -> pd.DataFrame:
    """Per answer position of the aligned model: base top-1 probability and the rank of the aligned token.

    Both models share the tokenizer (same family); the aligned model's greedy token is its top-1.
    """
    model, tok = base
    rows = []
    for item, answer in zip(items, aligned_outputs, strict=True):
        if not answer:
            continue
        p_ids = tok(base_prompt(item.question))["input_ids"]
        a_ids = tok(answer, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + a_ids], device=model.get_input_embeddings().weight.device)
        logits = model(input_ids=ids).logits[0, len(p_ids) - 1 : -1].float()
        probs = torch.softmax(logits, -1)
        target = torch.tensor(a_ids, device=probs.device)
        p_target = probs.gather(-1, target[:, None])[:, 0]
        ranks = (probs > p_target[:, None]).sum(-1) + 1
        p1 = probs.max(-1).values
        for pos, (p, r) in enumerate(zip(p1.tolist(), ranks.tolist(), strict=True)):
            rows.append({"item": item.id, "task": item.task, "position": pos, "p1": p, "rank": int(r)})
    df = pd.DataFrame(rows)
    if len(df):
        df["label"] = np.where(
            df["rank"] == 1, "agree", np.where(df["rank"] <= 3, "weakly disagree", "disagree")
        )
    return df


def uncertainty_summary(df: pd.DataFrame, gamma: float) -> dict[str, float]:
    """Shares behind the paper's 'base is uncertain where alignment changes its output' analysis."""
    if df.empty:
        return {
            k: float("nan")
            for k in (
                "n",
                "disagree_share",
                "captured_at_0.5",
                "captured_at_gamma",
                "below_0.5_share",
                "below_gamma_share",
                "disagree_given_p1_below_0.1",
            )
        }
    dis = df["rank"] > 1
    low = df["p1"] < 0.1
    return {
        "n": float(len(df)),
        "disagree_share": float(dis.mean()),
        "captured_at_0.5": float((df.loc[dis, "p1"] < 0.5).mean()) if dis.any() else float("nan"),
        "captured_at_gamma": float((df.loc[dis, "p1"] < gamma).mean()) if dis.any() else float("nan"),
        "below_0.5_share": float((df["p1"] < 0.5).mean()),
        "below_gamma_share": float((df["p1"] < gamma).mean()),
        "disagree_given_p1_below_0.1": float(dis[low].mean()) if low.any() else float("nan"),
    }


def uncertainty_figure(frames: Mapping[str, pd.DataFrame]):
    """Histogram of base top-1 probability by agreement label, one panel per family."""
    from reprokit.results import new_figure

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


def sweep_figure(df: pd.DataFrame):
    """Accuracy and nudged-token share against gamma."""
    from reprokit.results import new_figure

    fig, ax = new_figure(figsize=(5, 3.2))
    ax.plot(df["gamma"], df["accuracy"], marker="o", label="nudging accuracy (%)")
    ax.plot(df["gamma"], df["nudged_tokens_%"], marker="s", label="nudged tokens (%)")
    if "small_aligned" in df:
        ax.axhline(float(df["small_aligned"].iloc[0]), ls="--", color="grey", label="small aligned (%)")
    ax.axvspan(0.2, 0.5, color="#dddddd", alpha=0.5)
    ax.set_xlabel("gamma")
    ax.legend(fontsize=7)
    return fig


# ---------------------------------------------------------------------------------------------- report
def _fmt(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _notes(cfg: ReproduceConfig, knowledge: Sequence[dict], table1: Sequence[dict], claims: Sequence) -> str:
    """The report's notes, every number taken from this run's measurements."""
    lines = [
        "- Claims are measured and marked, never tuned per run: a claim that does not hold at this scale "
        "is reported as not holding.",
        "- Nudged share: `nudged_tokens_%` counts every base-tokenizer token that starts inside a nudging "
        "segment, the final EOS-ending segment included; `nudged_words_%` is the official measure (words, "
        "final segment excluded).",
        "- Uncertainty analysis: positions of the large aligned model's own greedy answers, scored by the "
        "base model on the plain prompt (same tokenizer); 'disagree' = the aligned token is not the base "
        "model's top-1.",
    ]
    if knowledge:
        parts = []
        for fam in dict.fromkeys(r["family"] for r in knowledge):
            rows = {r["model"]: r for r in knowledge if r["family"] == fam}
            big, small = rows.get("large base"), rows.get("small base")
            if big and small:
                parts.append(
                    f"{fam}: large base {big['facts']:.0f}% of facts and {big['arithmetic']:.0f}% of "
                    f"problems, small base {small['facts']:.0f}% and {small['arithmetic']:.0f}% (on the "
                    f"facts of the people it read: {small['facts_read_by_small']:.0f}%)"
                )
        lines.append(
            "- Knowledge (`table_knowledge`, plain-text probes, greedy): " + "; ".join(parts) + ". The "
            "paper's premise that the large base model knows more than the small aligned one is checked "
            "here directly, not assumed."
        )
    by = {(r["family"], r["model"]): r for r in table1}
    for fam in dict.fromkeys(r["family"] for r in table1):
        b, s_, la, n = (by.get((fam, m)) for m in ("base", "small_aligned", "large_aligned", "nudging"))
        if not (b and s_ and la and n):
            continue
        known = {r["model"]: r for r in knowledge if r["family"] == fam}
        big, tuned = known.get("large base"), known.get("large aligned")
        if big and tuned and np.isfinite(big.get("arithmetic_after_opening", np.nan)) and "arithmetic" in n:
            lines.append(
                f"- Arithmetic in the aligned style ({fam}): the large base model solves "
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
        best = max(
            cfg.tasks if cfg.scale == "tiny" else [k for k in n if k in b],
            key=lambda t, n=n, b=b: n.get(t, float("nan")) - b.get(t, float("nan")),
            default=None,
        )
        text = (
            f"- {fam}: average accuracy base {b['avg']:.1f}, small aligned {s_['avg']:.1f}, large aligned "
            f"{la['avg']:.1f}, nudging {n['avg']:.1f} (nudged words {n['nudged_words_%']:.1f}%, tokens "
            f"{n['nudged_tokens_%']:.1f}%)"
        )
        if best is not None and best in n:
            text += f"; nudging's largest gain over the base is on {best} ({n[best] - b[best]:+.1f} points)"
        lines.append(text + ".")
    failing = [c for c in claims if not c.holds]
    if failing:
        lines.append(
            "- Not holding at this scale: "
            + "; ".join(f"`{c.id}` (measured {_fmt(c.measured)}, expected {c.expected})" for c in failing)
            + ". Tiny models (about 0.2M-1M parameters, minutes of CPU training) copy names and numbers "
            "from the question less reliably than the paper's 7B-70B models, so the base model is also "
            "uncertain at some content positions, where the weaker small model then writes (see "
            "`examples`)."
        )
    else:
        lines.append("- Every claim holds at this scale.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the run
@dataclass
class FamilyModels:
    """Loaded models of one family (any scale)."""

    name: str
    base: Loaded
    small_aligned: Loaded
    large_aligned: Loaded
    gamma: float
    small_base: Loaded | None = None  # tiny scale: the small model before alignment (knowledge probes)


def _tiny_setup(
    cfg: ReproduceConfig, cache_dir: str | Path | None
) -> tuple[list[FamilyModels], dict[str, tuple[TaskItem, ...]], tuple]:
    from nudging.tiny import build_tiny

    data, families = build_tiny(cfg.tiny, cache_dir=cache_dir)
    out = [
        FamilyModels(
            f.spec.name,
            f.load("base"),
            f.load("small_aligned"),
            f.load("large_aligned"),
            cfg.gamma,
            f.load("small_base"),
        )
        for f in families
    ]
    return out, {t: data.tasks[t] for t in cfg.tasks}, data.probes


def arithmetic_after_opening(
    model_tok: Loaded, items: Sequence[TaskItem], cfg: ReproduceConfig
) -> tuple[float, list[str]]:
    """Accuracy (%) of a base model answering the plain prompt after an aligned opening is written for it.

    This is the situation nudging puts the base model in (the nudging model writes the opening, the
    base continues): does the base still solve the problem in the aligned style? Openings rotate over
    `reprokit.world.ALIGNED_OPENINGS`; the answer is scored like the tasks (last number).
    """
    from reprokit.world.chat import ALIGNED_OPENINGS

    model, tok = model_tok
    openings = [ALIGNED_OPENINGS[i % len(ALIGNED_OPENINGS)] for i in range(len(items))]
    prompts = [base_prompt(i.question) + o for i, o in zip(items, openings, strict=True)]
    texts = generate_texts(model, tok, prompts, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    answers = [o + t for o, t in zip(openings, texts, strict=True)]
    ok = [score(i, a) for i, a in zip(items, answers, strict=True)]
    return 100 * float(np.mean(ok)) if ok else float("nan"), answers


def knowledge_rows(
    families: Sequence[FamilyModels],
    probes: Sequence,
    cfg: ReproduceConfig,
    arithmetic_items: Sequence[TaskItem] = (),
) -> list[dict]:
    """Plain-text knowledge of each family's large base, small base and large aligned model (textbook-style
    probes; the large aligned row shows what the alignment fine-tune itself added).

    Facts: greedy completion of "<name> lives in" / "<name> works as" for the evaluation people; the
    `facts_read_by_small` column restricts to the people whose pages the small model read.
    Arithmetic: greedy completion of "Problem: <question>\nSolution:" for the evaluation problems, and
    (`arithmetic_after_opening`) the same problems asked with the plain prompt, an aligned opening
    already written: the base model's skill where nudging relies on it.
    """
    from nudging.tiny import probe_knowledge

    rows = []
    for fam in families:
        for name, model in (
            ("large base", fam.base),
            ("small base", fam.small_base),
            ("large aligned", fam.large_aligned),
        ):
            if model is None:
                continue
            after_opening = (
                arithmetic_after_opening(model, arithmetic_items, cfg)[0] if arithmetic_items else np.nan
            )
            ok = np.array(probe_knowledge(model, probes, batch_size=cfg.batch_size), dtype=float)
            kinds = np.array([p.kind for p in probes])
            small = np.array([p.kind == "fact" and p.known_to_small for p in probes])
            rows.append(
                {
                    "family": fam.name,
                    "model": name,
                    "facts": 100 * float(ok[kinds == "fact"].mean()) if (kinds == "fact").any() else np.nan,
                    "facts_read_by_small": 100 * float(ok[small].mean()) if small.any() else np.nan,
                    "arithmetic": 100 * float(ok[kinds == "arithmetic"].mean())
                    if (kinds == "arithmetic").any()
                    else np.nan,
                    "arithmetic_after_opening": after_opening,
                    "n_facts": int((kinds == "fact").sum()),
                    "n_arithmetic": int((kinds == "arithmetic").sum()),
                }
            )
    return rows


def _paper_setup(
    cfg: ReproduceConfig, device: str, dtype: str
) -> tuple[list[FamilyModels], dict[str, tuple[TaskItem, ...]]]:
    from nudging.tasks import load_paper_task
    from reprokit.models import load_causal_lm

    if not cfg.paper_families or not cfg.paper_tasks:
        raise ValueError(
            "the paper scale needs paper_families and paper_tasks in its config (see paper.toml)"
        )
    fams = []
    for f in cfg.paper_families:
        load = lambda name: load_causal_lm(name, dtype=dtype, device=device)  # noqa: E731
        fams.append(FamilyModels(f.name, load(f.base), load(f.small_aligned), load(f.large_aligned), f.gamma))
    tasks = {t: tuple(load_paper_task(t, n=cfg.paper_n)) for t in cfg.paper_tasks}
    return fams, tasks


def run(
    cfg: ReproduceConfig,
    out_dir: str | Path,
    *,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    resume: bool = True,
) -> Path:
    """Run the whole reproduction and write tables, figures, claims.json, manifest.json and REPORT.md.

    Every system's outputs on every task are saved as they finish (`reprokit.results.ResumeStore` in the
    cache folder), so an interrupted paper-scale run picks up where it stopped; `resume=False` (the
    `--fresh` flag) recomputes everything.
    """
    import functools

    import transformers

    import nudging
    import reprokit
    from reprokit.cli import resolve_cache_dir
    from reprokit.results import Claim, ResumeStore, RunOutput, Table, code_fingerprint
    from reprokit.seed import set_seed

    store = ResumeStore(resolve_cache_dir(cache_dir) / "runs" / "nudging", enabled=resume)
    run_id = {  # everything the saved outputs depend on besides the piece itself
        "config": dataclasses.asdict(cfg),
        "seed": seed,
        "device": device,
        "dtype": dtype,
        "code": code_fingerprint(nudging, reprokit),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }

    def stored(piece: dict[str, Any], compute: Any) -> SystemRun:
        """One system on one task, loaded if an earlier run with the same settings finished it."""
        return store.fetch_or_run({**run_id, **piece}, compute, encode=_encode_run, decode=_decode_run)

    set_seed(seed)
    out = RunOutput(
        out_dir, paper="nudging", scale=cfg.scale, seed=seed, config=dataclasses.asdict(cfg), device=device
    )
    judge = None
    if cfg.judge_model:
        from nudging.tasks import OpenAIJudge

        judge = OpenAIJudge(cfg.judge_model, base_url=cfg.judge_base_url)
    with out.time("setup"):
        if cfg.scale == "tiny":
            families, tasks, probes = _tiny_setup(cfg, cache_dir)
        else:
            (families, tasks), probes = _paper_setup(cfg, device, dtype), ()
    task_names = list(tasks)

    # ---- knowledge diagnostic (tiny scale): does the large base know more than the small model?
    knowledge: list[dict] = []
    if probes:
        with out.time("knowledge"):
            knowledge = knowledge_rows(families, probes, cfg, tasks.get("arithmetic", ()))
        out.table(
            Table.from_records(
                "table_knowledge",
                knowledge,
                "Knowledge on plain-text probes (%): greedy completion of '<name> lives in' / '<name> works "
                "as' for the evaluation people and of 'Problem: ...\\nSolution:' for the evaluation "
                "problems; arithmetic_after_opening: the evaluation problems on the plain prompt, continuing "
                "an aligned opening written for the model (what nudging asks of the base model)",
            )
        )

    # ---- Table 1
    wide, long, runs_by_family = [], [], {}
    with out.time("table1"):
        for fam in families:
            runs: dict[str, dict[str, SystemRun]] = {
                "base": {},
                "small_aligned": {},
                "large_aligned": {},
                "nudging": {},
            }
            for t, items in tasks.items():
                piece = {"table": "table1", "family": fam.name, "task": t}
                for system, model, chat in (
                    ("base", fam.base, False),
                    ("small_aligned", fam.small_aligned, True),
                    ("large_aligned", fam.large_aligned, True),
                ):
                    runs[system][t] = stored(
                        {**piece, "system": system},
                        functools.partial(run_single, model, items, chat=chat, cfg=cfg, judge=judge),
                    )
                runs["nudging"][t] = stored(
                    {**piece, "system": "nudging", "gamma": fam.gamma},
                    functools.partial(
                        run_nudging, fam.base, fam.small_aligned, items, gamma=fam.gamma, cfg=cfg,
                        desc=f"{fam.name} {t}", judge=judge,
                    ),
                )  # fmt: skip
            w, lg = accuracy_rows(fam.name, runs, task_names, cfg, seed)
            wide += w
            long += lg
            runs_by_family[fam.name] = runs
    table1 = out.table(
        Table.from_records(
            "table1",
            wide,
            "Zero-shot accuracy (%) per task; nudging = large base + small aligned (Table 1 analogue)",
        )
    )
    out.table(
        Table.from_records("table1_ci", long, "Per-task accuracy (%) with 95% bootstrap confidence intervals")
    )
    examples = []
    for fam in families:
        for t in task_names:
            r = runs_by_family[fam.name]
            for i in range(min(2, len(tasks[t]))):
                examples.append(
                    {
                        "family": fam.name,
                        "task": t,
                        "question": tasks[t][i].question,
                        "gold": tasks[t][i].answer,
                        "base": r["base"][t].outputs[i],
                        "nudging": r["nudging"][t].outputs[i],
                        "large_aligned": r["large_aligned"][t].outputs[i],
                    }
                )
    out.table(Table.from_records("examples", examples, "Example outputs (first two items per task)"))

    # ---- cross-family
    cross_rows = []
    cross_pairs = [(a, b) for a in families for b in families if a is not b]
    if cfg.scale == "paper":
        by_name = {f.name: f for f in families}
        cross_pairs = [(by_name[a], by_name[b]) for a, b in cfg.paper_cross]
    cross_tasks = [t for t in cfg.cross_tasks if t in tasks]
    with out.time("cross_family"):
        for base_fam, nudge_fam in cross_pairs:
            row: dict[str, Any] = {"base": base_fam.name, "nudger": nudge_fam.name}
            for t in cross_tasks:
                r = stored(
                    {"table": "cross", "base": base_fam.name, "nudger": nudge_fam.name, "task": t},
                    functools.partial(
                        run_nudging, base_fam.base, nudge_fam.small_aligned, tasks[t], gamma=base_fam.gamma,
                        cfg=cfg, desc=f"{base_fam.name}+{nudge_fam.name} {t}", judge=judge,
                    ),
                )  # fmt: skip
                row[f"{t}_base"] = 100 * float(runs_by_family[base_fam.name]["base"][t].correct.mean())
                row[f"{t}_nudger"] = 100 * float(
                    runs_by_family[nudge_fam.name]["small_aligned"][t].correct.mean()
                )
                row[f"{t}_nudging"] = 100 * float(r.correct.mean())
                row[f"{t}_nudged_tokens_%"] = 100 * float(r.token_share.mean())
            cross_rows.append(row)
    out.table(
        Table.from_records(
            "table_cross_family",
            cross_rows,
            "Cross-family nudging: a base model of one family nudged by the small aligned model of the other "
            "(accuracy %)",
        )
    )

    # ---- uncertainty analysis
    frames, summaries = {}, []
    with out.time("uncertainty"):
        for fam in families:
            parts = []
            for t in task_names:
                items = tasks[t][: cfg.uncertainty_n]
                outs = runs_by_family[fam.name]["large_aligned"][t].outputs[: cfg.uncertainty_n]
                parts.append(token_agreement(fam.base, items, outs))
            df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
            frames[fam.name] = df
            summaries.append({"family": fam.name, **uncertainty_summary(df, fam.gamma)})
    out.figure(uncertainty_figure(frames), "figure_uncertainty")
    out.table(
        Table.from_records(
            "table_uncertainty",
            summaries,
            "Base top-1 probability at positions where it agrees / disagrees with the large aligned model",
        )
    )

    # ---- gamma sweep (first family)
    fam = families[0]
    sweep_tasks = [t for t in cfg.sweep_tasks if t in tasks]
    sweep_rows = []
    with out.time("gamma_sweep"):
        small_acc = 100 * float(
            np.mean(
                [
                    runs_by_family[fam.name]["small_aligned"][t].correct[: cfg.sweep_n].mean()
                    for t in sweep_tasks
                ]
            )
        )
        for g in cfg.sweep_gammas:
            accs, shares = [], []
            for t in sweep_tasks:
                r = stored(
                    {"table": "gamma_sweep", "family": fam.name, "task": t, "gamma": g},
                    functools.partial(
                        run_nudging, fam.base, fam.small_aligned, tasks[t][: cfg.sweep_n], gamma=g,
                        cfg=cfg, desc=f"gamma {g} {t}", judge=judge,
                    ),
                )  # fmt: skip
                accs.append(r.correct.mean())
                shares.append(r.token_share.mean())
            sweep_rows.append(
                {
                    "family": fam.name,
                    "gamma": g,
                    "accuracy": 100 * float(np.mean(accs)),
                    "nudged_tokens_%": 100 * float(np.mean(shares)),
                    "small_aligned": small_acc,
                }
            )
    sweep = pd.DataFrame(sweep_rows)
    out.table(
        Table(
            "figure_gamma_sweep",
            sweep,
            f"Gamma sweep ({fam.name} family; tasks {', '.join(sweep_tasks)}; "
            f"first {cfg.sweep_n} items each)",
        )
    )
    out.figure(sweep_figure(sweep), "figure_gamma_sweep")

    # ---- claims
    t1 = table1.frame.set_index(["family", "model"])
    for f in families:
        nud, small, large = (
            float(t1.loc[(f.name, m), "avg"]) for m in ("nudging", "small_aligned", "large_aligned")
        )
        base = float(t1.loc[(f.name, "base"), "avg"])
        out.claim(
            Claim.check(
                f"{f.name}_nudging_beats_small",
                f"{f.name}: nudging average accuracy minus the small aligned model's (points)",
                nud - small,
                ">",
                0.0,
                paper_value="+15.4 / +14.6 / +9.5 (Llama-2 / Gemma-2 / OLMo)",
            )
        )
        out.claim(
            Claim.check(
                f"{f.name}_nudging_close_to_large",
                f"{f.name}: nudging average minus the large aligned model's (points; close = within 5)",
                nud - large,
                ">=",
                -5.0,
                paper_value="+1.2 / -4.1 / +1.6",
            )
        )
        out.claim(
            Claim.check(
                f"{f.name}_nudging_beats_base",
                f"{f.name}: nudging average minus the base model's (points)",
                nud - base,
                ">",
                0.0,
                paper_value="+24.1 / +57.9 / +11.9",
            )
        )
        words = float(t1.loc[(f.name, "nudging"), "nudged_words_%"])
        tokens = float(t1.loc[(f.name, "nudging"), "nudged_tokens_%"])
        out.claim(
            Claim.check(
                f"{f.name}_small_nudged_share",
                f"{f.name}: share of answer words written by the nudging model (%, official measure: "
                "the final EOS-ending segment excluded)",
                words,
                "<",
                15.0,
                paper_value="about 10% (<9% OLMo on GSM8K)",
                details=f"share of tokens, every nudging segment included: {tokens:.1f}%",
            )
        )
    for s in summaries:
        out.claim(
            Claim.check(
                f"{s['family']}_uncertain_where_alignment_changes",
                f"{s['family']}: share of base/aligned disagreement positions with base p1 < 0.5",
                s["captured_at_0.5"],
                ">=",
                0.8,
                paper_value="> 80%",
                details=f"positions with p1 < 0.5: {100 * s['below_0.5_share']:.1f}% of all (paper ~11%)",
            )
        )
        out.claim(
            Claim.check(
                f"{s['family']}_uncertain_positions_are_few",
                f"{s['family']}: share of all positions with base p1 < 0.5",
                s["below_0.5_share"],
                "<=",
                0.25,
                paper_value="about 11%",
            )
        )
    for row in cross_rows:
        margins = [
            min(row[f"{t}_nudging"] - row[f"{t}_base"], row[f"{t}_nudging"] - row[f"{t}_nudger"])
            for t in cross_tasks
        ]
        out.claim(
            Claim.check(
                f"cross_{row['base']}_by_{row['nudger']}",
                f"{row['base']} base nudged by {row['nudger']} small aligned: mean margin over the better "
                "of base and nudger alone (points)",
                float(np.mean(margins)) if margins else float("nan"),
                ">",
                0.0,
                paper_value="Gemma-2-27b + Llama-2-7b-chat: 65.0 vs 22.0 / 7.0 on GSM8K",
            )
        )
    robust = sweep[(sweep["gamma"] >= 0.2 - 1e-9) & (sweep["gamma"] <= 0.5 + 1e-9)]
    if len(robust):
        spread = float(robust["accuracy"].max() - robust["accuracy"].min())
        out.claim(
            Claim.check(
                "robust_gamma_0.2_0.5",
                f"{fam.name}: accuracy spread (max - min, points) over gamma in [0.2, 0.5]",
                spread,
                "<=",
                10.0,
                paper_value="robust for gamma in 0.2-0.5 (Fig. 7)",
                details=f"accuracies: {', '.join(f'{a:.1f}' for a in robust['accuracy'])}",
            )
        )

    # ---- ours vs paper
    for f in families:
        row = t1.loc[f.name]
        ours = " / ".join(
            f"{row.loc[m, 'avg']:.1f}" for m in ("base", "small_aligned", "large_aligned", "nudging")
        )
        out.compare(
            f"{f.name}: average accuracy base / small aligned / large aligned / nudging",
            ours,
            "; ".join(f"{k}: {' / '.join(str(v) for v in vals)}" for k, vals in PAPER_AVG.items()),
        )
    for row in cross_rows:
        t = cross_tasks[0] if cross_tasks else None
        if t:
            out.compare(
                f"cross-family {row['base']} + {row['nudger']} on {t}: base / nudger / nudging",
                f"{row[f'{t}_base']:.1f} / {row[f'{t}_nudger']:.1f} / {row[f'{t}_nudging']:.1f}",
                "Gemma-2-27b + Llama-2-7b-chat on GSM8K: 7.0 / 22.0 / 65.0",
            )
    for s in summaries:
        out.compare(
            f"{s['family']}: disagreement positions with p1 < 0.5 / all positions with p1 < 0.5",
            f"{100 * s['captured_at_0.5']:.1f}% / {100 * s['below_0.5_share']:.1f}%",
            "> 80% / about 11%",
        )
    analogues = (
        ", ".join(f"{k} ({v})" for k, v in TINY_ANALOGUES.items() if k in tasks)
        if cfg.scale == "tiny"
        else ", ".join(task_names)
    )
    summary = (
        f"Scale `{cfg.scale}`. Tasks: {analogues}. Families: {', '.join(f.name for f in families)}; "
        f"gamma {cfg.gamma} "
        f"(sweep on {fam.name}). Greedy decoding, at most {cfg.max_new_tokens} new tokens; accuracies in %, "
        "95% bootstrap intervals in `table1_ci`. The paper's numbers are on real 7B-70B models and 11 tasks; "
        "only directions and rough magnitudes are comparable."
    )
    notes = _notes(cfg, knowledge, wide, out.claims)
    return out.finish(title=f"Nudging — {cfg.scale} reproduction", summary=summary, notes=notes)
