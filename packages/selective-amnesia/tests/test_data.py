"""Loading, checking and writing SemEval-2025 Task 4 rows and MIA documents."""

from __future__ import annotations

import json
import re

import datasets
import pandas as pd
import pytest

from reprokit.errors import ConfigError, DataError, OutputPathError
from selective_amnesia.data import (
    UnlearningData,
    load_documents,
    load_rows,
    load_unlearning_data,
    name_rows,
    write_rows,
)
from selective_amnesia.records import Row

FORGET = [
    {"id": "f1sc1", "input": "Alice Smith was born", "output": "in Paris in 1984.", "task": "Task2"},
    {"id": "f1qa0", "input": "Where was Alice Smith born?", "output": "Paris", "task": "Task2"},
    {"id": "f2sc1", "input": "The dragon slept", "output": "under the old bridge.", "task": "Task1"},
]
RETAIN = [
    {"id": "r1sc1", "input": "Bob Jones was born", "output": "in Oslo in 1990.", "task": "Task2"},
    {"id": "r1qa0", "input": "Where was Bob Jones born?", "output": "Oslo", "task": "Task2"},
    {"id": "r2qa0", "input": "Who slept under the bridge?", "output": "the troll", "task": "Task1"},
]
BOTH = [{**r, "split": "forget"} for r in FORGET] + [{**r, "split": "retain"} for r in RETAIN]


def _rows(n: int, prefix: str = "x", split: str = "forget") -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}qa0",
            "input": f"{prefix} {i}?",
            "output": f"answer {i}",
            "task": "T",
            "split": split,
        }
        for i in range(n)
    ]


# ------------------------------------------------------------------------------------------ sources
def test_rows_from_mappings_keep_every_field_and_read_the_probe():
    rows = load_rows(BOTH)
    assert rows[0] == Row("f1sc1", "Alice Smith was born", "in Paris in 1984.", "Task2", "forget")
    assert rows[-1] == Row("r2qa0", "Who slept under the bridge?", "the troll", "Task1", "retain")
    assert [r.probe for r in rows] == ["sc", "qa", "sc", "sc", "qa", "qa"]


def test_every_source_kind_gives_the_same_rows(tmp_path):
    expected = load_rows(BOTH)
    frame = pd.DataFrame(BOTH).assign(task_type="extra column, ignored")
    assert load_rows(frame) == expected
    assert load_rows(datasets.Dataset.from_list(BOTH)) == expected
    assert load_rows(expected) == expected  # Row objects
    write_rows(expected[:3], tmp_path / "a.jsonl")
    write_rows(expected[3:], tmp_path / "b.jsonl")
    assert load_rows([tmp_path / "a.jsonl", str(tmp_path / "b.jsonl")]) == expected


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_write_rows_round_trips(tmp_path, suffix):
    rows = load_rows(BOTH)
    path = write_rows(rows, tmp_path / "sub" / f"rows{suffix}")
    assert path.is_file() and not list(path.parent.glob("*.tmp*"))
    assert load_rows(path) == rows
    assert load_rows(str(path)) == rows


def test_write_rows_refuses_an_unknown_suffix(tmp_path):
    with pytest.raises(OutputPathError, match=r"\.jsonl or \.parquet"):
        write_rows(load_rows(BOTH), tmp_path / "rows.csv")


def test_numbers_in_text_columns_become_text(tmp_path):
    path = tmp_path / "forget.jsonl"
    path.write_text(json.dumps({"id": "p1qa1", "input": "SSN?", "output": 900514344, "task": "Task2"}) + "\n")
    (row,) = load_rows(path, split="forget")
    assert row.output == "900514344"


# ------------------------------------------------------------------------------------------- splits
def test_split_argument_fills_a_missing_split_column():
    rows = load_rows(FORGET, split="forget")
    assert {r.split for r in rows} == {"forget"}


def test_no_split_anywhere_is_an_error():
    with pytest.raises(DataError, match="no split column; pass split="):
        load_rows(FORGET)


def test_unknown_split_argument_is_a_config_error():
    with pytest.raises(ConfigError, match="split must be one of forget, retain"):
        load_rows(FORGET, split="test")


def test_split_value_outside_forget_retain_names_the_rows():
    bad = [dict(BOTH[0], split="train"), *BOTH[1:]]
    with pytest.raises(DataError, match=r"'f1sc1' \('train'\) have a split other than forget or retain"):
        load_rows(bad)


def test_split_column_contradicting_the_argument_names_the_rows():
    with pytest.raises(DataError, match=r"loaded as the forget set.*'r1sc1' \('retain'\), 'r1qa0'"):
        load_rows(BOTH, split="forget")


# ------------------------------------------------------------------------------------------- errors
def test_missing_columns_are_listed_with_the_columns_present():
    frame = pd.DataFrame(FORGET).drop(columns=["task", "output"])
    with pytest.raises(DataError, match=r"lacks the column\(s\) output, task; it has id, input"):
        load_rows(frame, split="forget", what="forget set")


def test_id_without_probe_suffix_names_the_ids_first_few_and_count():
    rows = [dict(r, id=f"doc{i}") for i, r in enumerate(_rows(7))]
    with pytest.raises(DataError) as err:
        load_rows(rows)
    message = str(err.value)
    assert "'doc0', 'doc1', 'doc2', 'doc3', 'doc4' ... (7 in all)" in message
    assert "'doc5'" not in message and "sc<digit>" in message


def test_missing_id_names_the_row_number():
    rows = _rows(3)
    rows[1]["id"] = None
    with pytest.raises(DataError, match=r"row 2 have no id"):
        load_rows(rows)


@pytest.mark.parametrize("column", ["input", "output"])
def test_empty_text_names_the_rows(column):
    rows = _rows(4)
    rows[1][column] = "  "
    rows[3][column] = None
    with pytest.raises(DataError, match=rf"'x1qa0', 'x3qa0' have an empty {column}"):
        load_rows(rows)


def test_duplicate_ids_are_named():
    rows = [*_rows(3), _rows(3)[2]]
    with pytest.raises(DataError, match=r"ids 'x2qa0' occur more than once"):
        load_rows(rows)


def test_an_empty_source_and_an_unreadable_one_are_errors(tmp_path):
    with pytest.raises(DataError, match="holds no rows"):
        load_rows([], split="forget")
    with pytest.raises(DataError, match="cannot read rows from a int"):
        load_rows(3)
    with pytest.raises(DataError, match="no such file"):
        load_rows(tmp_path / "missing.jsonl")


def test_name_rows_shows_all_when_few():
    assert name_rows(["a", "b"]) == "a, b"
    assert name_rows(list(range(8)), limit=3) == "0, 1, 2 ... (8 in all)"


# ------------------------------------------------------------------------------------ forget/retain
def test_one_file_with_both_splits(tmp_path):
    write_rows(load_rows(BOTH), tmp_path / "all.parquet")
    data = load_unlearning_data(tmp_path / "all.parquet")
    assert [r.id for r in data.forget] == ["f1sc1", "f1qa0", "f2sc1"]
    assert [r.id for r in data.retain] == ["r1sc1", "r1qa0", "r2qa0"]
    assert data.rows == data.forget + data.retain
    assert data.tasks == ["Task1", "Task2"]


def test_two_files_without_split_column(tmp_path):
    (tmp_path / "forget.jsonl").write_text("".join(json.dumps(r) + "\n" for r in FORGET))
    pd.DataFrame(RETAIN).to_parquet(tmp_path / "retain.parquet")
    data = load_unlearning_data(tmp_path / "forget.jsonl", tmp_path / "retain.parquet")
    assert data == load_unlearning_data(BOTH)
    frame = data.to_frame()
    assert list(frame.columns) == ["id", "input", "output", "task", "split", "probe"]
    assert frame["probe"].tolist() == ["sc", "qa", "sc", "sc", "qa", "qa"]
    assert frame["split"].tolist() == ["forget"] * 3 + ["retain"] * 3


def test_empty_forget_or_retain_set_is_an_error():
    with pytest.raises(DataError, match="the retain set is empty"):
        load_unlearning_data(BOTH[:3])
    with pytest.raises(DataError, match="the forget set is empty"):
        load_unlearning_data(BOTH[3:])


def test_overlap_by_id_names_the_rows():
    retain = [dict(RETAIN[0], id="f1qa0"), *RETAIN[1:]]
    with pytest.raises(DataError, match=r"ids 'f1qa0' are in both the forget and the retain set"):
        load_unlearning_data(FORGET, retain)


def test_overlap_by_input_and_output_names_both_rows():
    retain = [*RETAIN, dict(FORGET[2], id="r9sc1")]
    with pytest.raises(DataError, match=r"forget rows 'f2sc1' = retain 'r9sc1' repeat a retain row"):
        load_unlearning_data(FORGET, retain)


def test_rows_on_the_wrong_side_are_refused():
    forget, retain = load_rows(FORGET, split="forget"), load_rows(RETAIN, split="retain")
    with pytest.raises(DataError, match=r"the forget set holds rows 'r1sc1'"):
        UnlearningData((*forget, retain[0]), tuple(retain[1:]))


def test_subset_covers_every_task_probe_group_and_is_seeded():
    forget = (
        [dict(r, id=f"a{i}sc1", task="Task1") for i, r in enumerate(_rows(10, "a"))]
        + [dict(r, id=f"b{i}qa0", task="Task1") for i, r in enumerate(_rows(10, "b"))]
        + [dict(r, id=f"c{i}qa0", task="Task2") for i, r in enumerate(_rows(2, "c"))]
    )
    retain = _rows(5, "r", split="retain")
    data = load_unlearning_data(forget, retain)
    sub = data.subset(4, seed=1)
    assert len(sub.forget) == 4 and len(sub.retain) == 4
    groups = {(r.task, r.probe) for r in sub.forget}
    assert groups == {("Task1", "sc"), ("Task1", "qa"), ("Task2", "qa")}
    positions = [data.forget.index(r) for r in sub.forget]
    assert positions == sorted(positions)  # original order kept
    assert sub == data.subset(4, seed=1)
    assert any(data.subset(4, seed=s).forget != sub.forget for s in range(2, 8))
    assert data.subset(100).rows == data.rows
    with pytest.raises(ConfigError, match="positive int"):
        data.subset(0)


# ---------------------------------------------------------------------------------------- documents
def test_documents_from_jsonl_parquet_and_lists(tmp_path):
    docs = ["First member document.", "Second one,\nwith two lines."]
    (tmp_path / "member.jsonl").write_text(
        "".join(json.dumps({"id": i, "document": d}) + "\n" for i, d in enumerate(docs))
    )
    pd.DataFrame({"text": docs}).to_parquet(tmp_path / "member.parquet")
    assert load_documents(tmp_path / "member.jsonl") == docs
    assert load_documents(tmp_path / "member.parquet", field="text") == docs
    assert load_documents(docs) == docs
    assert load_documents([{"document": d} for d in docs]) == docs
    assert load_documents([str(tmp_path / "member.jsonl")]) == docs


def test_document_errors_name_the_problem(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": 7, "text": "x"}) + "\n")
    with pytest.raises(DataError, match=r"has no 'document' column; it has id, text"):
        load_documents(tmp_path / "m.jsonl", what="MIA members")
    with pytest.raises(DataError, match="holds no documents"):
        load_documents([])
    with pytest.raises(DataError, match=re.escape("document 2 are empty")):
        load_documents(["fine", " "])
    with pytest.raises(DataError, match=re.escape("'b', row 3 are empty")):
        load_documents([{"id": "a", "document": "ok"}, {"id": "b", "document": ""}, {"document": None}])
