"""The two prompts of nudging: a plain-text prompt for the base model, a chat prompt for the nudger."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from reprokit.errors import DataError, ModelLoadError

#: The system prompt of every reasoning, QA, math and symbolic task in the paper.
SYSTEM_PROMPT = "Answer the question by walking through the reasoning steps."
#: The system prompt of just-eval and just-eval-safety.
ASSISTANT_SYSTEM_PROMPT = "You are a helpful assistant."


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
) -> str:
    """The nudging model's prompt through its own chat template (system prompt included when given).

    `plain=True` uses the base prompt instead, for a nudging model without a chat template.
    """
    _check_question(question)
    if plain:
        return base_prompt(question, system=system or "", context=context)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ModelLoadError(
            "the nudging tokenizer has no chat template, but nudging prompts the aligned model in its chat "
            "format; use an instruction-tuned model's tokenizer (or set tokenizer.chat_template), or pass "
            "plain_nudger_prompt=True (--plain-nudger-prompt) to prompt it with the plain base prompt."
        )
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": f"{context}{question}"})
    try:
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as err:  # e.g. templates that reject a system role (Gemma): fold it into the user turn
        if not system:
            raise
        folded = [{"role": "user", "content": f"{system}\n{context}{question}"}]
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


def build_prompts(
    question: str,
    nudging_tokenizer: PreTrainedTokenizerBase,
    *,
    system: str = SYSTEM_PROMPT,
    context: str = "",
    plain_nudger_prompt: bool = False,
) -> NudgingPrompt:
    """Both prompts for one question, as in the paper (zero-shot, system prompt included)."""
    return NudgingPrompt(
        base=base_prompt(question, system=system, context=context),
        nudger=nudger_prompt(
            nudging_tokenizer, question, system=system, context=context, plain=plain_nudger_prompt
        ),
    )


def _check_question(question: str) -> None:
    if not isinstance(question, str):
        raise TypeError(f"the question must be a string, got {type(question).__name__}")
    if not question.strip():
        raise DataError("the prompt/question is empty; pass the question text to answer.")
