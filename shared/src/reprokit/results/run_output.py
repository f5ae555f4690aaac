"""`RunOutput`: the output folder of one reproduce run, which ties tables, figures, claims and the report.

out = RunOutput("results/palimpsest/tiny", paper="palimpsest", scale="tiny", seed=0, config=cfg)
out.table(Table.from_records("table1", rows, caption="..."))
out.claim(Claim.check("c1", "later examples have lower loss", rho, ">", 0.0, interval=ci))
out.finish(title="Palimpsest, tiny scale")
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprokit.results._atomic import atomic_write_text
from reprokit.results.claims import Claim, claims_markdown, save_claims
from reprokit.results.figures import save_figure
from reprokit.results.manifest import Manifest
from reprokit.results.report import PaperComparison, write_report
from reprokit.results.table import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RunOutput"]

logger = logging.getLogger(__name__)


class RunOutput:
    """The output directory of one reproduce run: collects tables, figures, claims, comparisons, timings."""

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        paper: str,
        scale: str,
        seed: int,
        config: Mapping[str, Any] | Any,
        device: str = "cpu",
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest.collect(paper=paper, scale=scale, seed=seed, config=config, device=device)
        self.tables: list[Table] = []
        self.figures: list[Path] = []
        self.claims: list[Claim] = []
        self.comparisons: list[PaperComparison] = []

    def table(self, table: Table) -> Table:
        """Save a table now (csv, md, tex) and include it in the report."""
        if any(t.name == table.name for t in self.tables):
            raise ValueError(f"a table named {table.name!r} was already saved in this run")
        table.save(self.out_dir)
        self.tables.append(table)
        return table

    def figure(self, fig: Figure, name: str, *, dpi: int = 120) -> Path:
        """Save a figure as ``<name>.png`` (or the given suffix) in the output dir; closes it."""
        path = save_figure(fig, self.out_dir / name, dpi=dpi)
        self.figures.append(path)
        return path

    def claim(self, claim: Claim) -> Claim:
        """Record a claim for ``claims.json`` and the report; ids must be unique."""
        if any(c.id == claim.id for c in self.claims):
            raise ValueError(f"claim id {claim.id!r} is already used in this run")
        self.claims.append(claim)
        return claim

    def compare(self, item: str, ours: str, paper: str, note: str = "") -> PaperComparison:
        """Put one of our numbers beside the paper's in the report."""
        comparison = PaperComparison(item, str(ours), str(paper), note)
        self.comparisons.append(comparison)
        return comparison

    def time(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Shortcut for ``manifest.time(name)``."""
        return self.manifest.time(name)

    def finish(self, *, title: str, summary: str = "", notes: str = "") -> Path:
        """Write claims.json and claims.md, manifest.json and REPORT.md; return the output directory."""
        self.manifest.finish()
        save_claims(self.claims, self.out_dir / "claims.json")
        if self.claims:
            atomic_write_text(self.out_dir / "claims.md", claims_markdown(self.claims) + "\n")
        self.manifest.save(self.out_dir / "manifest.json")
        write_report(
            self.out_dir / "REPORT.md",
            title=title,
            summary=summary,
            tables=self.tables,
            claims=self.claims,
            comparisons=self.comparisons,
            figures=self.figures,
            manifest=self.manifest,
            notes=notes,
        )
        logger.info("wrote %s (%d claims, %d tables)", self.out_dir, len(self.claims), len(self.tables))
        return self.out_dir
