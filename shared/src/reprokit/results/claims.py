"""`Claim`: one statement of the paper tested by a run, with its point and whole-interval verdicts.

A claim records the measured value, its 95% interval (and how it was computed), the bound, the paper's
own number and where the paper states it. A *sanity check* (``sanity=True``: a calibration or validity check
of the method, not a finding of the paper) is recorded and shown apart and never counted among the claims.
It holds on the point estimate when the measured value passes the bound, and on the whole interval when
every value in the interval does: for ``>`` / ``>=`` the low end, for ``<`` / ``<=`` the high end.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from reprokit.results._atomic import atomic_write_json
from reprokit.results._markdown import fmt_value, md_table

__all__ = ["Claim", "ComparisonOp", "claims_markdown", "paper_claims", "save_claims"]

ComparisonOp = Literal["<", "<=", ">", ">=", "=="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S+")
# A file path: absolute or home-relative, or relative with a file extension (``papers/x.md``, ``../a.pdf``).
_PATH = re.compile(
    r"(?:^|[\s(\[`'\"])(?:"
    r"(?:~/|/)[\w.-]+(?:/[\w.-]*)*"
    r"|(?:\.{1,2}/)?(?:[\w.-]+/)+[\w.-]*\.[A-Za-z][A-Za-z0-9]{0,4}\b"
    r")"
)


class _Interval(Protocol):
    low: float
    high: float


def _cited_path(text: str) -> str | None:
    """The first file path in ``text`` (URLs are fine), or None."""
    match = _PATH.search(_URL.sub(" ", text))
    return None if match is None else match.group().strip(" ([`'\"")


def _interval_verdict(op: str, bound: float, interval: tuple[float, float] | None) -> bool | None:
    """Whether every value of ``interval`` passes ``<op> bound``; None without an interval."""
    if interval is None:
        return None
    low, high = interval
    if math.isnan(low) or math.isnan(high):
        return False  # an interval that could not be estimated (e.g. one seed) establishes nothing
    if op in (">", ">="):
        return bool(_OPS[op](low, bound))
    if op in ("<", "<="):
        return bool(_OPS[op](high, bound))
    return low == bound == high


@dataclass(frozen=True)
class Claim:
    """A paper claim the run can test: what was measured (with its interval), what was expected, and
    whether it holds on the point estimate (``holds``) and on the whole interval (``holds_interval``).

    ``paper_value`` is the paper's number and ``source`` where the paper states it (section, table or
    figure); neither may cite a file path. ``per_seed`` holds one value per seed at tiny scale and
    ``method`` says how the interval was computed ("exact binomial", "paired bootstrap", "t over seeds").
    ``sanity`` marks a check of the method's validity (e.g. calibration under the null) rather than a claim
    of the paper: reports list it under "Sanity checks" and the claim counts leave it out.
    """

    id: str
    statement: str
    measured: float | str | None
    expected: str
    holds: bool
    paper_value: str | None = None
    details: str = ""
    _: KW_ONLY
    interval: tuple[float, float] | None = None
    holds_interval: bool | None = None
    source: str = ""
    per_seed: tuple[float, ...] | None = None
    method: str = ""
    sanity: bool = False

    def __post_init__(self) -> None:
        for name in ("paper_value", "source"):
            path = _cited_path(getattr(self, name) or "")
            if path is not None:
                raise ValueError(
                    f"claim {self.id!r}: {name} cites the file {path!r}; cite the paper itself (section, "
                    "table or figure, e.g. 'Table 2'), never a file, which a clone of the repository may lack"
                )
        if self.interval is not None:
            low, high = (float(v) for v in self.interval)
            if low > high:
                raise ValueError(f"claim {self.id!r}: interval low {low} is above high {high}")
            object.__setattr__(self, "interval", (low, high))
        if self.per_seed is not None:
            object.__setattr__(self, "per_seed", tuple(float(v) for v in self.per_seed))

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
        interval: tuple[float, float] | _Interval | None = None,
        source: str = "",
        per_seed: Sequence[float] | None = None,
        method: str = "",
        sanity: bool = False,
    ) -> Claim:
        """Claim that ``measured <op> bound``; a NaN (or None) measurement never holds.

        ``interval`` is ``(low, high)`` or a `reprokit.stats.ConfidenceInterval` (whose ``method`` is
        used when ``method`` is not given); ``holds_interval`` is then judged on its low end for ``>`` /
        ``>=``, its high end for ``<`` / ``<=``, and both ends for ``==``. An interval with a NaN end
        (one seed) never holds.
        """
        if op not in _OPS:
            raise ValueError(f"op must be one of {tuple(_OPS)}, got {op!r}")
        value = math.nan if measured is None else float(measured)
        holds = (not math.isnan(value)) and bool(_OPS[op](value, float(bound)))
        bounds = None
        if interval is not None:
            if hasattr(interval, "low") and hasattr(interval, "high"):
                method = method or str(getattr(interval, "method", ""))
                bounds = (float(interval.low), float(interval.high))
            else:
                low, high = interval  # type: ignore[misc]
                bounds = (float(low), float(high))
        return cls(
            id,
            statement,
            value,
            f"{op} {bound}",
            holds,
            paper_value,
            details,
            interval=bounds,
            holds_interval=_interval_verdict(op, float(bound), bounds),
            source=source,
            per_seed=None if per_seed is None else tuple(per_seed),
            method=method,
            sanity=sanity,
        )

    @classmethod
    def across_seeds(
        cls,
        id: str,
        statement: str,
        per_seed: Sequence[float],
        op: ComparisonOp,
        bound: float,
        *,
        paper_value: str | None = None,
        details: str = "",
        source: str = "",
        sanity: bool = False,
    ) -> Claim:
        """Claim on a value measured once per independent seed: the mean, judged with its Student-t 95%
        interval across seeds (`reprokit.stats.seed_interval`; one seed gives no interval verdict)."""
        from reprokit.stats import seed_interval

        ci = seed_interval(per_seed)
        return cls.check(
            id,
            statement,
            ci.estimate,
            op,
            bound,
            paper_value=paper_value,
            details=details,
            interval=ci,
            source=source,
            per_seed=per_seed,
            sanity=sanity,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready through :func:`atomic_write_json`)."""
        return dataclasses.asdict(self)


def paper_claims(claims: Sequence[Claim]) -> list[Claim]:
    """The claims of the paper among `claims` (sanity checks left out): what the claim counts count."""
    return [c for c in claims if not c.sanity]


def save_claims(claims: Sequence[Claim], path: str | os.PathLike[str]) -> Path:
    """Write ``claims.json``: ``{"claims": [...], "n_holding": k, "n_holding_interval": m, "n_total": n,
    "n_sanity": s, "n_sanity_holding": h}``; the counts ``n_*`` leave the sanity checks out."""
    paper = paper_claims(claims)
    sanity = [c for c in claims if c.sanity]
    payload = {
        "claims": [c.to_dict() for c in claims],
        "n_holding": sum(1 for c in paper if c.holds),
        "n_holding_interval": sum(1 for c in paper if c.holds_interval),
        "n_total": len(paper),
        "n_sanity": len(sanity),
        "n_sanity_holding": sum(1 for c in sanity if c.holds),
    }
    return atomic_write_json(path, payload)


def _verdict(value: bool | None) -> str:
    return "—" if value is None else ("✅" if value else "❌")


def _measured_cell(claim: Claim) -> str:
    text = fmt_value(claim.measured)
    if claim.per_seed:
        text += f" (per seed: {', '.join(fmt_value(v) for v in claim.per_seed)})"
    return text


def _interval_cell(claim: Claim) -> str:
    if claim.interval is None:
        return "—"
    low, high = claim.interval
    text = f"[{fmt_value(low)}, {fmt_value(high)}]"
    return f"{text} ({claim.method})" if claim.method else text


def _paper_cell(claim: Claim) -> str:
    value = claim.paper_value or "—"
    return f"{value} ({claim.source})" if claim.source else value


def claims_markdown(claims: Sequence[Claim]) -> str:
    """A verdict line ("k of n claims hold on the point estimate; m of n on the whole interval.") and a
    markdown table: measured (per seed), 95% interval, bound, the paper's value and source, two verdicts.
    Sanity checks follow in a table of their own, outside the counts."""
    paper = paper_claims(claims)
    sanity = [c for c in claims if c.sanity]
    text = _claims_table(paper, "claims")
    if sanity:
        text += (
            "\n\n**Sanity checks** (validity checks of the method, not claims of the paper; not counted "
            "above):\n\n" + _claims_table(sanity, "sanity checks")
        )
    return text


def _claims_table(claims: Sequence[Claim], noun: str) -> str:
    n = len(claims)
    n_point = sum(1 for c in claims if c.holds)
    n_interval = sum(1 for c in claims if c.holds_interval)
    header = ["id", "statement", "measured", "95% interval", "expected", "paper"]
    header += ["point holds", "interval holds"]
    rows = [
        [
            c.id,
            c.statement,
            _measured_cell(c),
            _interval_cell(c),
            c.expected,
            _paper_cell(c),
            _verdict(c.holds),
            _verdict(c.holds_interval),
        ]
        for c in claims
    ]
    line = f"{n_point} of {n} {noun} hold on the point estimate; {n_interval} of {n} on the whole interval."
    return f"{line}\n\n" + md_table(header, rows)
