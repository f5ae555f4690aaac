"""User errors: bad input that a person can fix, each with a message that names the problem and the fix.

Every command line (`palimpsest`, `nudging`, `reproduce/*.py`) turns a `UserError` into one line on stderr
and exit status 2 (`reprokit.cli.run_cli`); anything else is a bug and keeps its traceback. The classes
also derive from the built-in exception a caller would expect (`ValueError`, `FileNotFoundError`), so
library users can catch either.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "ModelLoadError",
    "OutputPathError",
    "PreflightError",
    "UserError",
]


class UserError(Exception):
    """Bad input a person can fix; the message says what is wrong and what to do."""


class ConfigError(UserError, ValueError):
    """A config file or option has an unknown key, a wrong type or a value out of range."""


class DataError(UserError, ValueError):
    """An input data file is missing, empty, malformed or inconsistent."""


class ModelLoadError(UserError, ValueError):
    """A model or tokenizer cannot be loaded or served (wrong kind, corrupt, missing, unsafe)."""


class OutputPathError(UserError, ValueError):
    """The output folder cannot be created or written."""


class PreflightError(UserError, FileNotFoundError):
    """Models or data sets that a paper-scale run needs are not available; lists every missing one."""
