from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from reprokit.tokenizer import DEFAULT_CHAT_TEMPLATE, tokenizer_fingerprint, train_tokenizer


def test_special_tokens_and_bos(tokenizer):
    ids = tokenizer("Item 3 is red.").input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer("Item 3 is red.", add_special_tokens=False).input_ids == ids[1:]
    assert {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id} == {0, 1, 2}
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Item 3 is red."


def test_chat_template_renders_generation_prompt(tokenizer):
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Where is item 3?"}], add_generation_prompt=True, tokenize=False
    )
    assert text == "<s><|user|>\nWhere is item 3?\n<|assistant|>\n"
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], tokenize=False
    )
    assert full.endswith("<|assistant|>\nA</s>\n")


def test_save_and_load_round_trip(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "Item 12 is green and weighs 3 kg."
    assert loaded(text).input_ids == tokenizer(text).input_ids
    assert loaded.chat_template == DEFAULT_CHAT_TEMPLATE
    assert tokenizer_fingerprint(loaded) == tokenizer_fingerprint(tokenizer)


def test_same_corpus_same_tokenizer_and_vocab_size_changes_merges(corpus):
    a = train_tokenizer(corpus, vocab_size=300)
    b = train_tokenizer(corpus, vocab_size=300)
    c = train_tokenizer(corpus, vocab_size=280)
    assert tokenizer_fingerprint(a) == tokenizer_fingerprint(b)
    assert tokenizer_fingerprint(a) != tokenizer_fingerprint(c)
    assert a("Item 12 is green.").input_ids != c("Item 12 is green.").input_ids


@pytest.mark.parametrize("corpus_", [[], ["", ""]])
def test_empty_corpus_is_a_clear_error(corpus_):
    with pytest.raises(ValueError, match="corpus is empty"):
        train_tokenizer(corpus_)


def test_too_small_vocab_is_a_clear_error(corpus):
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(corpus, vocab_size=100)
