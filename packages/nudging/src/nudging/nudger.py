"""The public entry points: `Nudger` (models + config, reusable) and the one-call `nudge`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nudging._checks import check_pair, resolve_prompt
from nudging.config import NudgingConfig
from nudging.fast import nudge_fast
from nudging.lockstep import nudge_batch
from nudging.prompts import NudgingPrompt
from nudging.reference import nudge_reference
from nudging.result import NudgeResult

logger = logging.getLogger(__name__)

Implementation = Literal["fast", "reference"]


class Nudger:
    """A base model aligned at inference time by a small aligned (nudging) model, of any family.

    The base model gets the plain prompt, the nudging model its own chat template; they exchange text,
    so the two tokenizers may differ. `implementation="reference"` selects the slow stateless version.
    """

    def __init__(
        self,
        base_model: PreTrainedModel,
        base_tokenizer: PreTrainedTokenizerBase,
        nudging_model: PreTrainedModel,
        nudging_tokenizer: PreTrainedTokenizerBase,
        config: NudgingConfig | None = None,
        *,
        plain_nudger_prompt: bool = False,
        allow_mixed_devices: bool = False,
        implementation: Implementation = "fast",
    ) -> None:
        if implementation not in ("fast", "reference"):
            raise ValueError(f"implementation must be 'fast' or 'reference', got {implementation!r}")
        if config is not None and not isinstance(config, NudgingConfig):
            raise TypeError(f"config must be a NudgingConfig, got {type(config).__name__}")
        check_pair(
            base_model,
            base_tokenizer,
            nudging_model,
            nudging_tokenizer,
            allow_mixed_devices=allow_mixed_devices,
        )
        if not plain_nudger_prompt and getattr(nudging_tokenizer, "chat_template", None) is None:
            resolve_prompt("probe", nudging_tokenizer, plain_nudger_prompt=False)  # raises the clear error
        self.base_model, self.base_tokenizer = base_model, base_tokenizer
        self.nudging_model, self.nudging_tokenizer = nudging_model, nudging_tokenizer
        self.config = config or NudgingConfig()
        self.plain_nudger_prompt = plain_nudger_prompt
        self.allow_mixed_devices = allow_mixed_devices
        self.implementation: Implementation = implementation

    @classmethod
    def from_pretrained(
        cls,
        base: str | Path,
        nudger: str | Path,
        config: NudgingConfig | None = None,
        *,
        dtype: str = "auto",
        device: str = "auto",
        **kwargs: object,
    ) -> Nudger:
        """Load both models (hub ids or local folders; safetensors only) with `reprokit.models`."""
        from reprokit.models import load_causal_lm

        base_model, base_tok = load_causal_lm(base, dtype=dtype, device=device)
        nudge_model, nudge_tok = load_causal_lm(nudger, dtype=dtype, device=device)
        return cls(base_model, base_tok, nudge_model, nudge_tok, config, **kwargs)  # type: ignore[arg-type]

    def generate(self, prompt: str | NudgingPrompt, config: NudgingConfig | None = None) -> NudgeResult:
        """Answer one question (or a pair of ready prompts) by nudged decoding."""
        impl = nudge_fast if self.implementation == "fast" else nudge_reference
        return impl(
            self.base_model,
            self.base_tokenizer,
            self.nudging_model,
            self.nudging_tokenizer,
            prompt,
            config or self.config,
            plain_nudger_prompt=self.plain_nudger_prompt,
            allow_mixed_devices=self.allow_mixed_devices,
        )

    __call__ = generate

    def generate_batch(
        self,
        prompts: Sequence[str | NudgingPrompt],
        config: NudgingConfig | None = None,
        *,
        batch_size: int = 8,
        show_progress: bool = False,
        desc: str = "nudging",
    ) -> list[NudgeResult]:
        """Answer many questions, `batch_size` streams decoded in lock-step (`nudging.lockstep`).

        With `implementation="reference"` the streams run one after another through the stateless code.
        """
        from reprokit.progress import progress

        if isinstance(prompts, (str, NudgingPrompt)):
            raise TypeError("generate_batch takes a list of prompts; use generate() for a single one")
        items = list(prompts)
        quiet = {} if show_progress else {"disable": True}  # else reprokit decides (off in CI)
        with progress(total=len(items), desc=desc, **quiet) as bar:
            if self.implementation == "reference":
                out = []
                for p in items:
                    out.append(self.generate(p, config))
                    bar.update(1)
                return out
            return nudge_batch(
                self.base_model,
                self.base_tokenizer,
                self.nudging_model,
                self.nudging_tokenizer,
                items,
                config or self.config,
                batch_size=batch_size,
                plain_nudger_prompt=self.plain_nudger_prompt,
                allow_mixed_devices=self.allow_mixed_devices,
                on_result=lambda _i, _r: bar.update(1),
            )


def nudge(
    base_model: PreTrainedModel,
    base_tokenizer: PreTrainedTokenizerBase,
    nudging_model: PreTrainedModel,
    nudging_tokenizer: PreTrainedTokenizerBase,
    prompt: str | NudgingPrompt,
    config: NudgingConfig | None = None,
    **kwargs: object,
) -> NudgeResult:
    """One nudged answer: `Nudger(...).generate(prompt)` in one call."""
    return Nudger(base_model, base_tokenizer, nudging_model, nudging_tokenizer, config, **kwargs).generate(
        prompt
    )  # type: ignore[arg-type]
