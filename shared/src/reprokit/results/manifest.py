"""`Manifest`: how a result was produced (config, seed, library versions, git state, timings)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import importlib.metadata
import logging
import os
import platform
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprokit.results._atomic import atomic_write_json, hash_file, to_jsonable

__all__ = ["TRACKED_PACKAGES", "Manifest", "tracked_packages"]

logger = logging.getLogger(__name__)

#: reprokit and the libraries whose versions can change a result; the paper packages built on reprokit
#: are found at run time (`tracked_packages`), so this list never has to name them.
TRACKED_PACKAGES: tuple[str, ...] = (
    "reprokit",
    "torch",
    "transformers",
    "datasets",
    "peft",
    "scipy",
    "statsmodels",
    "numpy",
    "pandas",
)

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _canonical(name: str) -> str:
    """PEP 503 normalized distribution name: ``Selective_Amnesia`` -> ``selective-amnesia``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _dependents(of: str = "reprokit") -> list[str]:
    """Installed distributions that require ``of`` (the paper packages), sorted by name."""
    found: set[str] = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name or _canonical(name) == of:
            continue
        for requirement in dist.requires or ():
            match = _NAME.match(requirement.strip())
            if match and _canonical(match.group()) == of:
                found.add(_canonical(name))
                break
    return sorted(found)


def tracked_packages() -> tuple[str, ...]:
    """The distributions whose versions a manifest records: reprokit, every installed distribution that
    depends on it, then the libraries of `TRACKED_PACKAGES`."""
    return (TRACKED_PACKAGES[0], *_dependents(TRACKED_PACKAGES[0]), *TRACKED_PACKAGES[1:])


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
            packages={name: _package_version(name) for name in tracked_packages()},
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
