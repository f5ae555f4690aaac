"""The paper tasks as the official loaders build them, the just-eval rating judge (fake client, no
network), the official nudger templates and the paper's cross-family pairs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from nudging.paper import PAPER_CROSS_PAIRS, PAPER_FAMILIES, PaperModels, cross_nudger_role
from nudging.prompts import (
    ASSISTANT_SYSTEM_PROMPT,
    SYSTEM_PROMPT,
    nudger_prompt,
    official_template_for,
    task_prompts,
)
from nudging.tasks import (
    JUSTEVAL_ASPECTS,
    PAPER_TASKS,
    OpenAIJudge,
    item_value,
    load_paper_task,
    parse_rating,
    rate,
    rating_prompt,
    row_to_item,
    score,
)
from reprokit.errors import ConfigError, DataError
from reprokit.tokenizer import train_tokenizer


def _jsonl(tmp_path, name: str, rows: list[dict]) -> str:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


# ------------------------------------------------------------------------------------------- loaders
def test_coin_flip_date_and_sports_are_cut_like_the_official_loaders() -> None:
    coin = row_to_item(
        PAPER_TASKS["coin_flip"],
        {"inputs": "Q: A coin is heads up. Ann flips the coin. Is the coin still heads up?", "targets": "no"},
        0,
    )
    assert (coin.question, coin.answer) == (
        "A coin is heads up. Ann flips the coin. Is the coin still heads up?",
        "no",
    )
    date = row_to_item(
        PAPER_TASKS["date"],
        {
            "inputs": "Q: Today is 03/05/2021. What is the date tomorrow in MM/DD/YYYY?\n  A:",
            "targets": ["03/06/2021"],
        },
        1,
    )
    assert (date.question, date.answer) == (
        "Today is 03/05/2021. What is the date tomorrow in MM/DD/YYYY?",
        "03/06/2021",
    )
    statement = "Determine whether the following statement is plausible:\nStatement: Bo scored a touchdown."
    sports = [
        row_to_item(
            PAPER_TASKS["sports"], {"inputs": f"{statement}\nPlausible/implausible?", "targets": [t]}, 2
        )
        for t in ("plausible", "implausible")
    ]
    assert sports[0].question == statement
    assert [s.answer for s in sports] == ["1. yes\n2. plausible", "1. no\n2. implausible"]
    with pytest.raises(DataError, match="no 'Q:'"):
        row_to_item(PAPER_TASKS["coin_flip"], {"inputs": "A coin is heads up.", "targets": "yes"}, 3)


def test_choice_tasks_gold_is_letter_and_option_text(tmp_path) -> None:
    mmlu = row_to_item(
        PAPER_TASKS["mmlu"],
        {
            "question": "Capital of Norway?",
            "subject": "geography",
            "choices": ["Rome", "Oslo", "Bern"],
            "answer": 1,
        },
        0,
    )
    assert mmlu.answer == "B. Oslo"
    assert mmlu.context == "Subject: geography\n"
    assert mmlu.question == "Capital of Norway?\nA. Rome\nB. Oslo\nC. Bern"
    choices = {"label": ["A", "B", "C", "D"], "text": ["ice", "steam", "water", "fog"]}
    for key in ("arc_challenge", "csqa"):
        item = row_to_item(PAPER_TASKS[key], {"question": "Liquid?", "choices": choices, "answerKey": "C"}, 0)
        assert item.answer == "C. water"
        assert item.question.endswith("C. water\nD. fog")
    with pytest.raises(DataError, match="not one of the option labels"):
        row_to_item(PAPER_TASKS["csqa"], {"question": "Liquid?", "choices": choices, "answerKey": "E"}, 0)
    strategy = [
        row_to_item(PAPER_TASKS["strategyqa"], {"question": " Q? ", "answer": a}, 0) for a in (True, False)
    ]
    assert [s.answer for s in strategy] == ["true", "false"] and strategy[0].question == "Q?"
    svamp = row_to_item(
        PAPER_TASKS["svamp"],
        {"question_concat": "Ann has 3 ...", "Equation": "( 3.0 + 4.0 )", "Answer": 7.0},
        0,
    )
    assert svamp.answer == "( 3.0 + 4.0 ) = 7.0" and score(svamp, "so 7 apples")


def test_judges_and_system_prompts_per_task() -> None:
    assert PAPER_TASKS["coin_flip"].judge_model == "gpt-4o"
    assert PAPER_TASKS["justeval"].judge_model == PAPER_TASKS["justeval_safe"].judge_model == "gpt-4o"
    assert {PAPER_TASKS[t].judge_model for t in ("mmlu", "arc_challenge", "csqa", "date", "sports")} == {
        "gpt-4o-mini"
    }
    for key in ("justeval", "justeval_safe"):
        spec = PAPER_TASKS[key]
        assert (spec.dataset, spec.split, spec.question_field) == (
            "re-align/just-eval-instruct",
            "gpt_3.5_turbo_0301",
            "input",
        )
        assert (spec.system, spec.prefix, spec.scoring) == (
            ASSISTANT_SYSTEM_PROMPT,
            "Instruction: ",
            "rating",
        )
    assert PAPER_TASKS["justeval"].config == "judgements_main"
    assert PAPER_TASKS["justeval_safe"].config == "judgements_safety"
    assert (PAPER_TASKS["gsm8k"].system, PAPER_TASKS["gsm8k"].prefix) == (SYSTEM_PROMPT, "Question: ")


def test_load_justeval_from_local_file(tmp_path) -> None:
    path = _jsonl(
        tmp_path, "je.jsonl", [{"input": f" Write a haiku about {w}. ", "output_cand": "x"} for w in "abc"]
    )
    items = load_paper_task("justeval", data_files=path)
    assert [i.question for i in items] == [f"Write a haiku about {w}." for w in "abc"]
    assert all(
        i.answer == "" and i.scoring == "rating" and i.system == ASSISTANT_SYSTEM_PROMPT for i in items
    )
    with pytest.raises(ValueError, match="rated 1-5"):
        score(items[0], "a haiku")
    bad = _jsonl(tmp_path, "bad.jsonl", [{"instruction": "x"}])
    with pytest.raises(DataError, match=r"\['input'\] missing"):
        load_paper_task("justeval", data_files=bad)


# ------------------------------------------------------------------------------------- just-eval judge
class FakeClient:
    """An OpenAI-compatible client double: records each request and returns a canned reply."""

    def __init__(self, reply: str) -> None:
        self.reply, self.requests = reply, []
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    def _create(self, **kwargs):
        self.requests.append(kwargs)
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=self.reply))])


def _justeval_item(key: str = "justeval"):
    return row_to_item(PAPER_TASKS[key], {"input": "How do I bake bread?"}, 0)


def test_rating_prompt_names_every_aspect_and_the_scale() -> None:
    prompt = rating_prompt(_justeval_item(), "Mix flour and water.")
    assert "How do I bake bread?" in prompt and "Mix flour and water." in prompt
    for aspect in JUSTEVAL_ASPECTS:
        assert f'"{aspect}": {{"reason"' in prompt and aspect.capitalize() in prompt
    assert "1 to 5" in prompt
    safety = rating_prompt(_justeval_item("justeval_safe"), "No.")
    assert '"safety": {"reason"' in safety and "helpfulness" not in safety


def test_parse_rating_follows_the_official_rules() -> None:
    reply = (
        "```json\n"
        + json.dumps(
            {
                "helpfulness": {"reason": "good", "score": "4"},
                "clarity": {"reason": "ok", "score": 5},
                "factuality": {"reason": "?", "score": "four"},
                "depth": {"reason": "thin", "score": 2},
            }
        )
        + "\n```"
    )
    parsed = parse_rating(reply)
    assert parsed.scores == {"helpfulness": 4, "clarity": 5, "factuality": 1, "depth": 2, "engagement": 1}
    assert parsed.reasons["helpfulness"] == "good" and parsed.mean == pytest.approx(13 / 5)
    assert parse_rating("not json at all").scores == dict.fromkeys(JUSTEVAL_ASPECTS, 1)
    assert parse_rating('{"safety": {"reason": "fine", "score": 5}}', ("safety",)).mean == 5


def test_openai_judge_rates_with_the_paper_model(tmp_path) -> None:
    reply = json.dumps({a: {"reason": "r", "score": 3 + (a == "depth")} for a in JUSTEVAL_ASPECTS})
    client = FakeClient(reply)
    judge = OpenAIJudge(client=client)
    item = _justeval_item()
    scores = rate(item, "Mix flour and water.", judge)
    assert scores.scores["depth"] == 4 and scores.mean == pytest.approx(16 / 5)
    assert item_value(item, "Mix flour and water.", judge) == pytest.approx(16 / 5)
    (request, _) = client.requests
    assert request["model"] == "gpt-4o" and "temperature" not in request
    assert request["response_format"] == {"type": "json_object"}
    assert "Mix flour and water." in request["messages"][0]["content"]
    with pytest.raises(ValueError, match=r"\.rate\(item, output\)"):
        rate(item, "x", lambda i, o: True)


def test_openai_judge_picks_the_model_per_task_and_reads_one_or_zero() -> None:
    client = FakeClient('{"reason": "same", "correct": "1"}')
    judge = OpenAIJudge(client=client)
    coin = row_to_item(PAPER_TASKS["coin_flip"], {"inputs": "Q: Heads up?", "targets": "yes"}, 0)
    date = row_to_item(PAPER_TASKS["date"], {"inputs": "Q: Today?\nA:", "targets": ["01/01/2020"]}, 0)
    assert judge(coin, "yes") is True and judge(date, "01/01/2020") is True
    assert [r["model"] for r in client.requests] == ["gpt-4o", "gpt-4o-mini"]
    assert all(r["temperature"] == 0 for r in client.requests)
    assert OpenAIJudge(client=FakeClient('{"correct": "0"}'))(coin, "no") is False
    fixed = OpenAIJudge("local-judge", client=client)
    assert fixed.model_for(coin) == fixed.model_for(date) == "local-judge"


# --------------------------------------------------------------------------------- prompts and models
@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(
        ["Question: what is it? Answer the question by walking. [INST] <<SYS>>"] * 20, vocab_size=300
    )


def test_official_templates_route_the_papers_models() -> None:
    expected = {
        "meta-llama/Llama-2-7b-chat-hf": "llama-2-chat",
        "meta-llama/Llama-2-70b-chat-hf": "llama-2-chat",
        "google/gemma-2-2b-it": "gemma-it",
        "google/gemma-2-27b-it": "gemma-it",
        "hamishivi/OLMo-1B-0724-Instruct-hf": "olmo-instruct",
        "allenai/OLMo-7B-0724-Instruct-hf": "olmo-instruct",
        "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-instruct",
        "meta-llama/Meta-Llama-3-8B-Instruct": "llama-3-instruct",
    }
    assert {name: official_template_for(name) for name in expected} == expected
    for fam in PAPER_FAMILIES:
        assert official_template_for(fam.base) is None
        assert official_template_for(fam.small_aligned) and official_template_for(fam.large_aligned)


def test_task_prompts_official_llama2_template(tok) -> None:
    tok.name_or_path = "meta-llama/Llama-2-7b-chat-hf"
    item = row_to_item(
        PAPER_TASKS["mmlu"],
        {"question": "Capital of Norway?", "subject": "geography", "choices": ["Rome", "Oslo"], "answer": 1},
        0,
    )
    prompts = task_prompts(item, tok, template="official")
    user = "Subject: geography\nQuestion: Capital of Norway?\nA. Rome\nB. Oslo"
    assert prompts.base == f"{SYSTEM_PROMPT}\n{user}\n"
    # the tokenizer adds BOS when encoding, so its text leads (the official servers add it)
    assert prompts.nudger == f"<s>[INST] <<SYS>>\n{SYSTEM_PROMPT}\n<</SYS>>\n\n{user} [/INST] "
    assert tok(prompts.nudger, add_special_tokens=False)["input_ids"][0] == tok.bos_token_id
    je = task_prompts(_justeval_item(), tok, template="gemma-it")
    assert je.nudger == (
        f"<s><start_of_turn>user\n{ASSISTANT_SYSTEM_PROMPT}\nInstruction: How do I bake bread?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert je.base == f"{ASSISTANT_SYSTEM_PROMPT}\nInstruction: How do I bake bread?\n"


def test_official_template_errors(tok) -> None:
    tok.name_or_path = "some/tiny-model"
    with pytest.raises(ConfigError, match="template='chat'"):
        nudger_prompt(tok, "Why?", template="official")
    with pytest.raises(ConfigError, match="unknown prompt template"):
        nudger_prompt(tok, "Why?", template="vicuna")
    with pytest.raises(ValueError, match="template must be one of"):
        PaperModels("X", "a", "b", "c", 0.3, template="vicuna")


def test_cross_family_pairs_use_the_papers_models() -> None:
    assert [(p.base, p.nudger, p.role) for p in PAPER_CROSS_PAIRS] == [
        ("Gemma-2", "Llama-2", "small_aligned"),
        ("Gemma-2", "OLMo", "large_aligned"),
    ]
    assert cross_nudger_role("Gemma-2", "OLMo") == "large_aligned"
    assert cross_nudger_role("Gemma-2", "Llama-2") == cross_nudger_role("OLMo", "Llama-2") == "small_aligned"
    olmo = next(f for f in PAPER_FAMILIES if f.name == "OLMo")
    assert getattr(olmo, cross_nudger_role("Gemma-2", "OLMo")) == "allenai/OLMo-7B-0724-Instruct-hf"


def test_requirements_name_the_proxy_tuning_anti_experts() -> None:
    from nudging.paper import requirements
    from nudging.reproduce import PaperSection

    models = {r.id: r.why for r in requirements(PaperSection()) if r.kind == "model"}
    assert models["allenai/OLMo-1B-0724-hf"] == "OLMo small base (proxy-tuning anti-expert)"
    assert {"meta-llama/Llama-2-7b-hf", "google/gemma-2-2b"} <= set(models)
    assert len(models) == 12  # three families x (base, small aligned, large aligned, small base)
