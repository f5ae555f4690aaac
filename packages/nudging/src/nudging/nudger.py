"""The public entry points: `Nudger` (models + config, reusable) and the one-call `nudge`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from nudging._checks import Setup, check_pair, make_setups, resolve_prompt
from nudging.config import NudgingConfig
from nudging.fast import run_stream
from nudging.lockstep import check_batch_args, run_lockstep
from nudging.prompts import NudgingPrompt
from nudging.reference import run_reference
from nudging.result import NudgeResult
from reprokit.lm import LanguageModel

logger = logging.getLogger(__name__)

Implementation = Literal["fast", "reference"]


class Nudger:
    """A base model aligned at inference time by a small aligned (nudging) model, of any family.

    `base` and `nudger` are `reprokit.lm.LanguageModel` handles (`load_lm(path)`, or
    `LanguageModel(model, tokenizer)` for models in memory). The base model gets the plain prompt, the
    nudging model its own chat template; they exchange text, so the two tokenizers may differ.
    `implementation="reference"` selects the slow stateless version.
    """

    def __init__(
        self,
        base: LanguageModel,
        nudger: LanguageModel,
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
        check_pair(base, nudger, allow_mixed_devices=allow_mixed_devices)
        if not plain_nudger_prompt and nudger.chat_template is None:
            resolve_prompt("probe", nudger.tokenizer, plain_nudger_prompt=False)  # raises the clear error
        self.base, self.nudger = base, nudger
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
        device_map: str | dict[str, Any] | None = None,
        **kwargs: object,
    ) -> Nudger:
        """Load both models (hub ids or local folders; safetensors only) with `reprokit.lm.load_lm`.

        `device_map="auto"` spreads each model over every visible GPU (a 70B base model does not fit on
        one); the models then sit on different devices, which is allowed since they only exchange text.
        """
        from reprokit.lm import load_lm

        base_lm = load_lm(base, dtype=dtype, device=device, device_map=device_map)
        nudging_lm = load_lm(nudger, dtype=dtype, device=device, device_map=device_map)
        if device_map is not None:
            kwargs.setdefault("allow_mixed_devices", True)
        return cls(base_lm, nudging_lm, config, **kwargs)  # type: ignore[arg-type]

    def generate(self, prompt: str | NudgingPrompt, config: NudgingConfig | None = None) -> NudgeResult:
        """Answer one question (or a pair of ready prompts) by nudged decoding."""
        (setup,) = self._setups([prompt], config)
        run = run_stream if self.implementation == "fast" else run_reference
        return run(setup, self.base, self.nudger)

    __call__ = generate

    def _setups(self, prompts: Sequence[str | NudgingPrompt], config: NudgingConfig | None) -> list[Setup]:
        """Checked set-ups of `prompts` (the models were checked once, in `__init__`)."""
        if config is not None and not isinstance(config, NudgingConfig):
            raise TypeError(f"config must be a NudgingConfig, got {type(config).__name__}")
        return make_setups(
            self.base,
            self.nudger,
            prompts,
            config or self.config,
            plain_nudger_prompt=self.plain_nudger_prompt,
        )

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
        check_batch_args(batch_size, None)
        setups = self._setups(list(prompts), config)  # every prompt is checked before decoding starts
        models = (self.base, self.nudger)
        quiet = {} if show_progress else {"disable": True}  # else reprokit decides (off in CI)
        with progress(total=len(setups), desc=desc, **quiet) as bar:
            if self.implementation == "reference":
                out = []
                for setup in setups:
                    out.append(run_reference(setup, *models))
                    bar.update(1)
                return out
            return run_lockstep(
                setups, *models, batch_size=batch_size, on_result=lambda _i, _r: bar.update(1)
            )


def nudge(
    base: LanguageModel,
    nudger: LanguageModel,
    prompt: str | NudgingPrompt,
    config: NudgingConfig | None = None,
    **kwargs: object,
) -> NudgeResult:
    """One nudged answer: `Nudger(base, nudger, config).generate(prompt)` in one call."""
    return Nudger(base, nudger, config, **kwargs).generate(prompt)  # type: ignore[arg-type]
