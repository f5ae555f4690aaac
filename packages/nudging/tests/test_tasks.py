"""Rule-based scoring and the paper-task loaders on local files of the hub formats (no network)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nudging.tasks import PAPER_TASKS, TaskItem, final_answer, last_number, load_paper_task, score


def test_last_number_and_final_answer() -> None:
    assert last_number("so 1,234 then 7.") == 7
    assert last_number("12 apples, total 1,234") == 1234
    assert last_number("none") is None
    assert final_answer("Sure! x. The answer is New Michael. Question: next") == "New Michael"
    assert final_answer("It is red.") == "It is red."


@pytest.mark.parametrize(
    ("item", "output", "ok"),
    [
        (TaskItem("a", "arithmetic", "q", "7", "number"), "3 + 4 = 7. The answer is 7.", True),
        (TaskItem("a", "arithmetic", "q", "7", "number"), "The answer is 7. Question: 8", False),
        (TaskItem("m", "fact_mc", "q", "C", "choice", ("x", "y", "Oslo", "z")), "The answer is C.", True),
        (TaskItem("m", "fact_mc", "q", "C", "choice", ("x", "y", "Oslo", "z")), "She lives in Oslo.", True),
        (TaskItem("m", "fact_mc", "q", "C", "choice", ("x", "y", "Oslo", "z")), "Answer: B.", False),
        (TaskItem("f", "fact_open", "q", "Oslo", "text"), "The answer is Oslo.", True),
        (TaskItem("f", "fact_open", "q", "Oslo", "text"), "The answer is Osloville.", False),
        (TaskItem("c", "coin_flip", "q", "no", "yes_no"), "so it is now tails up.", True),
        (TaskItem("c", "coin_flip", "q", "no", "yes_no"), "The answer is yes.", False),
    ],
)
def test_score(item: TaskItem, output: str, ok: bool) -> None:
    assert score(item, output) is ok


def test_judge_needed() -> None:
    with pytest.raises(ValueError, match="judge"):
        score(TaskItem("s", "strategyqa", "q", "true", "judge"), "yes")
    assert score(TaskItem("s", "strategyqa", "q", "true", "judge"), "yes", judge=lambda item, out: True)


def test_thirteen_tasks() -> None:
    assert len(PAPER_TASKS) == 13
    assert PAPER_TASKS["csqa"].split == "validation"
    assert PAPER_TASKS["date"].split == "default"


def test_load_gsm8k_jsonl(tmp_path) -> None:
    path = tmp_path / "gsm8k.jsonl"
    rows = [{"question": f"Q{i}: 2 + {i}?", "answer": f"2 + {i} = {2 + i}\n#### {2 + i}"} for i in range(5)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    items = load_paper_task("gsm8k", data_files=str(path))
    assert [i.question for i in items] == [r["question"] for r in rows]
    assert score(items[3], "The answer is 5.")
    sub = load_paper_task("gsm8k", data_files=str(path), n=2)
    assert len(sub) == 2 and sub == load_paper_task("gsm8k", data_files=str(path), n=2)


def test_load_mmlu_parquet(tmp_path) -> None:
    path = tmp_path / "mmlu.parquet"
    pd.DataFrame(
        {
            "question": ["Capital of Norway?"],
            "subject": ["geography"],
            "choices": [["Oslo", "Rome", "Bern", "Riga"]],
            "answer": [0],
        }
    ).to_parquet(path)
    (item,) = load_paper_task("mmlu", data_files=str(path))
    assert item.context == "Subject: geography\n"
    assert item.question == "Capital of Norway?\nA. Oslo\nB. Rome\nC. Bern\nD. Riga"
    assert item.answer == "A. Oslo"  # the official gold: letter and option text
