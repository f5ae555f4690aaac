"""Input validation and set-up shared by every implementation: prompts, models, devices, EOS ids.

A (base, nudging) model pair is checked once, where it enters: by `Nudger` at construction, or by
`check_and_prepare` in the one-call functions. The drivers behind them take checked `Setup`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from nudging.config import NudgingConfig
from nudging.prompts import NudgingPrompt, build_prompts
from reprokit.lm import LanguageModel, input_device, require_lm


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


def check_pair(base: LanguageModel, nudger: LanguageModel, *, allow_mixed_devices: bool = False) -> None:
    """Raise a clear error for arguments that are not model handles, unloaded models, or models on
    different devices."""
    for role, lm in (("base", base), ("nudging", nudger)):
        require_lm(lm, f"the {role} model")
        if input_device(lm.model).type == "meta":
            raise ValueError(
                f"the {role} model's weights are on the 'meta' device (not loaded); load it with real "
                "weights (e.g. reprokit.lm.load_lm) before nudging."
            )
    base_dev, nudge_dev = input_device(base.model), input_device(nudger.model)
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


def make_setups(
    base: LanguageModel,
    nudger: LanguageModel,
    prompts: Sequence[str | NudgingPrompt],
    config: NudgingConfig | None,
    *,
    plain_nudger_prompt: bool,
) -> list[Setup]:
    """Check every prompt and resolve config, prompts, EOS ids and sampling generators (the pair itself
    was checked where it entered: `check_and_prepare`, or `Nudger` once at construction).

    Each question gets its own generator seeded with `config.seed`, so a batch samples exactly what the
    questions would sample one by one.
    """
    config = config or NudgingConfig()
    base_eos, nudge_eos = base.eos_ids, nudger.eos_ids
    return [
        Setup(
            config=config,
            prompts=resolve_prompt(prompt, nudger.tokenizer, plain_nudger_prompt=plain_nudger_prompt),
            base_eos=base_eos,
            nudge_eos=nudge_eos,
            generator=torch.Generator().manual_seed(config.seed) if config.do_sample else None,
        )
        for prompt in prompts
    ]


def check_and_prepare(
    base: LanguageModel,
    nudger: LanguageModel,
    prompts: Sequence[str | NudgingPrompt],
    config: NudgingConfig | None,
    *,
    plain_nudger_prompt: bool,
    allow_mixed_devices: bool,
) -> list[Setup]:
    """Where a pair enters through a function (`nudge_fast`, `nudge_reference`, `nudge_batch`): check the
    pair once, then every prompt (`make_setups`), before any decoding starts."""
    check_pair(base, nudger, allow_mixed_devices=allow_mixed_devices)
    return make_setups(
        base,
        nudger,
        prompts,
        config,
        plain_nudger_prompt=plain_nudger_prompt,
    )
