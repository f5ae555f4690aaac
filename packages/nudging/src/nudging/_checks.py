"""Input validation and set-up shared by both implementations: prompts, models, devices, EOS ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nudging._lm import eos_ids, input_device
from nudging.config import NudgingConfig
from nudging.prompts import NudgingPrompt, build_prompts


def resolve_prompt(
    prompt: str | NudgingPrompt, nudging_tokenizer: PreTrainedTokenizerBase, *, plain_nudger_prompt: bool
) -> NudgingPrompt:
    """A question string becomes both paper prompts; a `NudgingPrompt` is checked and used as is."""
    if isinstance(prompt, NudgingPrompt):
        if not prompt.base.strip() or not prompt.nudger.strip():
            raise ValueError("NudgingPrompt has an empty base or nudger prompt; pass non-empty prompts.")
        return prompt
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a question string or a NudgingPrompt, got {type(prompt).__name__}")
    return build_prompts(prompt, nudging_tokenizer, plain_nudger_prompt=plain_nudger_prompt)


def check_pair(
    base_model: PreTrainedModel,
    base_tokenizer: PreTrainedTokenizerBase,
    nudging_model: PreTrainedModel,
    nudging_tokenizer: PreTrainedTokenizerBase,
    *,
    allow_mixed_devices: bool = False,
) -> None:
    """Raise a clear error for unusable models/tokenizers or models on different devices."""
    for role, model, tok in (
        ("base", base_model, base_tokenizer),
        ("nudging", nudging_model, nudging_tokenizer),
    ):
        if not isinstance(model, torch.nn.Module) or not callable(getattr(model, "forward", None)):
            raise TypeError(
                f"the {role} model must be a causal LM (torch module), got {type(model).__name__}"
            )
        if not callable(tok):
            raise TypeError(
                f"the {role} tokenizer must be a Hugging Face tokenizer, got {type(tok).__name__}"
            )
        if input_device(model).type == "meta":
            raise ValueError(
                f"the {role} model's weights are on the 'meta' device (not loaded); load it with real "
                "weights (e.g. reprokit.models.load_causal_lm) before nudging."
            )
    base_dev, nudge_dev = input_device(base_model), input_device(nudging_model)
    if base_dev != nudge_dev and not allow_mixed_devices:
        raise ValueError(
            f"the base model is on {base_dev} but the nudging model is on {nudge_dev}; move both to one "
            "device (model.to(device)), or pass allow_mixed_devices=True if this is intended (the models "
            "only exchange text, so it works, but a model left on the CPU by mistake is very slow)."
        )


@dataclass(frozen=True)
class Setup:
    """What both implementations derive from their arguments before the first round."""

    config: NudgingConfig
    prompts: NudgingPrompt
    base_eos: frozenset[int]
    nudge_eos: frozenset[int]
    generator: torch.Generator | None


def prepare_many(
    base_model: PreTrainedModel,
    base_tokenizer: PreTrainedTokenizerBase,
    nudging_model: PreTrainedModel,
    nudging_tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str | NudgingPrompt],
    config: NudgingConfig | None,
    *,
    plain_nudger_prompt: bool,
    allow_mixed_devices: bool,
) -> list[Setup]:
    """Validate the pair once and every prompt; resolve config, prompts, EOS ids and sampling generators.

    Each question gets its own generator seeded with `config.seed`, so a batch samples exactly what the
    questions would sample one by one.
    """
    config = config or NudgingConfig()
    check_pair(
        base_model, base_tokenizer, nudging_model, nudging_tokenizer, allow_mixed_devices=allow_mixed_devices
    )
    base_eos, nudge_eos = eos_ids(base_model, base_tokenizer), eos_ids(nudging_model, nudging_tokenizer)
    return [
        Setup(
            config=config,
            prompts=resolve_prompt(prompt, nudging_tokenizer, plain_nudger_prompt=plain_nudger_prompt),
            base_eos=base_eos,
            nudge_eos=nudge_eos,
            generator=torch.Generator().manual_seed(config.seed) if config.do_sample else None,
        )
        for prompt in prompts
    ]


def prepare(
    base_model: PreTrainedModel,
    base_tokenizer: PreTrainedTokenizerBase,
    nudging_model: PreTrainedModel,
    nudging_tokenizer: PreTrainedTokenizerBase,
    prompt: str | NudgingPrompt,
    config: NudgingConfig | None,
    *,
    plain_nudger_prompt: bool,
    allow_mixed_devices: bool,
) -> Setup:
    """`prepare_many` for one question."""
    return prepare_many(
        base_model,
        base_tokenizer,
        nudging_model,
        nudging_tokenizer,
        [prompt],
        config,
        plain_nudger_prompt=plain_nudger_prompt,
        allow_mixed_devices=allow_mixed_devices,
    )[0]
