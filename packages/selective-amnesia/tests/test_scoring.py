"""SemEval-2025 Task 4 scoring: metrics on known strings, the aggregate by hand, MIA AUC, MMLU prompts,
and batched model passes against the official one-example-at-a-time computations."""

from __future__ import annotations

import math
import statistics

import datasets
import numpy as np
import pytest
import torch

from reprokit.errors import ConfigError, DataError
from reprokit.lm import LanguageModel
from reprokit.zoo import Recipe, build_model
from selective_amnesia.data import UnlearningData, load_rows
from selective_amnesia.records import MCQuestion, Row
from selective_amnesia.scoring import (
    ScoreConfig,
    answer_token_ids,
    choice_logits,
    exact_match,
    final_score,
    generate_answers,
    mia_auc,
    mia_score,
    mmlu_accuracy,
    mmlu_from_dataset,
    mmlu_prompt,
    rouge_l_recall,
    score_model,
    task_scores,
)


@pytest.fixture(scope="module")
def lm(tokenizer) -> LanguageModel:
    """A tiny random OLMo in float64 (so batched and single passes agree to the last bit that matters),
    with weights scaled up so that its next-token distribution is peaked rather than uniform."""
    model = build_model(Recipe("olmo-t", "olmo", 32, 2, 2, 64, 512), tokenizer, seed=0).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(6.0)
    return LanguageModel(model, tokenizer)


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_new_tokens": 0},
        {"batch_size": -1},
        {"mia_batch_size": 1.5},
        {"mmlu_shots": -1},
        {"mmlu_gate": 1.5},
        {"show_progress": "yes"},
    ],
)
def test_score_config_rejects_bad_values(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        ScoreConfig(**kwargs)


def test_score_config_defaults_are_the_official_ones():
    c = ScoreConfig()
    assert (c.max_new_tokens, c.mmlu_shots, c.mmlu_max_length, c.mmlu_gate) == (256, 5, 2048, 0.371)


# ----------------------------------------------------------------------------------------- metrics
def test_rouge_l_recall_stems_words():
    assert rouge_l_recall("running", "runs") == 1.0  # both stem to "run"
    # gold tokens: the cat run home; generation: a cat run -> LCS 2 of 4 gold tokens
    assert rouge_l_recall("a cat running", "the cat runs home") == pytest.approx(0.5)


def test_rouge_l_recall_is_recall_against_the_gold():
    # all of the gold is in a long generation: recall 1 (precision would be 2/6)
    assert rouge_l_recall("yes the cat runs home today", "cat runs") == pytest.approx(1.0)
    assert rouge_l_recall("cat runs", "yes the cat runs home today") == pytest.approx(2 / 6)
    assert rouge_l_recall("", "cat") == 0.0


def test_exact_match_ignores_case_and_outer_space_only():
    assert exact_match("  PARIS\n", "paris ") == 1.0
    assert exact_match("Paris.", "Paris") == 0.0
    assert exact_match("Paris is the answer", "Paris") == 0.0
    assert exact_match("New  York", "New York") == 0.0


# ------------------------------------------------------------------------------------- task scores
# One group per (split, task, probe): the per-row scores wanted; sc rows get ROUGE-L recall 1, 0.5 or 0,
# qa rows exact match 1 or 0.
GROUPS = {
    ("forget", "Task1", "sc"): (0.5, 0.0),  # mean 0.25 -> inverted 0.75
    ("forget", "Task1", "qa"): (1.0, 0.0),  # 0.5 -> 0.5
    ("forget", "Task2", "sc"): (1.0, 0.0),  # 0.5 -> 0.5
    ("forget", "Task2", "qa"): (0.0, 0.0),  # 0 -> 1
    ("forget", "Task3", "sc"): (1.0, 0.5),  # 0.75 -> 0.25
    ("forget", "Task3", "qa"): (0.0, 1.0),  # 0.5 -> 0.5
    ("retain", "Task1", "sc"): (1.0, 1.0),  # 1
    ("retain", "Task1", "qa"): (1.0, 1.0),  # 1
    ("retain", "Task2", "sc"): (0.5, 1.0),  # 0.75
    ("retain", "Task2", "qa"): (1.0, 0.0),  # 0.5
    ("retain", "Task3", "sc"): (0.5, 0.5),  # 0.5
    ("retain", "Task3", "qa"): (1.0, 1.0),  # 1
}


def _example(groups=GROUPS) -> tuple[list[Row], list[str]]:
    rows, gens = [], []
    for (split, task, probe), scores in groups.items():
        for i, s in enumerate(scores):
            rid = f"{split}-{task}-{i}{probe}{1 if probe == 'sc' else 0}"
            gold = "alpha beta" if probe == "sc" else "Paris"
            if probe == "sc":
                gen = {1.0: "Alpha betas", 0.5: "alpha gamma", 0.0: "delta"}[s]
            else:
                gen = {1.0: " paris ", 0.0: "Paris, France"}[s]
            rows.append(Row(rid, f"prompt {rid}", gold, task, split))
            gens.append(gen)
    return rows, gens


def test_twelve_numbers_by_hand():
    rows, gens = _example()
    scores = task_scores(rows, gens)
    assert scores.raw == pytest.approx(
        {
            "forget/Task1/sc": 0.25,
            "forget/Task1/qa": 0.5,
            "forget/Task2/sc": 0.5,
            "forget/Task2/qa": 0.0,
            "forget/Task3/sc": 0.75,
            "forget/Task3/qa": 0.5,
            "retain/Task1/sc": 1.0,
            "retain/Task1/qa": 1.0,
            "retain/Task2/sc": 0.75,
            "retain/Task2/qa": 0.5,
            "retain/Task3/sc": 0.5,
            "retain/Task3/qa": 1.0,
        }
    )
    assert scores.inverted["forget/Task1/sc"] == pytest.approx(0.75)
    assert scores.inverted["forget/Task2/qa"] == pytest.approx(1.0)
    assert scores.inverted["retain/Task2/sc"] == pytest.approx(0.75)
    # reciprocals: forget 4/3 + 2 + 2 + 1 + 4 + 2, retain 1 + 1 + 4/3 + 2 + 2 + 1 -> sum 62/3
    assert scores.aggregate == pytest.approx(12 / (62 / 3))
    assert scores.forget_mean == pytest.approx(2.5 / 6)
    assert scores.retain_mean == pytest.approx(4.75 / 6)
    assert scores.per_row["score"].tolist() == [s for v in GROUPS.values() for s in v]
    assert list(scores.per_row.columns) == ["id", "task", "split", "probe", "generation", "gold", "score"]
    assert scores.overall["forget/qa"] == pytest.approx(2 / 6)
    d = scores.to_dict()
    assert d["aggregate"] == scores.aggregate and d["n_rows"] == 24 and len(d["raw"]) == 12


def test_one_zero_term_collapses_the_aggregate():
    groups = dict(GROUPS)
    groups["forget", "Task2", "qa"] = (1.0, 1.0)  # everything remembered -> inverted 0
    scores = task_scores(*_example(groups))
    assert scores.inverted["forget/Task2/qa"] == 0.0
    assert scores.aggregate == 0.0
    groups = dict(GROUPS)
    groups["retain", "Task3", "sc"] = (0.0, 0.0)
    assert task_scores(*_example(groups)).aggregate == 0.0


def test_any_number_of_tasks_and_missing_probes():
    groups = {k: v for k, v in GROUPS.items() if k[1] == "Task1" or k == ("retain", "Task2", "qa")}
    scores = task_scores(*_example(groups))
    assert sorted(scores.raw) == [
        "forget/Task1/qa",
        "forget/Task1/sc",
        "retain/Task1/qa",
        "retain/Task1/sc",
        "retain/Task2/qa",
    ]
    assert scores.aggregate == pytest.approx(statistics.harmonic_mean([0.75, 0.5, 1.0, 1.0, 0.5]))


def test_task_scores_accepts_unlearning_data_and_checks_lengths():
    rows, gens = _example()
    data = UnlearningData(
        tuple(r for r in rows if r.split == "forget"), tuple(r for r in rows if r.split == "retain")
    )
    assert task_scores(data, gens).aggregate == pytest.approx(task_scores(rows, gens).aggregate)
    with pytest.raises(DataError, match="23 generations for 24 rows"):
        task_scores(rows, gens[:-1])


# --------------------------------------------------------------------------------------------- MIA
def test_mia_auc_by_hand():
    # scores -nll: members -1, -2, -3; non-members -2, -4. Pairs won: 2 + (0.5 + 1) + 1 = 4.5 of 6.
    assert mia_auc([1.0, 2.0, 3.0], [2.0, 4.0]) == pytest.approx(0.75)


def test_mia_auc_extremes():
    assert mia_auc([1.0, 1.5], [3.0, 4.0]) == 1.0  # members have lower loss: perfect separation
    assert mia_auc([3.0, 4.0], [1.0, 1.5]) == 0.0
    assert mia_auc([2.0, 2.0], [2.0, 2.0, 2.0]) == 0.5
    with pytest.raises(DataError):
        mia_auc([], [1.0])


def _official_nll(lm: LanguageModel, text: str) -> float:
    """evaluate_generations.py: ``model(input_ids, labels=input_ids).loss`` (taken in float32)."""
    ids = torch.tensor([lm.encode(text)])
    with torch.no_grad():
        return float(lm.model(input_ids=ids, labels=ids).loss)


MEMBERS = [
    "Alice Smith was born in Paris.",
    "Bob Jones works as a pilot. The capital of Norway is Oslo.",
    "Riga",
]
NONMEMBERS = ["Carla Diaz works as a baker.", "Dmitri Ivanov was born in Oslo. He works as a pilot."]


@pytest.mark.parametrize("batch", [1, 2])
def test_mia_score_uses_the_official_document_nll(lm, batch):
    result = mia_score(lm, MEMBERS, NONMEMBERS, ScoreConfig(mia_batch_size=batch))
    np.testing.assert_allclose(result.member_nll, [_official_nll(lm, d) for d in MEMBERS], rtol=1e-6)
    np.testing.assert_allclose(result.nonmember_nll, [_official_nll(lm, d) for d in NONMEMBERS], rtol=1e-6)
    auc = mia_auc(result.member_nll, result.nonmember_nll)
    assert result.auc == auc and result.score == pytest.approx(1 - 2 * abs(auc - 0.5))
    same = mia_score(lm, MEMBERS, MEMBERS, ScoreConfig(mia_batch_size=batch))
    assert same.auc == 0.5 and same.score == 1.0
    assert result.to_dict()["n_members"] == 3


def test_mia_score_refuses_empty_lists(lm):
    with pytest.raises(DataError, match="member documents are empty"):
        mia_score(lm, [], NONMEMBERS)
    with pytest.raises(DataError, match="non-member documents are empty"):
        mia_score(lm, MEMBERS, [])
    with pytest.raises(DataError, match=r"documents 2 are empty"):
        mia_score(lm, MEMBERS, ["text", ""])


# -------------------------------------------------------------------------------------- generation
ROWS = load_rows(
    [
        {"id": "a0sc1", "input": "Alice Smith was born in", "output": "Paris.", "task": "Task2"},
        {"id": "a0qa0", "input": "Where was Alice Smith born?", "output": "Paris", "task": "Task2"},
        {
            "id": "b1sc1",
            "input": "Bob Jones works as a pilot. The capital of Norway",
            "output": "is Oslo.",
            "task": "Task1",
        },
        {"id": "c2qa1", "input": "Carla", "output": "Diaz", "task": "Task3"},
        {
            "id": "d3qa0",
            "input": "Dmitri Ivanov was born in Riga. Dmitri Ivanov works as",
            "output": "a baker",
            "task": "Task3",
        },
    ],
    split="forget",
)


def _official_generation(lm: LanguageModel, prompt: str, max_new_tokens: int) -> str:
    """evaluate_generations.py: one prompt at a time, greedy, pad = eos, new tokens decoded."""
    ids = torch.tensor([lm.encode(prompt)])
    eos = lm.tokenizer.eos_token_id
    with torch.no_grad():
        out = lm.model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=eos)
    return lm.tokenizer.batch_decode(
        out[:, ids.shape[1] :], skip_special_tokens=True, clean_up_tokenization_spaces=True
    )[0]


def test_batched_generation_equals_one_at_a_time_and_the_official_loop(lm):
    config = ScoreConfig(max_new_tokens=12, batch_size=3)
    batched = generate_answers(lm, ROWS, config)
    single = generate_answers(lm, ROWS, ScoreConfig(max_new_tokens=12, batch_size=1))
    assert batched == single
    assert batched == [_official_generation(lm, r.input, 12) for r in ROWS]
    assert len(set(batched)) > 1 and all(batched)  # a real, prompt-dependent continuation


# -------------------------------------------------------------------------------------------- MMLU
SHOTS = [
    MCQuestion("What is 1 + 1?", ("1", "2", "3", "4"), 1, "high_school_math"),
    MCQuestion("What is 2 * 3?", ("5", "6", "8", "9"), 1, "high_school_math"),
]
QUESTION = MCQuestion("What is 3 - 1?", ("0", "1", "2", "3"), 2, "high_school_math")


def test_mmlu_prompt_golden_string(tokenizer):
    prompt = mmlu_prompt(QUESTION, SHOTS, tokenizer, 2048)
    assert prompt == (
        "The following are multiple choice questions (with answers) about  high school math.\n\n"
        "What is 1 + 1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n"
        "What is 2 * 3?\nA. 5\nB. 6\nC. 8\nD. 9\nAnswer: B\n\n"
        "What is 3 - 1?\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer:"
    )


def test_mmlu_prompt_drops_shots_from_the_end_until_it_fits(tokenizer):
    def length(shots):
        return len(
            tokenizer(mmlu_prompt(QUESTION, shots, tokenizer, 10**6), add_special_tokens=False)["input_ids"]
        )

    one, two = length(SHOTS[:1]), length(SHOTS)
    assert one < two
    assert mmlu_prompt(QUESTION, SHOTS, tokenizer, two) == mmlu_prompt(QUESTION, SHOTS, tokenizer, 10**6)
    fits_one = mmlu_prompt(QUESTION, SHOTS, tokenizer, two - 1)
    assert "What is 1 + 1?" in fits_one and "What is 2 * 3?" not in fits_one
    assert fits_one == mmlu_prompt(QUESTION, SHOTS[:1], tokenizer, 10**6)
    zero = mmlu_prompt(QUESTION, SHOTS, tokenizer, 5)  # nothing fits: the zero-shot prompt
    assert zero == mmlu_prompt(QUESTION, [], tokenizer, 10**6) and "1 + 1" not in zero


def test_answer_ids_are_the_last_token_of_space_letter(tokenizer):
    ids = answer_token_ids(tokenizer)
    assert ids == [tokenizer.encode(" " + c, add_special_tokens=False)[-1] for c in "ABCD"]
    assert len(set(ids)) == 4


def _questions() -> list[MCQuestion]:
    facts = [
        ("Alice Smith", "Paris"),
        ("Bob Jones", "Oslo"),
        ("Carla Diaz", "Riga"),
        ("Dmitri Ivanov", "Paris"),
    ]
    cities = ("Paris", "Oslo", "Riga", "Lima")
    out = []
    for i, (name, city) in enumerate(facts * 3):
        subject = ("geography", "people")[i % 2]
        choices = tuple(np.roll(cities, i))
        out.append(
            MCQuestion(f"Where was {name} born?" + " Think." * (i % 4), choices, choices.index(city), subject)
        )
    return out


def _official_logits(lm: LanguageModel, prompt: str, n_choices: int) -> np.ndarray:
    """Open-Instruct get_next_word_predictions with batch size 1: last-position logits of the letters."""
    ids = torch.tensor([lm.encode(prompt)])
    with torch.no_grad():
        logits = lm.model(input_ids=ids).logits[0, -1]
    return logits[answer_token_ids(lm.tokenizer, n_choices)].numpy()


def test_batched_mmlu_equals_one_by_one_and_open_instruct(lm):
    questions = _questions()
    shots = {"geography": questions[:2], "people": questions[1:3]}
    prompts = [mmlu_prompt(q, shots[q.subject], lm.tokenizer, 2048) for q in questions]
    official = [_official_logits(lm, p, 4) for p in prompts]
    batched_logits = choice_logits(lm, prompts, [4] * len(prompts), batch_size=5)
    np.testing.assert_allclose(np.stack(batched_logits), np.stack(official), rtol=1e-9, atol=1e-9)
    assert np.ptp(np.stack(official), axis=0).max() > 1e-3  # the logits depend on the prompt

    batched = mmlu_accuracy(lm, questions, shots, ScoreConfig(mmlu_batch_size=5, mmlu_shots=2))
    single = mmlu_accuracy(lm, questions, shots, ScoreConfig(mmlu_batch_size=1, mmlu_shots=2))
    assert batched.predictions == single.predictions == [int(np.argmax(x)) for x in official]
    correct = [p == q.answer for p, q in zip(batched.predictions, questions, strict=True)]
    assert batched.accuracy == pytest.approx(np.mean(correct)) and batched.n == 12
    assert batched.per_subject["people"] == pytest.approx(np.mean(correct[1::2]))


def test_mmlu_accuracy_counts_right_answers(lm):
    questions = _questions()
    config = ScoreConfig(mmlu_shots=0)
    predictions = mmlu_accuracy(lm, questions, {}, config).predictions
    # move the right answer onto the predicted letter for the first five questions only
    rigged = [
        MCQuestion(q.question, q.choices, p if i < 5 else (p + 1) % 4, q.subject)
        for i, (q, p) in enumerate(zip(questions, predictions, strict=True))
    ]
    result = mmlu_accuracy(lm, rigged, {}, config)
    assert result.predictions == predictions
    assert result.accuracy == pytest.approx(5 / 12)
    assert result.per_subject == pytest.approx({"geography": 3 / 6, "people": 2 / 6})


def test_mmlu_shots_as_one_list_are_matched_by_subject(lm):
    questions = _questions()
    shots = {"geography": questions[:2], "people": questions[1:3]}
    config = ScoreConfig(mmlu_shots=2)
    flat = [questions[0], questions[1], questions[2]]  # geography: 0, 2; people: 1
    by_list = mmlu_accuracy(lm, questions, flat, config)
    by_map = mmlu_accuracy(
        lm, questions, {"geography": [questions[0], questions[2]], "people": [questions[1]]}, config
    )
    assert by_list.predictions == by_map.predictions
    with pytest.raises(DataError, match="no shots for the subjects people"):
        mmlu_accuracy(lm, questions, {"geography": shots["geography"]}, config)
    zero = mmlu_accuracy(lm, questions, {}, ScoreConfig(mmlu_shots=0))
    assert zero.n == 12
    with pytest.raises(DataError, match="no questions"):
        mmlu_accuracy(lm, [], {}, config)


def test_mmlu_from_a_local_dataset_with_cais_columns():
    ds = datasets.Dataset.from_list(
        [
            {
                "question": "2 + 2?",
                "subject": "elementary_mathematics",
                "choices": ["3", "4", "5", "6"],
                "answer": 1,
            },
            {
                "question": "Capital of France?",
                "subject": "geography",
                "choices": ["Paris", "Rome", "Oslo", "Riga"],
                "answer": 0,
            },
        ]
    )
    assert mmlu_from_dataset(ds) == [
        MCQuestion("2 + 2?", ("3", "4", "5", "6"), 1, "elementary_mathematics"),
        MCQuestion("Capital of France?", ("Paris", "Rome", "Oslo", "Riga"), 0, "geography"),
    ]
    with pytest.raises(DataError, match=r"lack the column\(s\) subject"):
        mmlu_from_dataset(ds.remove_columns("subject"))
    with pytest.raises(DataError, match="MMLU rows 1 are malformed"):
        mmlu_from_dataset([{"question": "q", "subject": "s", "choices": ["a", "b"], "answer": 5}])


# ------------------------------------------------------------------------------------------- final
def test_final_score_is_the_arithmetic_mean():
    assert final_score(0.973, 0.741, 0.243) == pytest.approx(0.652, abs=5e-4)  # SHA256, 1B board
    assert math.isnan(final_score(0.5, math.nan, 0.5))


def test_score_model_end_to_end(lm):
    forget = list(ROWS[:3])
    retain = [Row(f"r{r.id}", r.input + " again", r.output, r.task, "retain") for r in ROWS[3:]]
    data = UnlearningData(tuple(forget), tuple(retain))
    config = ScoreConfig(max_new_tokens=6, mmlu_shots=1)
    questions = _questions()[:4]
    full = score_model(
        lm,
        data,
        members=MEMBERS,
        nonmembers=NONMEMBERS,
        mmlu_questions=questions,
        mmlu_shots=questions,
        config=config,
    )
    assert full.task_aggregate == task_scores(data, generate_answers(lm, data, config)).aggregate
    assert full.mia == mia_score(lm, MEMBERS, NONMEMBERS).score
    assert full.mmlu == mmlu_accuracy(lm, questions, questions, config).accuracy
    assert full.final == pytest.approx((full.task_aggregate + full.mia + full.mmlu) / 3)
    assert full.passes_gate == (full.mmlu > 0.371)
    d = full.to_dict()
    assert d["final"] == full.final and d["mmlu_result"]["n"] == 4

    part = score_model(lm, data, config=config)
    assert math.isnan(part.mia) and math.isnan(part.mmlu) and math.isnan(part.final)
    assert part.task_aggregate == full.task_aggregate and not part.passes_gate
    assert part.to_dict()["mia_result"] is None
    with pytest.raises(ConfigError, match="both members and nonmembers"):
        score_model(lm, data, members=MEMBERS, config=config)
    with pytest.raises(ConfigError, match="pass mmlu_shots"):
        score_model(lm, data, mmlu_questions=questions, config=config)
