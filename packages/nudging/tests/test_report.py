"""The report's setup line: the gamma it names is the one each family ran with."""

from __future__ import annotations

import pandas as pd

from nudging.report import _setup_line
from nudging.reproduce import PaperSection, TinySection


class _Results:
    """The two things `_setup_line` reads from a run's results."""

    def __init__(self, families: list[str]) -> None:
        self.seeds = [0]
        self._table1 = pd.DataFrame({"family": families})

    def first(self, name: str) -> pd.DataFrame:
        assert name == "table1"
        return self._table1


def test_paper_scale_names_each_familys_own_gamma() -> None:
    section = PaperSection()
    line = _setup_line(_Results([f.name for f in section.families]), section)
    expected = ", ".join(f"{f.name} {f.gamma:g}" for f in section.families)
    assert f"gamma per family: {expected}" in line


def test_tiny_scale_names_the_shared_gamma() -> None:
    section = TinySection()
    families = [f.name for f in section.setup.families]
    line = _setup_line(_Results(families), section)
    assert f"gamma {section.nudging.gamma}" in line and "per family" not in line


def test_uncertainty_split_into_style_and_content_positions() -> None:
    from nudging.experiments import uncertainty_summary

    df = pd.DataFrame(
        {
            "rank": [2, 2, 2, 2, 1, 1],
            "p1": [0.2, 0.9, 0.3, 0.4, 0.95, 0.1],
            "content": [False, False, True, True, True, False],
        }
    )
    s = uncertainty_summary(df, gamma=0.3)
    assert s["captured_at_0.5"] == 0.75  # 3 of the 4 disagreements have p1 < 0.5
    assert s["captured_at_0.5_style"] == 0.5 and s["captured_at_0.5_content"] == 1.0
    assert s["content_share_of_disagreements"] == 0.5


def test_token_agreement_marks_the_gold_answer_tokens_as_content(zoo) -> None:
    from nudging.evaluation import _gold_spans, token_agreement
    from nudging.tasks import TaskItem

    assert _gold_spans("Paris, yes: paris.", "Paris") == [(0, 5), (12, 17)]
    assert _gold_spans("anything", " ") == []
    item = TaskItem("q1", "facts", "Where does Ann live?", "Lisbon", "text")
    answer = "Sure! Ann lives in Lisbon. The answer is Lisbon."
    df = token_agreement(zoo.base, [item], [answer])
    tok = zoo.base.tokenizer
    content = "".join(
        tok.decode([i])
        for i, c in zip(tok(answer, add_special_tokens=False)["input_ids"], df["content"], strict=True)
        if c
    )
    assert content.replace(" ", "") == "LisbonLisbon"
    assert df["content"].sum() >= 2 and (~df["content"]).sum() > df["content"].sum()
