"""What every reproduction writes: tables, claims, figures, a manifest and ``REPORT.md``, all atomically.

``RunOutput`` ties them together for a reproduce script::

    out = RunOutput("results/palimpsest/tiny", paper="palimpsest", scale="tiny", seed=0, config=cfg)
    out.table(Table.from_records("table1", rows, caption="..."))
    out.claim(Claim.check("c1", "later examples have lower loss", rho, ">", 0.0))
    out.finish(title="Palimpsest, tiny scale")
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import enum
import hashlib
import importlib.metadata
import io
import json
import logging
import math
import operator
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "TRACKED_PACKAGES",
    "Claim",
    "Manifest",
    "PaperComparison",
    "ResumeStore",
    "RunOutput",
    "Table",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "code_fingerprint",
    "hash_file",
    "new_figure",
    "save_claims",
    "save_figure",
    "to_jsonable",
    "write_report",
]

logger = logging.getLogger(__name__)

# Read the process umask once (the only portable way), so atomic writes get the usual file mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


# --------------------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    """Persist a rename on POSIX; best effort (not possible on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, ``os.replace``.

    Readers see either the old file or the complete new one; on error the temp file is removed and any
    existing file is left untouched. Parent directories are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o666 & ~_UMASK)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; when the block succeeds it becomes ``path``.

    On an error the temporary folder is removed and ``path`` is untouched. If ``path`` already exists it
    is swapped out when ``replace`` is true, and otherwise kept (a concurrent writer finished first).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not final.exists():
        tmp.rename(final)
    elif replace:
        old = final.with_name(f"{final.name}.old-{os.getpid()}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def _float_to_json(x: float) -> float | str | None:
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` to plain JSON types.

    numpy scalars/arrays, Paths, dataclasses, enums, datetimes, pandas objects and sets are converted;
    NaN becomes ``null`` and ±inf the strings ``"inf"`` / ``"-inf"``. Anything else raises ``TypeError``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _float_to_json(float(obj))
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((to_jsonable(v) for v in obj), key=repr)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, pd.Series):
        return to_jsonable(obj.to_dict())
    raise TypeError(f"cannot serialize object of type {type(obj).__name__} to JSON: {obj!r:.80}")


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Serialize ``obj`` (see :func:`to_jsonable`) and write it atomically; fails before touching the file."""
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def hash_file(path: str | os.PathLike[str]) -> str:
    """Content hash ``"sha256:<hex>"`` of a file, or of a directory's files (relative names + contents)."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(f.relative_to(p).as_posix().encode() + b"\0")
            h.update(_file_digest(f) + b"\0")
    else:
        h.update(_file_digest(p))
    return f"sha256:{h.hexdigest()}"


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


# --------------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _md_escape(text: str) -> str:
    return text.replace("|", r"\|").replace("\r", " ").replace("\n", " ")


@dataclass
class Table:
    """A named result table with a caption, exported to csv (full precision), markdown and LaTeX."""

    name: str
    frame: pd.DataFrame
    caption: str = ""
    float_format: str = "{:.4g}"

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in '/\\:*?"<>|') or self.name.startswith("."):
            raise ValueError(f"table name must be a plain file stem like 'table1', got {self.name!r}")
        if not isinstance(self.frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame, got {type(self.frame).__name__}")

    @classmethod
    def from_records(cls, name: str, records: Sequence[Mapping[str, Any]], caption: str = "") -> Table:
        """Build a table from a list of row dicts (column order from first appearance)."""
        return cls(name, pd.DataFrame.from_records(list(records)), caption)

    def _export_frame(self) -> pd.DataFrame:
        """The frame with a meaningful (named or non-range) index moved into columns."""
        idx = self.frame.index
        default = isinstance(idx, pd.RangeIndex) and idx.name is None and idx.start == 0 and idx.step == 1
        return self.frame if default else self.frame.reset_index()

    def _format_cell(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value))
        if isinstance(value, (float, np.floating)):
            return "nan" if math.isnan(value) else self.float_format.format(float(value))
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        if value is pd.NA or value is pd.NaT:
            return ""
        return str(value)

    def _string_rows(self) -> tuple[list[str], list[list[str]], list[bool]]:
        frame = self._export_frame()
        headers = [str(c) for c in frame.columns]
        rows = [[self._format_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
        numeric = [
            pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
            for c in frame.columns
        ]
        return headers, rows, numeric

    def to_csv(self) -> str:
        """CSV with full precision (the data, not the display format)."""
        return self._export_frame().to_csv(index=False, lineterminator="\n")

    def to_markdown(self) -> str:
        """GitHub markdown table (tabulate), floats shown with ``float_format``."""
        headers, rows, numeric = self._string_rows()
        frame = pd.DataFrame([[_md_escape(c) for c in r] for r in rows], columns=headers)
        if not headers:
            return ""
        colalign = tuple("right" if num else "left" for num in numeric)
        return frame.to_markdown(index=False, disable_numparse=True, colalign=colalign)

    def to_latex(self) -> str:
        """A booktabs ``table`` environment with caption and ``tab:<name>`` label; text is escaped."""
        headers, rows, numeric = self._string_rows()
        spec = "".join("r" if num else "l" for num in numeric)
        lines = [r"\begin{table}[htbp]", r"\centering"]
        if self.caption:
            lines.append(rf"\caption{{{_latex_escape(self.caption)}}}")
        label = re.sub(r"[^A-Za-z0-9_.:-]", "-", self.name)  # labels are not typeset: no escaping
        lines.append(rf"\label{{tab:{label}}}")
        lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
        lines.append(" & ".join(_latex_escape(h) for h in headers) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in rows]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"

    def save(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``<name>.csv``, ``<name>.md`` (caption above the table) and ``<name>.tex`` atomically."""
        out = Path(out_dir)
        md = self.to_markdown()
        if self.caption:
            md = f"*{_md_escape(self.caption)}*\n\n{md}"
        return {
            "csv": atomic_write_text(out / f"{self.name}.csv", self.to_csv()),
            "md": atomic_write_text(out / f"{self.name}.md", md + "\n"),
            "tex": atomic_write_text(out / f"{self.name}.tex", self.to_latex()),
        }


# --------------------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------------------

ComparisonOp = Literal["<", "<=", ">", ">=", "=="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Claim:
    """A paper claim the run can test: what was measured, what was expected, and whether it holds."""

    id: str
    statement: str
    measured: float | str | None
    expected: str
    holds: bool
    paper_value: str | None = None
    details: str = ""

    @classmethod
    def check(
        cls,
        id: str,
        statement: str,
        measured: float,
        op: ComparisonOp,
        bound: float,
        *,
        paper_value: str | None = None,
        details: str = "",
    ) -> Claim:
        """Claim that ``measured <op> bound``; a NaN (or None) measurement never holds."""
        if op not in _OPS:
            raise ValueError(f"op must be one of {tuple(_OPS)}, got {op!r}")
        value = math.nan if measured is None else float(measured)
        holds = (not math.isnan(value)) and bool(_OPS[op](value, float(bound)))
        return cls(id, statement, value, f"{op} {bound}", holds, paper_value, details)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready through :func:`atomic_write_json`)."""
        return dataclasses.asdict(self)


def save_claims(claims: Sequence[Claim], path: str | os.PathLike[str]) -> Path:
    """Write ``claims.json``: ``{"claims": [...], "n_holding": k, "n_total": n}``."""
    payload = {
        "claims": [c.to_dict() for c in claims],
        "n_holding": sum(1 for c in claims if c.holds),
        "n_total": len(claims),
    }
    return atomic_write_json(path, payload)


# --------------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------------


def new_figure(*args: Any, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots``-like ``(fig, axes)`` on an Agg canvas, without pyplot or a global backend switch.

    The figure is not registered with pyplot, so it renders headless and is freed when dropped.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig_kw = {k: kwargs.pop(k) for k in ("figsize", "dpi", "layout", "constrained_layout") if k in kwargs}
    fig = Figure(**fig_kw)
    FigureCanvasAgg(fig)
    axes: Axes | Any = fig.subplots(*args, **kwargs)
    return fig, axes


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Render ``fig`` (format from the suffix, png by default) and write it atomically; closes the figure."""
    target = Path(path)
    if not target.suffix:
        target = target.with_suffix(".png")
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=target.suffix.lstrip(".").lower(), dpi=dpi, bbox_inches="tight")
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close(fig)
    return atomic_write_bytes(target, buf.getvalue())


# --------------------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------------------

TRACKED_PACKAGES: tuple[str, ...] = (
    "reprokit",
    "nudging",
    "palimpsest",
    "selective-amnesia",
    "efficientllm",
    "torch",
    "transformers",
    "datasets",
    "peft",
    "scipy",
    "statsmodels",
    "numpy",
    "pandas",
)


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(args: list[str], cwd: Path) -> str | None:
    """Output of a read-only git command, or None if git is missing or this is not a repository."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, env=env, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("git %s failed: %s", " ".join(args), exc)
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout


def _git_state(cwd: Path) -> tuple[str | None, bool | None]:
    """HEAD's sha and whether the code differs from it (changes under results/, our outputs, don't count)."""
    sha = _git(["rev-parse", "HEAD"], cwd)
    if sha is None:
        return None, None
    top = _git(["rev-parse", "--show-toplevel"], cwd)
    pathspec = [] if top is None else ["--", top.strip(), f":(exclude){top.strip()}/results"]
    status = _git(["--no-optional-locks", "status", "--porcelain", *pathspec], cwd)
    return sha.strip() or None, None if status is None else bool(status.strip())


def code_fingerprint(*packages: Any) -> str:
    """A hash of the Python sources of the given imported packages: put it in a `ResumeStore` piece's
    description so that saved pieces go stale when the code that computed them changes."""
    sha = hashlib.sha256()
    for package in packages:
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            sha.update(path.relative_to(root).as_posix().encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


class ResumeStore:
    """Finished pieces of a long run, each saved atomically as it completes, so a rerun resumes.

    A piece is described by a JSON-able dict (the config, the model, the task, the code's
    `code_fingerprint`, library versions, ...); its value is saved under a hash of that description and
    loaded back only if the saved description is identical. With
    `enabled=False` (e.g. a `--fresh` flag) nothing is loaded, but pieces are still saved. A piece that
    cannot be saved (an unwritable folder) is logged and the run goes on.
    """

    def __init__(self, root: str | os.PathLike[str], *, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self.loaded = 0
        self.computed = 0

    def path(self, parts: Mapping[str, Any]) -> Path:
        """Where the piece described by `parts` is saved."""
        return self._path(to_jsonable(dict(parts)))

    def _path(self, described: Any) -> Path:
        text = json.dumps(described, sort_keys=True, allow_nan=False)
        return self.root / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"

    def fetch_or_run(
        self,
        parts: Mapping[str, Any],
        compute: Callable[[], Any],
        *,
        encode: Callable[[Any], Any] = to_jsonable,
        decode: Callable[[Any], Any] = lambda value: value,
    ) -> Any:
        """The saved value of this piece if there is one, else `compute()` (then saved)."""
        described = to_jsonable(dict(parts))
        path = self._path(described)
        if self.enabled and path.is_file():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                if saved.get("parts") == described:
                    self.loaded += 1
                    logger.info("resumed a finished piece from %s", path)
                    return decode(saved["value"])
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
                logger.warning("ignoring unreadable saved piece %s (%s); computing it again", path, err)
        value = compute()
        self.computed += 1
        try:
            atomic_write_json(path, {"parts": described, "value": encode(value)}, indent=None)
        except (OSError, ValueError, TypeError) as err:
            logger.warning("could not save a finished piece to %s (%s); the run goes on", path, err)
        return value


def _config_dict(config: Any) -> dict[str, Any]:
    """A config as a plain dict: mappings as they are, (frozen) dataclass configs field by field."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return to_jsonable(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"config must be a mapping or a dataclass instance, got {type(config).__name__}")


@dataclass
class Manifest:
    """Everything needed to say how a result was produced: config, seed, versions, git state, timings."""

    paper: str
    scale: str
    seed: int
    config: dict[str, Any]
    started_at: str
    wall_time_s: float | None
    git_sha: str | None
    git_dirty: bool | None
    python: str
    platform: str
    device: str
    packages: dict[str, str | None]
    inputs: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._t0 = time.perf_counter()

    @classmethod
    def collect(
        cls,
        *,
        paper: str,
        scale: str,
        seed: int,
        config: Mapping[str, Any] | Any,
        device: str = "cpu",
        inputs: Mapping[str, str | os.PathLike[str]] | None = None,
        repo_dir: str | os.PathLike[str] | None = None,
    ) -> Manifest:
        """Collect the environment now; the wall clock starts here.

        ``config`` is a mapping or a dataclass instance (stored as a dict). ``inputs`` maps a name to a
        content hash (str, kept as is) or to a file/directory path (PathLike, hashed with
        :func:`hash_file`). Git state is read from ``repo_dir`` (default: cwd); outside a repository (or
        without git) ``git_sha`` and ``git_dirty`` are None.
        """
        sha, dirty = _git_state(Path.cwd() if repo_dir is None else Path(repo_dir))
        hashed = {
            name: (value if isinstance(value, str) else hash_file(value))
            for name, value in (inputs or {}).items()
        }
        return cls(
            paper=paper,
            scale=scale,
            seed=int(seed),
            config=_config_dict(config),
            started_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            wall_time_s=None,
            git_sha=sha,
            git_dirty=dirty,
            python=platform.python_version(),
            platform=platform.platform(),
            device=str(device),
            packages={name: _package_version(name) for name in TRACKED_PACKAGES},
            inputs=hashed,
        )

    @contextlib.contextmanager
    def time(self, name: str) -> Iterator[None]:
        """Time a block; seconds are added to ``timings[name]`` (accumulates if the name repeats)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + (time.perf_counter() - start)

    def finish(self) -> None:
        """Record the wall time since :meth:`collect` (or construction)."""
        self.wall_time_s = time.perf_counter() - self._t0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the manifest as JSON atomically."""
        return atomic_write_json(path, self.to_dict())


# --------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperComparison:
    """One of our numbers beside the paper's published one."""

    item: str
    ours: str
    paper: str
    note: str = ""


def _fmt_measured(value: float | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        v = float(value)
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(value)


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _relative_link(target: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(Path(target).resolve(), base.resolve())).as_posix()
    except ValueError:  # different drives on Windows
        return Path(target).resolve().as_posix()


def claims_markdown(claims: Sequence[Claim]) -> str:
    """ "k of n claims hold." and a markdown table of the claims (id, statement, measured, expected, ...)."""
    n_hold = sum(1 for c in claims if c.holds)
    rows = [
        [
            c.id,
            c.statement,
            _fmt_measured(c.measured),
            c.expected,
            c.paper_value or "—",
            "✅" if c.holds else "❌",
        ]
        for c in claims
    ]
    header = ["id", "statement", "measured", "expected", "paper", "holds"]
    return f"{n_hold} of {len(claims)} claims hold.\n\n" + _md_table(header, rows)


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
        parts.append("## Ours vs paper\n\n" + _md_table(["item", "ours", "paper", "note"], rows))
    if tables:
        blocks = ["## Tables"]
        for t in tables:
            block = f"### {t.name}\n\n"
            if t.caption:
                block += f"*{_md_escape(t.caption)}*\n\n"
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
