"""What one seed's tables share: its models and tasks, and every system's runs, computed once.

`NudgingSetup` holds one seed's families (loaded models) and tasks (from `nudging.tiny.setup` or
`nudging.paper.setup`). The runs several tables use (every system on every task, the cross-family runs,
the token agreement, the gamma sweep, Table 1's accuracy rows) are computed when first asked and kept;
each system's outputs on each task are also saved in the run's `ResumeStore` as they finish, so an
interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from nudging.config import NudgingConfig
from nudging.nudger import Nudger
from nudging.prompts import NudgingPrompt, base_prompt, task_prompts
from nudging.tasks import TaskItem, item_value
from reprokit.generation import generate_texts

if TYPE_CHECKING:
    from nudging.reproduce import Evaluation
    from nudging.tiny import Probe
    from reprokit.lm import LanguageModel
    from reprokit.reproduce import RunContext
    from reprokit.results import ResumeStore

__all__ = ["SYSTEMS", "Family", "NudgingSetup", "SystemRun", "accuracy_rows", "token_agreement"]

#: The four systems of Table 1, in its row order.
SYSTEMS = ("base", "small_aligned", "large_aligned", "nudging")
Judge = Callable[[TaskItem, str], bool]


# ------------------------------------------------------------------------------------------------ setup
@dataclass
class Family:
    """One family's loaded models (either scale) and its gamma."""

    name: str
    base: LanguageModel
    small_aligned: LanguageModel
    large_aligned: LanguageModel
    gamma: float
    small_base: LanguageModel | None = None  # the small model before alignment (tiny: knowledge probe;
    # paper: the proxy-tuning anti-expert)
    template: str = "chat"  # the aligned models' prompts: "chat" (tokenizer) or "official" (hand-written)
    nudger_prefix: str | None = ""  # the question prefix in the aligned models' user turn (None: the item's
    # own, as the official code; "" for models fine-tuned on bare questions, such as the tiny nudgers)

    def prompts(self, item: TaskItem, tokenizer: Any) -> NudgingPrompt:
        """Both prompts of `item` for this family (the base's plain prompt, the aligned models' chat)."""
        return task_prompts(item, tokenizer, template=self.template, nudger_prefix=self.nudger_prefix)


@dataclass
class SystemRun:
    """One system on one task: outputs, 0/1 correctness and (for nudging) nudged shares per answer."""

    outputs: list[str]
    correct: np.ndarray
    token_share: np.ndarray | None = None
    word_share: np.ndarray | None = None

    def encode(self) -> dict[str, Any]:
        """JSON-ready (for the `ResumeStore`)."""
        return {
            "outputs": self.outputs,
            "correct": self.correct.tolist(),
            "token_share": None if self.token_share is None else self.token_share.tolist(),
            "word_share": None if self.word_share is None else self.word_share.tolist(),
        }

    def token_shares(self) -> np.ndarray:
        """Per answer, the share of its tokens the nudging model wrote (NaN for a system that does not
        nudge)."""
        if self.token_share is None:
            return np.full(len(self.correct), np.nan)
        return self.token_share

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> SystemRun:
        """Inverse of `encode` (a saved null, i.e. NaN, becomes NaN again)."""

        def arr(v: Any) -> np.ndarray | None:
            return None if v is None else np.array(v, dtype=float)

        correct = np.array(data["correct"], dtype=float)
        return cls(list(data["outputs"]), correct, arr(data["token_share"]), arr(data["word_share"]))


@dataclass
class NudgingSetup:
    """One seed's models and tasks, and the runs the tables share (each computed once, when first asked).

    `ctx` gives the seed (bootstrap intervals and sampling follow it), logging and the resume store.
    """

    ctx: RunContext
    section: Evaluation
    families: list[Family]
    tasks: dict[str, tuple[TaskItem, ...]]
    cross_pairs: list[tuple[Family, Family]] = field(default_factory=list)
    probes: tuple[Probe, ...] = ()
    judge: Judge | None = None
    _family_runs: dict[str, dict[str, dict[str, SystemRun]]] = field(default_factory=dict, repr=False)

    @property
    def seed(self) -> int:
        return self.ctx.seed

    @functools.cached_property
    def store(self) -> ResumeStore:
        """Finished system/task runs of earlier runs with the same settings (see `run_id`)."""
        return self.ctx.resume_store()

    @functools.cached_property
    def run_id(self) -> dict[str, Any]:
        """Everything a saved run depends on besides the piece itself (`RunContext.run_id`): config,
        scale, seed, device, dtype, a hash of the nudging and reprokit sources, library versions."""
        import nudging
        import reprokit

        return self.ctx.run_id(self.section, nudging, reprokit)

    def stored(self, piece: Mapping[str, Any], compute: Callable[[], SystemRun]) -> SystemRun:
        """One system on one task, loaded if an earlier run with the same settings finished it."""
        return self.store.fetch_or_run(
            {**self.run_id, **piece}, compute, encode=SystemRun.encode, decode=SystemRun.decode
        )

    def nudging_config(self, gamma: float) -> NudgingConfig:
        """The section's `NudgingConfig` at `gamma`, sampling (if any) seeded with the run seed."""
        return dataclasses.replace(self.section.nudging, gamma=gamma, seed=self.seed)

    def single(
        self, lm: LanguageModel, items: Sequence[TaskItem], *, chat: bool, family: Family | None = None
    ) -> SystemRun:
        """Greedy decoding with one model: the plain prompt (base) or its family's chat prompt (aligned)."""
        fam = family or Family("", lm, lm, lm, 0.0)
        prompts = [
            fam.prompts(i, lm.tokenizer).nudger if chat else fam.prompts(i, lm.tokenizer).base for i in items
        ]
        outs = generate_texts(
            lm,
            prompts,
            max_new_tokens=self.section.nudging.max_new_tokens,
            batch_size=self.section.batch_size,
            add_special_tokens=not chat,
        )
        return SystemRun(
            outs, np.array([item_value(i, o, self.judge) for i, o in zip(items, outs, strict=True)], float)
        )

    def nudged(
        self,
        base: LanguageModel,
        nudger: LanguageModel,
        items: Sequence[TaskItem],
        *,
        gamma: float,
        desc: str,
        family: Family | None = None,
    ) -> SystemRun:
        """Nudged decoding of every item (lock-step batches), with the nudging `family`'s prompts."""
        n = Nudger(base, nudger, self.nudging_config(gamma))
        fam = family or Family("", base, nudger, nudger, gamma)
        res = n.generate_batch(
            [fam.prompts(i, nudger.tokenizer) for i in items],
            batch_size=self.section.batch_size,
            show_progress=True,
            desc=desc,
        )
        return SystemRun(
            [r.text for r in res],
            np.array([item_value(i, r.text, self.judge) for i, r in zip(items, res, strict=True)], float),
            np.array([r.nudged_token_share for r in res]),
            np.array([r.nudged_word_share for r in res]),
        )

    def family_runs(self, fam: Family) -> dict[str, dict[str, SystemRun]]:
        """system -> task -> run, for the four systems of Table 1 (computed once per family)."""
        if fam.name not in self._family_runs:
            runs: dict[str, dict[str, SystemRun]] = {s: {} for s in SYSTEMS}
            for t, items in self.tasks.items():
                self.ctx.log("%s: %s (%d items)", fam.name, t, len(items))
                piece = {"table": "table1", "family": fam.name, "task": t}
                for system, lm, chat in (
                    ("base", fam.base, False),
                    ("small_aligned", fam.small_aligned, True),
                    ("large_aligned", fam.large_aligned, True),
                ):
                    runs[system][t] = self.stored(
                        {**piece, "system": system},
                        functools.partial(self.single, lm, items, chat=chat, family=fam),
                    )
                runs["nudging"][t] = self.stored(
                    {**piece, "system": "nudging", "gamma": fam.gamma},
                    functools.partial(
                        self.nudged,
                        fam.base,
                        fam.small_aligned,
                        items,
                        gamma=fam.gamma,
                        desc=f"{fam.name} {t}",
                        family=fam,
                    ),
                )
                for name in getattr(self.section, "baselines", ()):
                    runs.setdefault(name, {})[t] = self.stored(
                        {**piece, "system": name}, functools.partial(self.baseline, name, fam, items)
                    )
            self._family_runs[fam.name] = runs
        return self._family_runs[fam.name]

    def baseline(self, name: str, fam: Family, items: Sequence[TaskItem]) -> SystemRun:
        """One of the paper's baselines on `items`: "ensemble" (base and small aligned distributions,
        equal weights), "proxy_tuning" (base + small aligned - small base) or "urial" (the base model with
        URIAL's in-context alignment prefix)."""
        from nudging.baselines import ensemble_generate, proxy_tune_generate, urial_generate, urial_prompt

        common = {
            "max_new_tokens": self.section.nudging.max_new_tokens,
            "batch_size": self.section.batch_size,
        }
        if name == "urial":
            prompts = [urial_prompt(i.question, system=i.system, context=i.context) for i in items]
            outs = urial_generate(fam.base, prompts, **common)
        else:
            pairs = [fam.prompts(i, fam.small_aligned.tokenizer) for i in items]
            if name == "ensemble":
                outs = ensemble_generate(fam.base, fam.small_aligned, pairs, template=fam.template, **common)
            elif fam.small_base is None:
                raise ValueError(f"family {fam.name!r} has no small base model (proxy tuning's anti-expert)")
            else:
                outs = proxy_tune_generate(
                    fam.base, fam.small_aligned, fam.small_base, pairs, template=fam.template, **common
                )
        texts = [o.text for o in outs]
        values = [item_value(i, t, self.judge) for i, t in zip(items, texts, strict=True)]
        return SystemRun(texts, np.array(values, dtype=float))

    @functools.cached_property
    def cross_runs(self) -> dict[tuple[str, str], dict[str, SystemRun]]:
        """(base family, nudging family) -> task -> the base nudged by the other family's small model."""
        from nudging.paper import cross_nudger_role

        out: dict[tuple[str, str], dict[str, SystemRun]] = {}
        for base_fam, nudge_fam in self.cross_pairs:
            runs = out.setdefault((base_fam.name, nudge_fam.name), {})
            role = cross_nudger_role(base_fam.name, nudge_fam.name)  # e.g. Gemma-2 + OLMo-7B-instruct
            for t in self.section.cross_tasks:
                runs[t] = self.stored(
                    {"table": "cross", "base": base_fam.name, "nudger": nudge_fam.name, "task": t}
                    | ({"role": role} if role != "small_aligned" else {}),
                    functools.partial(
                        self.nudged,
                        base_fam.base,
                        getattr(nudge_fam, role),
                        self.tasks[t],
                        gamma=base_fam.gamma,
                        desc=f"{base_fam.name}+{nudge_fam.name} {t}",
                        family=nudge_fam,
                    ),
                )
        return out

    @functools.cached_property
    def accuracy(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(Table 1 rows, per-task rows with bootstrap intervals), both families."""
        wide: list[dict[str, Any]] = []
        long: list[dict[str, Any]] = []
        for fam in self.families:
            w, lg = accuracy_rows(fam.name, self.family_runs(fam), list(self.tasks), self.section, self.seed)
            wide += w
            long += lg
        return wide, long

    @functools.cached_property
    def agreement(self) -> dict[str, pd.DataFrame]:
        """family -> per-position base top-1 probability and rank of the large aligned model's token."""
        n = self.section.uncertainty_n
        out = {}
        for fam in self.families:
            runs = self.family_runs(fam)["large_aligned"]
            parts = [token_agreement(fam.base, self.tasks[t][:n], runs[t].outputs[:n]) for t in self.tasks]
            out[fam.name] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return out

    @functools.cached_property
    def knowledge_items(self) -> pd.DataFrame:
        """Per-item knowledge of each family's models (`nudging.experiments.knowledge_items`)."""
        from nudging.experiments import knowledge_items

        return knowledge_items(self, self.section)

    @functools.cached_property
    def sweep_items(self) -> pd.DataFrame:
        """The gamma sweep of the first family, one row per gamma, task and item (first `sweep_n` items):
        correctness and nudged-token share (for the claim's paired interval over items)."""
        fam, n = self.families[0], self.section.sweep_n
        rows = []
        for g in self.section.sweep_gammas:
            for t in self.section.sweep_tasks:
                if g == fam.gamma:  # the Table 1 run already decoded these items at this gamma
                    r = self.family_runs(fam)["nudging"][t]
                else:
                    r = self.stored(
                        {"table": "gamma_sweep", "family": fam.name, "task": t, "gamma": g},
                        functools.partial(
                            self.nudged,
                            fam.base,
                            fam.small_aligned,
                            self.tasks[t][:n],
                            gamma=g,
                            desc=f"gamma {g} {t}",
                        ),
                    )
                shares = r.token_shares()
                for item, ok, share in zip(self.tasks[t][:n], r.correct[:n], shares[:n], strict=True):
                    rows.append(
                        {
                            "family": fam.name,
                            "gamma": g,
                            "task": t,
                            "item": item.id,
                            "correct": float(ok),
                            "nudged_token_share": float(share),
                        }
                    )
        return pd.DataFrame(
            rows, columns=["family", "gamma", "task", "item", "correct", "nudged_token_share"]
        )

    @functools.cached_property
    def sweep(self) -> pd.DataFrame:
        """Accuracy and nudged-token share of the first family against gamma (first `sweep_n` items),
        each the mean over the sweep tasks of the task's mean."""
        fam, n = self.families[0], self.section.sweep_n
        small = self.family_runs(fam)["small_aligned"]
        small_acc = 100 * float(np.mean([small[t].correct[:n].mean() for t in self.section.sweep_tasks]))
        per_task = self.sweep_items.groupby(["family", "gamma", "task"], sort=False)[
            ["correct", "nudged_token_share"]
        ].mean()
        means = per_task.groupby(level=["family", "gamma"], sort=False).mean().reset_index()
        return pd.DataFrame(
            {
                "family": means["family"],
                "gamma": means["gamma"],
                "accuracy": 100 * means["correct"],
                "nudged_tokens_%": 100 * means["nudged_token_share"],
                "small_aligned": small_acc,
            }
        )


# ------------------------------------------------------------------------------------------- accuracy
def accuracy_rows(
    family: str,
    runs: Mapping[str, Mapping[str, SystemRun]],
    tasks: Sequence[str],
    section: Evaluation,
    seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Wide rows (a Table 1 block: accuracy % per task, average, CI, nudged share) and long CI rows."""
    from reprokit.stats import bootstrap_ci

    def ci(values: np.ndarray) -> tuple[float, float]:
        c = bootstrap_ci(values, n_resamples=section.n_bootstrap, rng=seed)
        return 100 * c.low, 100 * c.high

    wide, long = [], []
    for system, by_task in runs.items():
        row: dict[str, Any] = {"family": family, "model": system}
        for t in tasks:
            run = by_task[t]
            acc = 100 * float(run.correct.mean())
            lo, hi = ci(run.correct)
            row[t] = acc
            long.append(
                {
                    "family": family,
                    "model": system,
                    "task": t,
                    "accuracy": acc,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": len(run.correct),
                }
            )
        row["avg"] = float(np.mean([row[t] for t in tasks]))
        row["avg_ci_low"], row["avg_ci_high"] = ci(np.concatenate([by_task[t].correct for t in tasks]))
        shares = [by_task[t].token_share for t in tasks if by_task[t].token_share is not None]
        words = [by_task[t].word_share for t in tasks if by_task[t].word_share is not None]
        row["nudged_tokens_%"] = 100 * float(np.mean(np.concatenate(shares))) if shares else float("nan")
        row["nudged_words_%"] = 100 * float(np.mean(np.concatenate(words))) if words else float("nan")
        wide.append(row)
    return wide, long


# ------------------------------------------------------------------------------------------- uncertainty
@torch.no_grad()
def token_agreement(
    base: LanguageModel, items: Sequence[TaskItem], aligned_outputs: Sequence[str]
) -> pd.DataFrame:
    """Per answer position of the aligned model: base top-1 probability and the rank of the aligned token.

    Both models share the tokenizer (same family); the aligned model's greedy token is its top-1.
    `content` marks the tokens that overlap the gold answer where the answer states it (the facts); the
    other tokens are the answer's style (openings, connectives, formatting).
    """
    model, tok = base.model, base.tokenizer
    rows = []
    for item, answer in zip(items, aligned_outputs, strict=True):
        if not answer:
            continue
        p_ids = tok(base_prompt(item.question))["input_ids"]
        a_ids, spans = _ids_and_spans(tok, answer)
        gold = _gold_spans(answer, item.answer)
        ids = torch.tensor([p_ids + a_ids], device=base.device)
        logits = model(input_ids=ids).logits[0, len(p_ids) - 1 : -1].float()
        probs = torch.softmax(logits, -1)
        target = torch.tensor(a_ids, device=probs.device)
        p_target = probs.gather(-1, target[:, None])[:, 0]
        ranks = (probs > p_target[:, None]).sum(-1) + 1
        p1 = probs.max(-1).values
        for pos, (p, r) in enumerate(zip(p1.tolist(), ranks.tolist(), strict=True)):
            start, end = spans[pos]
            content = any(start < g_end and g_start < end for g_start, g_end in gold)
            rows.append(
                {
                    "item": item.id,
                    "task": item.task,
                    "position": pos,
                    "p1": p,
                    "rank": int(r),
                    "content": content,
                }
            )
    df = pd.DataFrame(rows)
    if len(df):
        df["label"] = np.where(
            df["rank"] == 1, "agree", np.where(df["rank"] <= 3, "weakly disagree", "disagree")
        )
    return df


def _ids_and_spans(tok: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of `text` (no special tokens) and each token's character span in it."""
    if getattr(tok, "is_fast", False):
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    spans, prev = [], 0
    for i in range(len(ids)):  # slow tokenizers: the span of each token from the decoded prefixes
        end = len(tok.decode(ids[: i + 1]))
        spans.append((prev, end))
        prev = end
    return list(ids), spans


def _gold_spans(text: str, gold: str) -> list[tuple[int, int]]:
    """Character spans of every case-insensitive occurrence of the gold answer in `text`."""
    needle = gold.strip().lower()
    if not needle:
        return []
    hay = text.lower()
    spans, start = [], hay.find(needle)
    while start >= 0:
        spans.append((start, start + len(needle)))
        start = hay.find(needle, start + 1)
    return spans
