"""With the official options, the package's nudging equals a literal re-implementation of the official loop.

The oracle (`official_oracle.py`) follows the official client's control flow with plain `generate`
calls. Program (through both drivers, `nudge_fast` and `nudge_batch`) and reference must give the same
text, stop reason and number of rounds, across four architectures, a byte-level BPE and a
SentencePiece-style (Unigram + Metaspace) tokenizer, short and long chunks, and gamma 0, middle, 1.
The models are random-initialised with sharpened output layers, so top-1 probabilities spread around
gamma, greedy decoding falls into the repetition loops the official stops are for, and EOS occurs.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from nudging import NudgeResult, NudgingConfig, NudgingPrompt, nudge_fast, nudge_reference
from nudging.lockstep import nudge_batch
from nudging.words import (
    is_repeated_chunk,
    is_repeated_nudge,
    repetition_span,
    strip_repetitions_official,
    strip_trailing_repetitions,
)
from reprokit.errors import ConfigError
from reprokit.lm import LanguageModel
from reprokit.zoo import build_model


def _load_oracle():
    """The oracle module next to this file (tests are imported with --import-mode=importlib)."""
    name = "nudging_tests_official_oracle"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("official_oracle.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_oracle = _load_oracle()
Server, official_nudging, remove_redundant_repetitions = (
    _oracle.Server,
    _oracle.official_nudging,
    _oracle.remove_redundant_repetitions,
)

WORDS = (  # noqa: SIM905 (one readable line of words)
    "the a farmer has apples and gives some away so now left answer is step first then we add subtract "
    "total of each box holds how many does she he they sure let us think here's therefore"
).split()


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )


SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
CHARS = sorted(set("".join(WORDS)) | set("0123456789.,?!:'\n "))


@cache
def tokenizer(kind: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE ("bpe") or a SentencePiece-style Unigram with Metaspace ("unigram"), built from
    fixed vocabularies (trainers break ties differently from run to run)."""
    if kind == "bpe":
        byte_map = pre_tokenizers.ByteLevel.alphabet()  # the printable stand-ins of all 256 bytes
        to_unicode = {c: _byte_char(c) for c in CHARS}
        assert set(to_unicode.values()) <= set(byte_map)
        vocab = {t: i for i, t in enumerate([*SPECIALS, *sorted(to_unicode.values())])}
        merges: list[tuple[str, str]] = []
        for word in WORDS:  # merge each word left to right, then a leading space onto the word
            pairs = [(word[:i], word[i]) for i in range(1, len(word))] + [(to_unicode[" "], word)]
            for left, right in pairs:
                if left + right not in vocab:
                    vocab[left + right] = len(vocab)
                    merges.append((left, right))
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    else:
        pieces = [(t, 0.0) for t in SPECIALS] + [(c, -6.0) for c in CHARS if c != " "] + [("▁", -6.0)]
        pieces += [(w, -3.0) for w in WORDS] + [("▁" + w, -2.5) for w in WORDS]
        tok = Tokenizer(models.Unigram(pieces, unk_id=3))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tok.add_special_tokens(SPECIALS)
    return _wrap(tok)


def _byte_char(c: str) -> str:
    """The byte-level BPE's printable stand-in for an ASCII character (GPT-2's byte-to-unicode map)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    if ord(c) in printable:
        return c
    return chr(256 + [b for b in range(256) if b not in printable].index(ord(c)))


@cache
def lm(arch: str, kind: str, seed: int, head: float, eos: float, space: float = 1.0) -> LanguageModel:
    """A random tiny model with its output layer sharpened `head` times (so p1 spreads over (0, 1)),
    the EOS row a further `eos` times (so EOS occurs) and the rows of tokens that start with a space
    `space` times (so the text has words)."""
    tok = tokenizer(kind)
    model = build_model(f"{arch}-0.3m", tok, seed=seed).eval()
    with torch.no_grad():
        weight = model.get_output_embeddings().weight
        weight.mul_(head)
        weight[tok.eos_token_id].mul_(eos)
        for i, piece in enumerate(tok.convert_ids_to_tokens(list(range(len(tok))))):
            if piece.startswith(("Ġ", "▁")):
                weight[i].mul_(space)
    return LanguageModel(model, tok)


@cache
def cycling_base(kind: str, cycle: str) -> LanguageModel:
    """A random llama whose layers are silenced and whose output layer maps each token of `cycle` to the
    next one (every other token to the first), confidently: a base model that repeats `cycle`."""
    tok = tokenizer(kind)
    ids = tok(cycle, add_special_tokens=False)["input_ids"]
    assert len(set(ids)) == len(ids), tok.convert_ids_to_tokens(ids)
    model = build_model("llama-0.3m", tok, seed=13).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        hidden = model.model.norm(model.model.embed_tokens.weight)  # the last hidden state of each token
        dual = hidden / (hidden * hidden).sum(-1, keepdim=True).clamp_min(1e-6)
        weight = torch.zeros_like(model.lm_head.weight)
        following = {t: ids[(i + 1) % len(ids)] for i, t in enumerate(ids)}
        for t in range(len(tok)):
            weight[following.get(t, ids[0])] += dual[t]
        model.lm_head.weight.copy_(20.0 * weight)
    return LanguageModel(model, tok)


PAIRS = {  # base (arch, tokenizer), nudging model (arch, tokenizer); "cycle": a base repeating a sentence
    "llama-bpe+neox-unigram": (("llama", "bpe"), ("gpt_neox", "unigram")),
    "qwen2-unigram+llama-bpe": (("qwen2", "unigram"), ("llama", "bpe")),
    "olmo-bpe+neox-bpe": (("olmo", "bpe"), ("gpt_neox", "bpe")),
    "cycle-bpe+neox-unigram": (("cycle", "bpe"), ("gpt_neox", "unigram")),
}
SETTINGS = {  # gamma, look-ahead tokens, base chunk tokens, max rounds
    "g0-long": (0.0, 16, 16, 150),
    "g0.4-long": (0.4, 16, 16, 150),
    "g0.4-short": (0.4, 4, 2, 150),
    "g0.7-short": (0.7, 5, 3, 150),
    "g1-chunk1": (1.0, 4, 1, 150),
    "g0.2-4rounds": (0.2, 8, 4, 4),
}
CASES = [
    *((pair, setting) for pair in list(PAIRS)[:3] for setting in SETTINGS),
    ("cycle-bpe+neox-unigram", "g0.4-long"),
    ("cycle-bpe+neox-unigram", "g0.7-short"),
]
QUESTIONS = ("how many apples does the farmer have", "so the answer is", "let us think step by step")
MAX_TOKENS = 40
CYCLE = " the farmer has some"

Answer = tuple[str, str, int]  # text, stop reason, rounds


def _pair(name: str) -> tuple[LanguageModel, LanguageModel]:
    (base_arch, base_kind), (nudger_arch, nudger_kind) = PAIRS[name]
    nudger = lm(nudger_arch, nudger_kind, 12, 12.0, 1.7, 1.4)
    if base_arch == "cycle":
        return cycling_base(base_kind, CYCLE), nudger
    return lm(base_arch, base_kind, 11, 20.0, 1.5, 1.4), nudger


def _prompt(question: str) -> NudgingPrompt:
    return NudgingPrompt(
        base=f"Answer the question by walking through the reasoning steps.\nQuestion: {question}\n",
        nudger=f"<s>User: {question}\nAssistant:",
    )


def _config(setting: str) -> NudgingConfig:
    gamma, lookahead, chunk, rounds = SETTINGS[setting]
    return NudgingConfig.official(
        gamma=gamma,
        lookahead_tokens=lookahead,
        base_chunk_tokens=chunk,
        max_new_tokens=MAX_TOKENS,
        max_rounds=rounds,
    )


@cache
def oracle(pair: str, setting: str) -> tuple[Answer, ...]:
    """The oracle's answers to `QUESTIONS` (computed once per session)."""
    base, nudger = _pair(pair)
    config = _config(setting)
    answers = []
    for question in QUESTIONS:
        prompt = _prompt(question)
        a = official_nudging(
            Server(base.model, base.tokenizer, add_special_tokens=True),
            Server(nudger.model, nudger.tokenizer, add_special_tokens=False),
            prompt.base,
            prompt.nudger,
            top_prob_thres=config.gamma,
            completion_token_num=config.base_chunk_tokens,
            completion_token_num_nudging=config.lookahead_tokens,
            max_token_total=config.max_new_tokens,
            max_round=config.max_rounds,
        )
        answers.append((a.raw_answer, a.stop_reason, a.rounds))
    return tuple(answers)


def _key(result: NudgeResult) -> Answer:
    return (result.text, result.stop_reason, result.n_rounds)


def _fast(pair: str, config: NudgingConfig) -> list[Answer]:
    base, nudger = _pair(pair)
    return [_key(nudge_fast(base, nudger, _prompt(q), config)) for q in QUESTIONS]


@pytest.mark.parametrize(("pair", "setting"), CASES)
def test_official_options_equal_the_oracle(pair: str, setting: str) -> None:
    """program (fast and lock-step drivers) and reference give the oracle's answers, string for string."""
    base, nudger = _pair(pair)
    config = _config(setting)
    expected = list(oracle(pair, setting))
    prompts = [_prompt(q) for q in QUESTIONS]
    assert _fast(pair, config) == expected
    assert [_key(r) for r in nudge_batch(base, nudger, prompts, config, batch_size=2)] == expected
    assert [_key(nudge_reference(base, nudger, p, config)) for p in prompts] == expected


def test_the_cases_reach_every_official_stop() -> None:
    """The oracle's answers end for every stop reason of the official code."""
    reasons = {a[1] for case in CASES for a in oracle(*case)}
    assert reasons == {"nudging_model_stop", "repeated_nudging_words", "length", "round"}, reasons


@pytest.mark.parametrize(
    "change",
    [
        {"stop_on_repeated_chunk": False},
        {"min_repeat_words": 0},
        {"repeat_nudge_limit": 3},
        {"repetition_search": "exhaustive"},
        {"exact_length": True},
    ],
    ids=lambda change: next(iter(change)),
)
def test_each_official_option_matters(change: dict) -> None:
    """Turning one official option off changes some answer of the cases (so equality is no accident)."""
    for pair, setting in CASES:
        if _fast(pair, replace(_config(setting), **change)) != list(oracle(pair, setting)):
            return
    pytest.fail(f"no answer changed with {change}")


def test_the_official_checks_cut_the_repeating_base() -> None:
    """A base model that repeats a sentence: its first run ends at the first chunk that repeats what it
    wrote; each later run at its first token, as its first chunk repeats the answer (6+ words)."""
    text = oracle("cycle-bpe+neox-unigram", "g0.4-long")[0][0]
    assert CYCLE * 4 in text and CYCLE * 5 not in text
    assert text.count(CYCLE) == 4, text


def test_official_repetition_stripping_misses_what_ours_strips() -> None:
    unit = "The answer is 42, so we are done. "
    text = "  Start. " + unit * 3 + "\n"
    assert remove_redundant_repetitions(text) == "Start. " + (unit * 3).rstrip()
    start, end = repetition_span(text, "official")
    assert text[start:end] == remove_redundant_repetitions(text)
    start, end = repetition_span(text, "exhaustive")
    assert text[start:end] == "Start. " + unit.rstrip()
    # a repeat whose length the binary search happens to probe (here the first probe, half the text)
    sentence = unit.strip()
    assert strip_repetitions_official(sentence * 2) == strip_trailing_repetitions(sentence * 2) == sentence


def test_strip_search_agrees_with_the_oracle_on_random_texts() -> None:
    rng = random.Random(3)
    for _ in range(300):
        unit = "".join(rng.choice("ab .") for _ in range(rng.randint(1, 40)))
        text = rng.choice(["", " ", "x y"]) + unit * rng.randint(1, 4) + rng.choice(["", "\n", "ab"])
        start, end = repetition_span(text, "official")
        assert text[start:end] == remove_redundant_repetitions(text)


def test_official_defaults_and_preset() -> None:
    """Defaults follow the official code except the exact length budget; `official()` also matches it."""
    ours, official = NudgingConfig(), NudgingConfig.official(gamma=0.4)
    assert (ours.repeat_nudge_limit, ours.stop_on_repeated_chunk, ours.min_repeat_words) == (4, True, 6)
    assert (ours.repetition_search, ours.exact_length) == ("official", True)
    assert official == replace(ours, exact_length=False, gamma=0.4)
    for bad in ({"repetition_search": "all"}, {"exact_length": 1}, {"stop_on_repeated_chunk": None}):
        with pytest.raises(ConfigError, match="NudgingConfig"):
            NudgingConfig(**bad)


def test_repeat_counters_count_as_the_official_code() -> None:
    # the official counter starts from an empty previous nudge: callers seed `recent` with ""
    assert not is_repeated_nudge(["", "x", "x"], "x", 4)  # the 3rd " x" in a row goes on
    assert is_repeated_nudge(["", "x", "x", "x"], "x", 4)  # the 4th stops
    assert is_repeated_nudge(["", "", ""], "", 4)  # an empty first nudge already counts as a repeat
    # `repetition_check` counts the parts of split(" "), empty ones included
    assert is_repeated_chunk(" a b c d e", "so a b c d e", 6)
    assert not is_repeated_chunk("a b c d e", "so a b c d e", 6)
    assert not is_repeated_chunk(" a b c d e", "so a b c d", 6)  # not in the text
    assert not is_repeated_chunk(" a b c d e", "so a b c d e", 0)
