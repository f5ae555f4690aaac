"""``REPORT.md``: summary, claims, ours-vs-paper, tables, figures and a reproducibility footer."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reprokit.results._atomic import atomic_write_text
from reprokit.results._markdown import md_escape, md_table
from reprokit.results.claims import Claim, claims_markdown
from reprokit.results.manifest import Manifest
from reprokit.results.table import Table

__all__ = ["PaperComparison", "write_report"]


@dataclass(frozen=True)
class PaperComparison:
    """One of our numbers beside the paper's published one."""

    item: str
    ours: str
    paper: str
    note: str = ""


def _relative_link(target: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(Path(target).resolve(), base.resolve())).as_posix()
    except ValueError:  # different drives on Windows
        return Path(target).resolve().as_posix()


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    summary: str = "",
    tables: Sequence[Table] = (),
    claims: Sequence[Claim] = (),
    comparisons: Sequence[PaperComparison] = (),
    figures: Sequence[str | os.PathLike[str]] = (),
    manifest: Manifest | None = None,
    notes: str = "",
) -> Path:
    """Write ``REPORT.md``: summary, claims, ours-vs-paper, tables, figures and a reproducibility footer."""
    target = Path(path)
    base = target.parent
    parts = [f"# {title}"]
    if summary:
        parts.append(summary.strip())
    if claims:
        parts.append("## Claims\n\n" + claims_markdown(claims))
    if comparisons:
        rows = [[c.item, c.ours, c.paper, c.note] for c in comparisons]
        parts.append("## Ours vs paper\n\n" + md_table(["item", "ours", "paper", "note"], rows))
    if tables:
        blocks = ["## Tables"]
        for t in tables:
            block = f"### {t.name}\n\n"
            if t.caption:
                block += f"*{md_escape(t.caption)}*\n\n"
            blocks.append(block + t.to_markdown())
        parts.append("\n\n".join(blocks))
    if figures:
        links = [f"![{Path(f).stem}]({_relative_link(Path(f), base)})" for f in figures]
        parts.append("## Figures\n\n" + "\n\n".join(links))
    if notes:
        parts.append("## Notes\n\n" + notes.strip())
    if manifest is not None:
        parts.append(_footer(manifest))
    return atomic_write_text(target, "\n\n".join(parts) + "\n")


def _footer(m: Manifest) -> str:
    sha = m.git_sha[:12] if m.git_sha else "unknown"
    if m.git_dirty:
        sha += " (dirty)"
    wall = "unfinished" if m.wall_time_s is None else f"{m.wall_time_s:.1f} s"
    versions = ", ".join(f"{k} {v}" for k, v in m.packages.items() if v is not None)
    return (
        "---\n\n"
        f"Reproducibility: paper `{m.paper}`, scale `{m.scale}`, seed {m.seed}, git {sha}, "
        f"device {m.device}, wall time {wall}, started {m.started_at}. "
        f"Python {m.python} on {m.platform}. Versions: {versions}. Full details in `manifest.json`."
    )
