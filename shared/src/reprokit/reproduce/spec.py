"""What a paper hands the shared runner: its config class, setup, experiments, claims and report text.

A paper package defines one `PaperSpec` (in ``<package>/reproduce.py``) and registers it under the
``reprokit.papers`` entry-point group; ``reproduce/<paper>.py`` and ``python -m reprokit.reproduce <paper>``
find it there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from reprokit.reproduce.seeds import SeedResults
    from reprokit.results import Claim, PaperComparison, ResumeStore

__all__ = ["Experiment", "PaperSpec", "Requirement", "RunContext"]

logger = logging.getLogger("reprokit.reproduce")


@dataclass(frozen=True)
class Requirement:
    """A model or data set a paper-scale run needs, looked up before any work starts."""

    kind: Literal["model", "dataset"]
    id: str
    revision: str | None = None
    why: str = ""


@dataclass
class RunContext:
    """What one seed's setup and experiments get from the runner: seed, devices, cache, resume, logging."""

    paper: str
    scale: str
    seed: int
    seed_index: int
    n_seeds: int
    cache_dir: Path
    device: str = "auto"
    dtype: str = "auto"
    resume: bool = True
    _t0: float = field(default_factory=time.time, repr=False)  # wall clock: shared by worker processes

    @property
    def label(self) -> str:
        """``nudging tiny seed 1 (2 of 3)``: prefixes every stage log line."""
        return f"{self.paper} {self.scale} seed {self.seed} ({self.seed_index + 1} of {self.n_seeds})"

    def log(self, message: str, *args: Any) -> None:
        """One stage line with the elapsed time since the run started."""
        elapsed = time.time() - self._t0
        logger.info(f"[%s | %6.1f s] {message}", self.label, elapsed, *args)

    def run_id(self, section: Any, *packages: Any) -> dict[str, Any]:
        """What every saved piece of this seed depends on besides the piece itself: the config section,
        scale, seed, device, dtype, a hash of the `packages`' sources and the torch/transformers versions."""
        import dataclasses

        import torch
        import transformers

        from reprokit.results import code_fingerprint

        return {
            "config": dataclasses.asdict(section),
            "scale": self.scale,
            "seed": self.seed,
            "device": self.device,
            "dtype": self.dtype,
            "code": code_fingerprint(*packages),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }

    def resume_store(self, *parts: str) -> ResumeStore:
        """A `ResumeStore` under the cache for this paper (``--fresh`` disables loading)."""
        from reprokit.results import ResumeStore

        return ResumeStore(self.cache_dir.joinpath("runs", self.paper, *parts), enabled=self.resume)


@dataclass(frozen=True)
class Experiment:
    """One table or figure: ``make(setup, config)`` returns a DataFrame (table) or a matplotlib figure.

    Tables are made for every seed and aggregated across seeds (``keys`` are the columns that identify a
    row; by default the non-numeric ones). Figures are drawn from the first seed's setup. Item tables
    (``kind="items"``, one row per evaluated item, e.g. for paired intervals in the claims) are made for
    every seed and reach the claims, but are only saved as ``<name>.csv`` (all seeds stacked): never
    averaged, never in REPORT.md.
    """

    name: str
    make: Callable[[Any, Any], Any]
    caption: str = ""
    kind: Literal["table", "figure", "items"] = "table"
    keys: tuple[str, ...] | None = None
    scales: tuple[str, ...] = ("tiny", "paper")

    @classmethod
    def table_from(cls, module: Any, name: str, caption: str, *keys: str) -> Experiment:
        """The table made by ``module.<name>``, its rows identified by `keys`."""
        return cls(name, getattr(module, name), caption, keys=keys)

    @classmethod
    def figure_from(cls, module: Any, name: str) -> Experiment:
        """The figure drawn by ``module.<name>``."""
        return cls(name, getattr(module, name), kind="figure")


@dataclass(frozen=True)
class PaperSpec:
    """Everything the runner needs to reproduce one paper at either scale.

    ``config_class`` is a dataclass with ``tiny`` and ``paper`` fields (each nesting the method's own
    config); each section has an ``n_seeds`` field. ``setup(section, ctx)`` builds one seed's models and
    data; ``claims(results, section)`` returns the paper's claims with intervals; ``notes`` and
    ``comparisons`` fill REPORT.md; ``requirements(section)`` lists what the paper scale must find.
    """

    name: str
    title: str
    config_class: type
    setup: Callable[[Any, RunContext], Any]
    experiments: Sequence[Experiment]
    claims: Callable[[SeedResults, Any], list[Claim]]
    summary: str = ""
    notes: Callable[[SeedResults, Any], str] | None = None
    comparisons: Callable[[SeedResults, Any], list[PaperComparison]] | None = None
    requirements: Callable[[Any], list[Requirement]] | None = None

    def experiments_for(self, scale: str) -> list[Experiment]:
        """The experiments that run at `scale`, in order."""
        return [e for e in self.experiments if scale in e.scales]
