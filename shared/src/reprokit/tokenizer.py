"""Train small byte-level BPE tokenizers for tiny-scale models.

Different vocabulary sizes (or corpora) give different merges, which is how the tiny scale gets several
"model families" whose tokenizers disagree, as real Llama/Gemma/OLMo tokenizers do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

#: A minimal chat template in the OLMo/Tulu style. The assistant turn ends with the eos token, so a
#: fine-tuned model learns to stop; `add_generation_prompt` opens an assistant turn.
DEFAULT_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>\n{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}<|user|>\n{{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}<|assistant|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(
    corpus: Iterable[str],
    *,
    vocab_size: int = 1024,
    min_frequency: int = 2,
    chat_template: str | bool | None = None,
    model_max_length: int = 1024,
    extra_special_tokens: Sequence[str] = (),
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `corpus` and wrap it as a `PreTrainedTokenizerFast`.

    Encoding prepends the bos token (so the first real token is scored); `add_special_tokens=False`
    leaves it out. `chat_template=True` installs `DEFAULT_CHAT_TEMPLATE`; a string installs that
    template. The result round-trips through `save_pretrained` / `from_pretrained`.
    """
    texts = [t for t in corpus if t]
    if not texts:
        raise ValueError("train_tokenizer: the corpus is empty; pass at least one non-empty text.")
    specials = [PAD, BOS, EOS, *CHAT_TOKENS, *extra_special_tokens]
    if vocab_size < 256 + len(specials) + 1:
        raise ValueError(
            f"train_tokenizer: vocab_size={vocab_size} is too small; a byte-level BPE needs at least "
            f"{256 + len(specials) + 1} (256 bytes + {len(specials)} special tokens + 1 merge)."
        )

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
            ),
        ]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=model_max_length,
        padding_side="right",
    )
    if chat_template is True:
        fast.chat_template = DEFAULT_CHAT_TEMPLATE
    elif isinstance(chat_template, str):
        fast.chat_template = chat_template
    logger.info("trained a BPE tokenizer with %d tokens on %d texts", len(fast), len(texts))
    return fast


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerFast) -> str:
    """A content hash of the tokenizer's vocabulary, merges and special tokens (for cache keys)."""
    import hashlib

    backend = tokenizer.backend_tokenizer.to_str()
    extra = f"{tokenizer.bos_token}|{tokenizer.eos_token}|{tokenizer.pad_token}|{tokenizer.chat_template}"
    return hashlib.sha256((backend + extra).encode()).hexdigest()[:16]
