"""What every reproduction writes: tables, claims, figures, a manifest and ``REPORT.md``, all atomically.

``RunOutput`` ties them together for a reproduce script::

    out = RunOutput("results/palimpsest/tiny", paper="palimpsest", scale="tiny", seed=0, config=cfg)
    out.table(Table.from_records("table1", rows, caption="..."))
    out.claim(Claim.check("c1", "later examples have lower loss", rho, ">", 0.0, interval=ci))
    out.finish(title="Palimpsest, tiny scale")

Modules: `_atomic` (atomic writes, JSON, hashes), `table`, `claims`, `figures`, `manifest`, `report`,
`resume` (resumable runs) and `run_output`; every public name is importable from here.
"""

from reprokit.results._atomic import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    hash_file,
    to_jsonable,
)
from reprokit.results.claims import Claim, ComparisonOp, claims_markdown, paper_claims, save_claims
from reprokit.results.figures import new_figure, save_figure
from reprokit.results.manifest import TRACKED_PACKAGES, Manifest, tracked_packages
from reprokit.results.report import PaperComparison, write_report
from reprokit.results.resume import ResumeStore, code_fingerprint
from reprokit.results.run_output import RunOutput
from reprokit.results.table import Table

__all__ = [
    "TRACKED_PACKAGES",
    "Claim",
    "ComparisonOp",
    "Manifest",
    "PaperComparison",
    "ResumeStore",
    "RunOutput",
    "Table",
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "claims_markdown",
    "code_fingerprint",
    "hash_file",
    "new_figure",
    "paper_claims",
    "save_claims",
    "save_figure",
    "to_jsonable",
    "tracked_packages",
    "write_report",
]
