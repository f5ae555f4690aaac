"""The paper's baselines on tiny random models: ensemble, proxy tuning and URIAL (no training, no network)."""

from __future__ import annotations

import copy

import pytest
import torch

from nudging.baselines import (
    URIAL_EXAMPLES,
    URIAL_PREAMBLE,
    ensemble_generate,
    proxy_tune_generate,
    urial_generate,
    urial_prompt,
)
from nudging.prompts import NudgingPrompt, build_prompts
from reprokit.errors import ConfigError
from reprokit.generation import generate
from reprokit.lm import LanguageModel
from reprokit.tokenizer import train_tokenizer
from reprokit.zoo import build_model

CORPUS = [
    "Answer the question by walking through the reasoning steps.",
    "Question: Where does Ada live? Ada lives in Oslo. The answer is Oslo.",
    "Question: What is 3 plus 4? 3 plus 4 is 7. The answer is 7.",
    "The cat sat on the mat while the dog slept near the door.",
    "Sure! Let's think step by step. First, we add the numbers.",
] * 8
QUESTIONS = ["Where does Ada live?", "What is 3 plus 4?", "Is the coin still heads up after two flips by Bo?"]
N = 10  # new tokens per answer


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models run much faster on one thread when the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models() -> dict[str, LanguageModel]:
    tok = train_tokenizer(CORPUS, vocab_size=300, chat_template=True)
    other = train_tokenizer(CORPUS, vocab_size=320, chat_template=True)

    def lm(seed: int, tokenizer=tok) -> LanguageModel:
        model = build_model("llama-0.3m", tokenizer, seed=seed)
        with torch.no_grad():  # sharper next-token distributions than the init's near-uniform ones
            model.lm_head.weight.mul_(30.0)
        return LanguageModel(model.eval(), tokenizer, name=f"tiny-{seed}")

    return {"base": lm(1), "aligned": lm(2), "small_base": lm(3), "foreign": lm(4, other)}


def _greedy(lm: LanguageModel, prompts: list[str], *, chat: bool) -> list[tuple[int, ...]]:
    out = generate(lm, prompts, max_new_tokens=N, batch_size=len(prompts), add_special_tokens=not chat)
    return [g.token_ids for g in out]


def _prompts(models) -> list[NudgingPrompt]:
    return [build_prompts(q, models["aligned"].tokenizer) for q in QUESTIONS]


@torch.no_grad()
def _reference(streams, combine, n=N) -> list[int]:
    """One prompt at a time, every step a full forward pass (no cache, no padding)."""
    seqs = [list(ids) for _, ids in streams]
    eos = set().union(*(lm.eos_ids for lm, _ in streams))
    out: list[int] = []
    for _ in range(n):
        logits = [
            lm.model(input_ids=torch.tensor([s])).logits[0, -1].float()
            for (lm, _), s in zip(streams, seqs, strict=True)
        ]
        tok = int(combine(logits))
        if tok in eos:
            break
        out.append(tok)
        for s in seqs:
            s.append(tok)
    return out


def test_ensemble_endpoints_are_the_single_models(models) -> None:
    base, aligned = models["base"], models["aligned"]
    prompts = _prompts(models)
    greedy_base = _greedy(base, [p.base for p in prompts], chat=False)
    greedy_aligned = _greedy(aligned, [p.nudger for p in prompts], chat=True)
    assert greedy_base != greedy_aligned  # the two models disagree, so the endpoints tell them apart
    at0 = ensemble_generate(base, aligned, QUESTIONS, weight=0.0, max_new_tokens=N, batch_size=3)
    at1 = ensemble_generate(base, aligned, prompts, weight=1.0, max_new_tokens=N, batch_size=3)
    assert [o.token_ids for o in at0] == greedy_base
    assert [o.token_ids for o in at1] == greedy_aligned
    assert at0[0].text == base.decode(greedy_base[0])


def test_ensemble_mixture_matches_uncached_reference(models) -> None:
    base, aligned = models["base"], models["aligned"]
    prompts = _prompts(models)[:2]  # two lengths: left padding
    out = ensemble_generate(base, aligned, prompts, weight=0.5, max_new_tokens=N, batch_size=2)

    def mix(logits):
        return (0.5 * logits[0].softmax(-1) + 0.5 * logits[1].softmax(-1)).argmax()

    for p, o in zip(prompts, out, strict=True):
        streams = [(base, base.encode(p.base)), (aligned, aligned.encode(p.nudger, add_special_tokens=False))]
        assert list(o.token_ids) == _reference(streams, mix)
    greedy_base = _greedy(base, [p.base for p in prompts], chat=False)
    greedy_aligned = _greedy(aligned, [p.nudger for p in prompts], chat=True)
    assert [o.token_ids for o in out] not in (greedy_base, greedy_aligned)  # a real mixture


def test_proxy_tuning_with_equal_expert_and_antiexpert_is_base_greedy(models) -> None:
    base, expert = models["base"], models["aligned"]
    prompts = _prompts(models)
    out = proxy_tune_generate(
        base, expert, expert, prompts, expert_prompt="plain", max_new_tokens=N, batch_size=3
    )
    assert [o.token_ids for o in out] == _greedy(base, [p.base for p in prompts], chat=False)


def test_proxy_tuning_matches_uncached_reference(models) -> None:
    base, expert, anti = models["base"], models["aligned"], models["small_base"]
    prompts = _prompts(models)[:2]  # two lengths: left padding
    out = proxy_tune_generate(base, expert, anti, prompts, max_new_tokens=N, batch_size=2)
    for p, o in zip(prompts, out, strict=True):
        streams = [
            (base, base.encode(p.base)),
            (expert, expert.encode(p.nudger, add_special_tokens=False)),
            (anti, anti.encode(p.base)),
        ]
        assert list(o.token_ids) == _reference(streams, lambda lg: (lg[0] + lg[1] - lg[2]).argmax())
    assert [o.token_ids for o in out] != _greedy(base, [p.base for p in prompts], chat=False)


def test_mismatched_vocabularies_raise_a_clear_error(models) -> None:
    with pytest.raises(
        ConfigError, match=r"share one vocabulary.*different tokenizers.*within one model family"
    ):
        ensemble_generate(models["base"], models["foreign"], QUESTIONS[:1], max_new_tokens=2)
    with pytest.raises(ConfigError, match=r"proxy tuning .*share one vocabulary.*antiexpert"):
        proxy_tune_generate(
            models["base"], models["aligned"], models["foreign"], QUESTIONS[:1], max_new_tokens=2
        )


def test_tokens_added_to_one_tokenizer_stay_out_of_the_mixture(models) -> None:
    base = models["base"]
    tok = copy.deepcopy(base.tokenizer)
    tok.add_tokens(["<|extra|>"], special_tokens=True)
    extra = tok.convert_tokens_to_ids("<|extra|>")
    aligned = LanguageModel(build_model("llama-0.3m", tok, seed=5).eval(), tok, name="tiny-extra")
    prompts = [build_prompts(q, tok) for q in QUESTIONS[:2]]
    first = _greedy(aligned, [prompts[0].nudger], chat=True)[0][0]
    with torch.no_grad():  # the extra token outscores the aligned model's first choice
        aligned.model.lm_head.weight[extra] = 3.0 * aligned.model.lm_head.weight[first]
    assert extra in _greedy(aligned, [p.nudger for p in prompts], chat=True)[0]
    out = ensemble_generate(base, aligned, prompts, weight=1.0, max_new_tokens=N, batch_size=2)
    for p, o in zip(prompts, out, strict=True):
        assert extra not in o.token_ids and len(o.token_ids) == N
        streams = [(base, base.encode(p.base)), (aligned, aligned.encode(p.nudger, add_special_tokens=False))]
        assert list(o.token_ids) == _reference(streams, lambda lg: lg[1][:extra].argmax())


@pytest.mark.parametrize("weight", [-0.1, 1.5, True])
def test_ensemble_weight_out_of_range(models, weight) -> None:
    with pytest.raises(ConfigError, match="weight must be in"):
        ensemble_generate(models["base"], models["aligned"], QUESTIONS[:1], weight=weight)


def test_urial_prompt_holds_preamble_examples_and_question() -> None:
    p = urial_prompt(
        "What is 3 plus 4?", system="Answer the question by walking through the reasoning steps."
    )
    assert p.startswith(URIAL_PREAMBLE)
    assert len(URIAL_EXAMPLES) == 3
    for query, answer in URIAL_EXAMPLES:
        assert f"# Query:\n```\n{query}\n```\n\n# Answer:\n```\n{answer}\n```\n" in p
    assert p.endswith(
        "# Query:\n```\nAnswer the question by walking through the reasoning steps.\n"
        "What is 3 plus 4?\n```\n\n# Answer:\n```\n"
    )
    assert p.count("# Query:\n```\n") == 4
    with pytest.raises(ConfigError, match="empty"):
        urial_prompt("  ")


def test_urial_generate_cuts_at_the_stop_string(models) -> None:
    base = models["base"]
    prompts = [urial_prompt(q) for q in QUESTIONS[:2]]
    raw = urial_generate(base, prompts, max_new_tokens=N, stop=())
    expected = generate(base, prompts, max_new_tokens=N, batch_size=8)
    assert [o.token_ids for o in raw] == [g.token_ids for g in expected]
    text = raw[0].text
    mid = len(text) // 2
    stop = text[mid : mid + 2]
    assert stop.strip() and text.find(stop) > 0
    cut = urial_generate(base, prompts[:1], max_new_tokens=N, stop=(stop,))[0]
    assert cut.stopped
    assert cut.text == text[: text.find(stop)].strip()
    assert len(cut.token_ids) < len(raw[0].token_ids)
    with pytest.raises(ConfigError, match="urial_prompt"):
        urial_generate(base, ["What is 3 plus 4?"])
