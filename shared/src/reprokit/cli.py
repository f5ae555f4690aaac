"""Command-line plumbing: `run_cli` (user errors as one line, exit 2), the flags every reproduce script
shares, argparse types, output-path checks and finding the TOML config of a scale.

Nothing here imports torch, so a command's `--help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprokit.errors import ConfigError, OutputPathError, UserError

__all__ = [
    "DEBUG_ENV",
    "DEVICE_PATTERN",
    "DTYPES",
    "SCALES",
    "CommonArgs",
    "ConfigFileNotFoundError",
    "add_common_args",
    "add_debug_flag",
    "check_output_path",
    "default_config_path",
    "device_arg",
    "error_summary",
    "find_repo_root",
    "load_toml_config",
    "non_negative_int",
    "parse_common",
    "positive_int",
    "resolve_cache_dir",
    "run_cli",
]

DEBUG_ENV = "REPROKIT_DEBUG"
"""Set to 1 to show the traceback of a user error, like ``--debug``."""


class ConfigFileNotFoundError(ConfigError, FileNotFoundError):
    """A config file named on the command line (or the default of a scale) does not exist."""


# ------------------------------------------------------------------------------------------ run_cli
def _pop_debug(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """Remove ``--debug`` (before a ``--`` separator) from argv; return whether it was there."""
    args = list(argv)
    end = args.index("--") if "--" in args else len(args)
    debug = "--debug" in args[:end]
    return debug, [a for i, a in enumerate(args) if not (i < end and a == "--debug")]


def error_summary(err: BaseException) -> str:
    """The first line of an exception's message (its type name if empty), to quote inside our own message."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _one_line(err: BaseException) -> str:
    """The error message on one line (continuation lines joined with spaces)."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text or type(err).__name__


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """Document ``--debug`` in ``--help`` (`run_cli` handles the flag before the parser sees it)."""
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of an error (also: {DEBUG_ENV}=1)",
    )


def run_cli(
    main: Callable[[list[str]], int | None],
    argv: Sequence[str] | None = None,
    *,
    prog: str,
) -> int:
    """Run a command line's ``main(argv)`` and return its exit status.

    A `reprokit.errors.UserError` (bad input a person can fix) prints one line ``<prog>: error: <message>``
    on stderr and returns 2; Ctrl-C prints one line and returns 130. ``--debug`` anywhere in ``argv``
    (it is removed before ``main`` sees it) or ``REPROKIT_DEBUG=1`` also prints the traceback. Any other
    exception is a bug and propagates with its traceback; argparse's own exits (``--help``, a bad flag)
    pass through unchanged. ``argv`` defaults to ``sys.argv[1:]``.
    """
    debug, args = _pop_debug(sys.argv[1:] if argv is None else argv)
    debug = debug or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")
    try:
        code = main(args)
    except UserError as err:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)


SCALES = ("tiny", "paper")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class CommonArgs:
    """Parsed shared flags; ``out``, ``cache_dir`` and ``config`` are resolved paths."""

    scale: str
    out: Path
    seed: int
    device: str
    dtype: str
    cache_dir: Path | None
    config: Path | None
    smoke: bool
    threads: int | None = None
    fresh: bool = False


def device_arg(value: str) -> str:
    """argparse type: auto, cpu, cuda, cuda:N or mps (whether it is available is checked when used)."""
    if not DEVICE_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f"invalid device {value!r}: use auto, cpu, cuda, cuda:N or mps")
    return value


def _int_at_least(value: str, low: int, what: str) -> int:
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be {kind}, got {value!r}") from None
    if number < low:
        raise argparse.ArgumentTypeError(f"{what} must be {kind}, got {value!r}")
    return number


def positive_int(value: str) -> int:
    """argparse type: an integer >= 1, so a bad count fails at parse time, before any model loads."""
    return _int_at_least(value, 1, "the value")


def non_negative_int(value: str) -> int:
    """argparse type: an integer >= 0 (a count where 0 means "none")."""
    return _int_at_least(value, 0, "the value")


def _seed(value: str) -> int:
    return _int_at_least(value, 0, "seed")


def add_common_args(parser: argparse.ArgumentParser, *, paper: str, resumable: bool = False) -> None:
    """Add ``--scale --out --seed --device --dtype --cache-dir --config --smoke --threads`` to ``parser``,
    and ``--fresh`` for a reproduction that resumes finished pieces (``resumable=True``)."""
    group = parser.add_argument_group("common reproduction options")
    group.add_argument("--scale", choices=SCALES, default="tiny", help="experiment scale (default: tiny)")
    group.add_argument(
        "--out", type=Path, default=None, help=f"output directory (default: results/{paper}/<scale>)"
    )
    group.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    group.add_argument(
        "--device", type=device_arg, default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)"
    )
    group.add_argument("--dtype", choices=DTYPES, default="auto", help="model dtype (default: auto)")
    group.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="model/data cache (default: $REPROKIT_CACHE or ~/.cache/reprokit)",
    )
    group.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"TOML config overriding reproduce/configs/{paper}/<scale>.toml",
    )
    group.add_argument("--smoke", action="store_true", help="tiny sizes, for tests only")
    if resumable:
        group.add_argument(
            "--fresh",
            action="store_true",
            help="recompute every piece instead of resuming the finished pieces an earlier run saved",
        )
    group.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: 1 at the tiny scale, robust on a busy machine; torch's own "
        "default at the paper scale)",
    )
    parser.set_defaults(_reprokit_paper=paper)


def parse_common(args: argparse.Namespace, *, paper: str) -> CommonArgs:
    """Resolve the shared flags: default ``out``, cache dir, and the config path of the scale.

    ``config`` is the ``--config`` path (must exist), else the repository's default config of the scale if
    it exists, else None.
    """
    scale = args.scale
    out = args.out if args.out is not None else Path("results") / paper / scale
    if args.config is not None:
        config: Path | None = Path(args.config).expanduser()
        if not config.is_file():
            raise ConfigFileNotFoundError(f"--config {config}: no such file; pass an existing TOML file")
    else:
        try:
            candidate = default_config_path(paper, scale)
        except FileNotFoundError:
            candidate = None
        config = candidate if candidate is not None and candidate.is_file() else None
    return CommonArgs(
        scale=scale,
        out=Path(out).expanduser(),
        seed=int(args.seed),
        device=args.device,
        dtype=args.dtype,
        cache_dir=resolve_cache_dir(args.cache_dir),
        config=config,
        smoke=bool(args.smoke),
        fresh=bool(getattr(args, "fresh", False)),
        threads=getattr(args, "threads", None),
    )


def load_toml_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file into a dict, with an error that names the file."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigFileNotFoundError(f"config file {p} not found; pass --config PATH or create it") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {p} is a folder; pass --config PATH of a .toml file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p} is not UTF-8 text ({exc.reason}); pass a TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}; fix the line it names") from exc


def check_output_path(path: str | os.PathLike[str], *, option: str = "--out", folder: bool = False) -> Path:
    """Raise `OutputPathError` unless ``path`` can be written (a file, or a folder if ``folder``).

    Called before any work, so a bad ``--out`` fails in a second and nothing is written: the first
    existing ancestor must be a writable folder (missing folders are created only when writing).
    Returns the path, user-expanded and absolute.
    """
    target = Path(path).expanduser().absolute()
    if target.exists():
        if folder and not target.is_dir():
            raise OutputPathError(f"{option} {path}: exists and is not a folder; pass a folder path.")
        if not folder and target.is_dir():
            raise OutputPathError(
                f"{option} {path}: is a folder; pass a file path such as {Path(path) / 'result.json'}."
            )
    existing = next((p for p in (target, *target.parents) if p.exists()), Path(target.anchor))
    if existing != target and not existing.is_dir():
        raise OutputPathError(
            f"{option} {path}: {existing} is a file, so nothing can be written below it; pass another path."
        )
    writable = existing if existing.is_dir() else existing.parent
    if not os.access(writable, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: {writable} is not writable; pass a path you can write to.")
    return target


def find_repo_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest directory at or above ``start`` (default cwd) holding ``reproduce/configs``."""
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    for candidate in (here, *here.parents):
        if (candidate / "reproduce" / "configs").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no directory with reproduce/configs at or above {here}; run from the repository or pass root="
    )


def default_config_path(paper: str, scale: str, root: str | os.PathLike[str] | None = None) -> Path:
    """``<root>/reproduce/configs/<paper>/<scale>.toml``; root found by walking up from cwd if not given."""
    base = find_repo_root() if root is None else Path(root)
    return base / "reproduce" / "configs" / paper / f"{scale}.toml"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: ``cache_dir`` if given, else ``$REPROKIT_CACHE``, else ``~/.cache/reprokit``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("REPROKIT_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "reprokit"
