"""The two prompts of nudging: a plain-text prompt for the base model, a chat prompt for the nudger.

The nudger's prompt is rendered with its tokenizer's chat template (`template="chat"`) or with the
official code's hand-written template of its family (`template="official"`, routed by model name, or a
key of `OFFICIAL_TEMPLATES`), e.g. Llama-2-chat's ``[INST] ... [/INST] `` with its trailing space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from reprokit.errors import ConfigError, DataError, ModelLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: The system prompt of every reasoning, QA, math and symbolic task in the paper.
SYSTEM_PROMPT = "Answer the question by walking through the reasoning steps."
#: The system prompt of just-eval and just-eval-safety.
ASSISTANT_SYSTEM_PROMPT = "You are a helpful assistant."
#: The question prefix of the reasoning tasks and of just-eval (official `dataset_utils.PROMPTS`).
QUESTION_PREFIX = "Question: "
INSTRUCTION_PREFIX = "Instruction: "
#: Llama-3.1's system-prompt header in the official template.
_LLAMA31_DATES = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
#: The official code's hand-written instruct templates (`utils.apply_instruct_template`), BOS left out
#: (its servers add it; `nudger_prompt` adds the tokenizer's BOS text where the tokenizer would).
OFFICIAL_TEMPLATES: dict[str, str] = {
    "llama-2-chat": "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] ",
    "llama-3-instruct": (
        "<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "llama-3.1-instruct": (
        "<|start_header_id|>system<|end_header_id|>\n\n" + _LLAMA31_DATES + "{system}<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "gemma-it": "<start_of_turn>user\n{system}\n{user}<end_of_turn>\n<start_of_turn>model\n",
    "olmo-instruct": "<|endoftext|><|user|>\n{system}\n{user}\n<|assistant|>\n",
}
#: `template` values of `nudger_prompt` besides the keys of `OFFICIAL_TEMPLATES`.
TEMPLATE_CHOICES = ("chat", "official", *OFFICIAL_TEMPLATES)


@dataclass(frozen=True)
class NudgingPrompt:
    """The base model's plain prompt and the nudging model's rendered chat prompt for one question."""

    base: str
    nudger: str


def base_prompt(
    question: str, *, system: str = SYSTEM_PROMPT, prefix: str = "Question: ", context: str = ""
) -> str:
    """The official base prompt: system prompt, newline, context + prefix + question, newline."""
    _check_question(question)
    return f"{system}\n{context}{prefix}{question}\n"


def nudger_prompt(
    tokenizer: PreTrainedTokenizerBase,
    question: str,
    *,
    system: str | None = SYSTEM_PROMPT,
    context: str = "",
    plain: bool = False,
    template: str = "chat",
    prefix: str = "",
) -> str:
    """The nudging model's prompt in its chat format (system prompt included when given).

    `template="chat"` renders the tokenizer's chat template; `"official"` the official code's
    hand-written template of the model's family (routed by the tokenizer's name, as the official code
    does), or name one of `OFFICIAL_TEMPLATES`. The user turn is ``context + prefix + question`` (the
    official code passes ``prefix="Question: "``). `plain=True` uses the base prompt instead, for a
    nudging model without a chat template.
    """
    _check_question(question)
    if plain:
        return base_prompt(question, system=system or "", context=context)
    user = f"{context}{prefix}{question}"
    if template != "chat":
        return official_prompt(tokenizer, template, system=system or "", user=user)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ModelLoadError(
            "the nudging tokenizer has no chat template, but nudging prompts the aligned model in its chat "
            "format; use an instruction-tuned model's tokenizer (or set tokenizer.chat_template), or pass "
            "plain_nudger_prompt=True (--plain-nudger-prompt) to prompt it with the plain base prompt."
        )
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user})
    try:
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as err:  # e.g. templates that reject a system role (Gemma): fold it into the user turn
        if not system:
            raise
        folded = [{"role": "user", "content": f"{system}\n{user}"}]
        try:
            rendered = tokenizer.apply_chat_template(folded, add_generation_prompt=True, tokenize=False)
        except Exception:
            raise ModelLoadError(
                f"the nudging tokenizer's chat template failed to render: {err}; pass --plain-nudger-prompt "
                "(plain_nudger_prompt=True) or fix tokenizer.chat_template."
            ) from err
    if not isinstance(rendered, str):
        raise TypeError(f"apply_chat_template returned {type(rendered).__name__}, expected a string")
    return rendered


def official_template_for(model_name: str) -> str | None:
    """The key of the official hand-written template for a model name, or None (a base model).

    The official routing by lower-cased substrings: chat + llama + 2, instruct + llama + 3 (3.1 adds the
    knowledge-date lines), gemma + it, instruct + olmo; "it" must be a whole name part here (the
    official substring test also matches e.g. "gemma-2-27b-with-..." names).
    """
    name = model_name.lower()
    parts = set(re.split(r"[^a-z0-9.]+", name))
    if "chat" in name and "llama" in name and "2" in name:
        return "llama-2-chat"
    if "instruct" in name and "llama" in name and "3" in name:
        return "llama-3.1-instruct" if "3.1" in name else "llama-3-instruct"
    if "gemma" in name and "it" in parts:
        return "gemma-it"
    if "instruct" in name and "olmo" in name:
        return "olmo-instruct"
    return None


def official_prompt(tokenizer: PreTrainedTokenizerBase, template: str, *, system: str, user: str) -> str:
    """`user` in the official hand-written template (`template`: a key or "official" = routed by the
    tokenizer's name), led by the tokenizer's BOS text where its encoder adds one (the official code
    leaves BOS to the server, which encodes with special tokens; nudging encodes chat prompts without)."""
    key = template
    if template == "official":
        name = str(getattr(tokenizer, "name_or_path", "") or "")
        found = official_template_for(name)
        if found is None:
            raise ConfigError(
                f"template='official': {name!r} is not a model the official code has a template for "
                "(Llama-2 chat, Llama-3 instruct, Gemma -it, OLMo instruct); pass template='chat' for the "
                f"tokenizer's chat template, or name one of {sorted(OFFICIAL_TEMPLATES)}."
            )
        key = found
    if key not in OFFICIAL_TEMPLATES:
        raise ConfigError(f"unknown prompt template {template!r}; use one of {list(TEMPLATE_CHOICES)}.")
    return _bos_text(tokenizer) + OFFICIAL_TEMPLATES[key].format(system=system, user=user)


def _bos_text(tokenizer: PreTrainedTokenizerBase) -> str:
    """The BOS token's text if the tokenizer puts it in front when encoding with special tokens, else ""."""
    bos, bos_id = getattr(tokenizer, "bos_token", None), getattr(tokenizer, "bos_token_id", None)
    if not bos or bos_id is None:
        return ""
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bos if list(ids[:1]) == [bos_id] else ""


class PromptItem(Protocol):
    """What `task_prompts` reads from a task item (`nudging.tasks.TaskItem`)."""

    question: str
    context: str
    system: str
    prefix: str


def task_prompts(
    item: PromptItem,
    nudging_tokenizer: PreTrainedTokenizerBase,
    *,
    template: str = "chat",
    plain_nudger_prompt: bool = False,
    nudger_prefix: str | None = None,
) -> NudgingPrompt:
    """Both prompts for one task item as the official code builds them: the item's system prompt,
    context and question prefix ("Question: ", or "Instruction: " for just-eval) in both prompts.

    `nudger_prefix` overrides the prefix in the nudger's user turn (None: the item's own, as the
    official code; "" for models fine-tuned on bare questions, such as the tiny-scale nudgers).
    """
    prefix = item.prefix if nudger_prefix is None else nudger_prefix
    base = base_prompt(item.question, system=item.system, prefix=item.prefix, context=item.context)
    if plain_nudger_prompt:
        nudger = base_prompt(item.question, system=item.system, prefix=prefix, context=item.context)
    else:
        nudger = nudger_prompt(
            nudging_tokenizer,
            item.question,
            system=item.system,
            context=item.context,
            template=template,
            prefix=prefix,
        )
    return NudgingPrompt(base=base, nudger=nudger)


def build_prompts(
    question: str,
    nudging_tokenizer: PreTrainedTokenizerBase,
    *,
    system: str = SYSTEM_PROMPT,
    context: str = "",
    plain_nudger_prompt: bool = False,
    template: str = "chat",
) -> NudgingPrompt:
    """Both prompts for one question, as in the paper (zero-shot, system prompt included); `template`
    as in `nudger_prompt`."""
    return NudgingPrompt(
        base=base_prompt(question, system=system, context=context),
        nudger=nudger_prompt(
            nudging_tokenizer,
            question,
            system=system,
            context=context,
            plain=plain_nudger_prompt,
            template=template,
        ),
    )


def _check_question(question: str) -> None:
    if not isinstance(question, str):
        raise TypeError(f"the question must be a string, got {type(question).__name__}")
    if not question.strip():
        raise DataError("the prompt/question is empty; pass the question text to answer.")
