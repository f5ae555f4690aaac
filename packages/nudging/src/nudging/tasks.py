"""Evaluation tasks: the tiny analogues and the paper's 13 tasks, with rule-based scoring and a judge.

Scoring follows the official code: math answers are right when the last number of the raw output
equals the gold number; the other tasks compare the *final* answer with the gold one (the paper asks
GPT-4o-mini; here a rule where the answer is checkable, or any OpenAI-compatible judge).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reprokit.cli import error_summary
from reprokit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

Scoring = Literal["number", "choice", "text", "yes_no", "judge"]
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_FINAL = re.compile(r"(?:answer is|answer:)\s*(.+?)(?:\.(?:\s|$)|\n|$)", re.IGNORECASE)
_LETTER = re.compile(r"\b([A-D])\b")


@dataclass(frozen=True)
class TaskItem:
    """One question: the prompt text, the gold answer and how to score an output against it."""

    id: str
    task: str
    question: str
    answer: str
    scoring: Scoring
    choices: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------- scoring
def last_number(text: str) -> float | None:
    """The last number in `text` (commas removed), as in the official math scoring."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def final_answer(text: str) -> str:
    """The text after the last "answer is" / "Answer:" up to the sentence end, else the last sentence."""
    found = _FINAL.findall(text)
    if found:
        return found[-1].strip()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n", text.strip()) if s.strip()]
    return sentences[-1].strip() if sentences else ""


def _contains(haystack: str, needle: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(needle.lower())}(?!\w)", haystack.lower()) is not None


def score(item: TaskItem, output: str, judge: Callable[[TaskItem, str], bool] | None = None) -> bool:
    """Whether `output` answers `item` correctly (rule-based; `judge` for scoring == "judge")."""
    if item.scoring == "number":
        got, gold = last_number(output), last_number(item.answer)
        return got is not None and gold is not None and abs(got - gold) < 1e-6
    if item.scoring == "judge":
        if judge is None:
            raise ValueError(
                f"task {item.task!r} needs a judge; pass judge=OpenAIJudge(...) "
                "(pip install 'nudging[judge]')."
            )
        return bool(judge(item, output))
    final = final_answer(output)
    if item.scoring == "choice":
        letter = _LETTER.search(final)
        if letter is not None:
            return letter.group(1) == item.answer
        gold_text = item.choices["ABCD".index(item.answer)] if item.choices else ""
        others = [c for c in item.choices if c != gold_text]
        return (
            bool(gold_text) and _contains(final, gold_text) and not any(_contains(final, c) for c in others)
        )
    if item.scoring == "yes_no":
        low = final.lower()
        yes = _contains(low, "yes") or "heads up" in low
        no = _contains(low, "no") or "tails up" in low
        return (yes and not no) if item.answer == "yes" else (no and not yes)
    return _contains(final, item.answer)


# ---------------------------------------------------------------------------------------- tiny tasks
TINY_TASKS = ("arithmetic", "fact_mc", "fact_open", "last_letter", "coin_flip")
#: The paper's tasks each tiny task stands in for.
TINY_ANALOGUES = {
    "arithmetic": "GSM8K / SVAMP / MultiArith",
    "fact_mc": "MMLU / ARC-C",
    "fact_open": "open-domain QA",
    "last_letter": "LastLetterConcat",
    "coin_flip": "CoinFlip",
}


def tiny_tasks(
    *, arithmetic, facts, last_letter, coin_flip, n: int, seed: int = 0
) -> dict[str, tuple[TaskItem, ...]]:
    """The five tiny tasks (`n` per task; facts drawn at random, seeded) from `reprokit.world` fact
    questions and `nudging.world_reasoning` word problems and symbolic tasks."""
    rng = random.Random(seed)
    facts = list(facts)
    mc = rng.sample(facts, min(n, len(facts)))
    open_ = rng.sample(facts, min(n, len(facts)))
    return {
        "arithmetic": tuple(
            TaskItem(p.id, "arithmetic", p.question, str(p.answer), "number") for p in arithmetic[:n]
        ),
        "fact_mc": tuple(
            TaskItem(q.id + "-mc", "fact_mc", q.as_multiple_choice(), q.letter, "choice", q.choices)
            for q in mc
        ),
        "fact_open": tuple(TaskItem(q.id, "fact_open", q.question, q.answer, "text") for q in open_),
        "last_letter": tuple(
            TaskItem(t.id, "last_letter", t.question, t.answer, "text") for t in last_letter[:n]
        ),
        "coin_flip": tuple(
            TaskItem(t.id, "coin_flip", t.question, t.answer, "yes_no") for t in coin_flip[:n]
        ),
    }


# --------------------------------------------------------------------------------------- paper tasks
@dataclass(frozen=True)
class PaperTask:
    """One of the paper's tasks: where its data lives on the hub and how to turn rows into items."""

    key: str
    dataset: str
    config: str | None
    split: str
    question_field: str
    answer_field: str
    scoring: Scoring
    context_field: str | None = None  # e.g. MMLU's subject, rendered "Subject: X\n"
    choices_field: str | None = None


#: The 13 tasks (official `dataset_utils`); math is rule-scored, the rest need a judge.
PAPER_TASKS: dict[str, PaperTask] = {
    t.key: t
    for t in (
        PaperTask("gsm8k", "gsm8k", "main", "test", "question", "answer", "number"),
        PaperTask("svamp", "ChilleD/SVAMP", None, "test", "question_concat", "Answer", "number"),
        PaperTask("multiarith", "ChilleD/MultiArith", None, "test", "question", "final_ans", "number"),
        PaperTask("mmlu", "cais/mmlu", "all", "test", "question", "answer", "judge", "subject", "choices"),
        PaperTask(
            "arc_challenge",
            "allenai/ai2_arc",
            "ARC-Challenge",
            "test",
            "question",
            "answerKey",
            "judge",
            None,
            "choices",
        ),
        PaperTask(
            "csqa",
            "tau/commonsense_qa",
            None,
            "validation",
            "question",
            "answerKey",
            "judge",
            None,
            "choices",
        ),
        PaperTask("strategyqa", "ChilleD/StrategyQA", None, "test", "question", "answer", "judge"),
        PaperTask(
            "date", "hails/bigbench", "date_understanding_zero_shot", "default", "inputs", "targets", "judge"
        ),
        PaperTask(
            "sports",
            "hails/bigbench",
            "sports_understanding_zero_shot",
            "default",
            "inputs",
            "targets",
            "judge",
        ),
        PaperTask("coin_flip", "skrishna/coin_flip", None, "test", "inputs", "targets", "judge"),
        PaperTask(
            "last_letter_concat", "ChilleD/LastLetterConcat", None, "test", "question", "answer", "judge"
        ),
        PaperTask(
            "justeval",
            "re-align/just-eval-instruct",
            "default",
            "test",
            "instruction",
            "instruction",
            "judge",
        ),
        PaperTask(
            "justeval_safe",
            "re-align/just-eval-instruct",
            "default",
            "test",
            "instruction",
            "instruction",
            "judge",
        ),
    )
}


def _render_choices(choices: Any) -> tuple[str, list[str]]:
    if isinstance(choices, Mapping):  # ARC / CSQA: {"label": [...], "text": [...]}
        labels, texts = list(choices["label"]), list(choices["text"])
    else:  # MMLU: a list of texts
        texts = list(choices)
        labels = [chr(ord("A") + i) for i in range(len(texts))]
    return "\n".join(f"{ll}. {t}" for ll, t in zip(labels, texts, strict=True)), texts


def row_to_item(task: PaperTask, row: Mapping[str, Any], index: int) -> TaskItem:
    """One dataset row as a `TaskItem` (question formatting as in the official loaders)."""
    question = str(row[task.question_field]).strip()
    context = (
        f"Subject: {row[task.context_field]}\n" if task.context_field and task.context_field in row else ""
    )
    choices: list[str] = []
    if task.choices_field:
        rendered, choices = _render_choices(row[task.choices_field])
        question = f"{question}\n{rendered}"
    answer = row[task.answer_field]
    if isinstance(answer, list):
        answer = answer[0] if answer else ""
    if task.key == "mmlu" and isinstance(answer, int):
        answer = chr(ord("A") + answer)
    return TaskItem(
        f"{task.key}-{index}", task.key, context + question, str(answer), task.scoring, tuple(choices)
    )


def load_paper_task(
    task: str | PaperTask,
    *,
    n: int | None = None,
    seed: int = 609,
    data_files: str | Sequence[str] | None = None,
) -> list[TaskItem]:
    """Load a paper task with `datasets.load_dataset` (hub id, or local json/parquet `data_files`).

    `n` draws a random subset without replacement, seeded like the official loader (seed 609). Local
    files are checked first (exists, not empty, jsonl line by line) and the task's fields must be there.
    """
    import numpy as np
    from datasets import load_dataset

    if isinstance(task, str) and task not in PAPER_TASKS:
        raise ConfigError(f"unknown task {task!r}; pass one of {sorted(PAPER_TASKS)}.")
    spec = PAPER_TASKS[task] if isinstance(task, str) else task
    if data_files is not None:
        from reprokit.datafiles import load_data_files

        files = [str(f) for f in ([data_files] if isinstance(data_files, str) else data_files)]
        where = f"--data-files {', '.join(files)}"
        ds = load_data_files(files, what="--data-files")
    else:
        where = f"task {spec.key!r} ({spec.dataset})"
        try:
            ds = load_dataset(spec.dataset, spec.config, split=spec.split)
        except Exception as err:  # offline, not in the cache, or no such dataset
            reason = error_summary(err)
            raise DataError(
                f"could not load {where} from the hub ({reason}); pass --data-files with a local copy "
                "or make the dataset available in the local Hugging Face cache."
            ) from err
    fields = [f for f in (spec.question_field, spec.answer_field, spec.choices_field) if f]
    missing = [f for f in fields if f not in ds.column_names]
    if missing:
        raise DataError(
            f"{where}: the {spec.key} task needs the fields {fields}; {missing} missing "
            f"(columns: {sorted(ds.column_names)})."
        )
    if len(ds) == 0:
        raise DataError(f"{where} holds no rows; pass a file with at least one question.")
    idx = list(range(len(ds)))
    if n is not None and n < len(ds):
        idx = sorted(np.random.RandomState(seed).choice(len(ds), n, replace=False).tolist())
    return [row_to_item(spec, ds[i], i) for i in idx]


# ----------------------------------------------------------------------------------------------- judge
JUDGE_PROMPT = (
    "You are grading an answer. Ignore the reasoning and compare only the model's final answer with the "
    "gold answer.\nQuestion: {question}\nGold answer: {gold}\nModel answer: {output}\n"
    'Reply in JSON: {{"reason": "...", "correct": true or false}}'
)


class OpenAIJudge:
    """A judge on any OpenAI-compatible chat endpoint (temperature 0, JSON mode), as in the paper."""

    def __init__(
        self, model: str = "gpt-4o-mini", *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY"
    ) -> None:
        try:
            from openai import OpenAI
        except ImportError as err:
            raise ConfigError("the judge needs the openai client: pip install 'nudging[judge]'.") from err
        key = os.environ.get(api_key_env)
        if not key and base_url is None:
            raise ConfigError(
                f"the judge needs an API key: set ${api_key_env} (or pass base_url= / --judge-base-url for a "
                "local OpenAI-compatible server)."
            )
        self.client = OpenAI(base_url=base_url, api_key=key or "none")
        self.model = model

    def __call__(self, item: TaskItem, output: str) -> bool:
        reply = self.client.chat.completions.create(
            model=self.model,
            temperature=0,
            response_format={"type": "json_object"},
            messages=[
                {
                    "role": "user",
                    "content": JUDGE_PROMPT.format(question=item.question, gold=item.answer, output=output),
                }
            ],
        )
        try:
            return bool(json.loads(reply.choices[0].message.content or "{}").get("correct", False))
        except json.JSONDecodeError:
            logger.warning("judge reply is not JSON; counting the answer as wrong")
            return False
