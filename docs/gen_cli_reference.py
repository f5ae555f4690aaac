"""Write docs/cli.md from the `--help` of every command line (run after changing a CLI's flags).

python docs/gen_cli_reference.py          # rewrite docs/cli.md
python docs/gen_cli_reference.py --check  # exit 1 if docs/cli.md is stale (tests/test_cli_reference.py)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "cli.md"
COMMANDS: list[tuple[str, list[str]]] = [
    ("palimpsest", ["-m", "palimpsest", "--help"]),
    ("palimpsest query", ["-m", "palimpsest", "query", "--help"]),
    ("palimpsest reshuffle", ["-m", "palimpsest", "reshuffle", "--help"]),
    ("palimpsest ngram", ["-m", "palimpsest", "ngram", "--help"]),
    ("nudging", ["-m", "nudging", "--help"]),
    ("nudging generate", ["-m", "nudging", "generate", "--help"]),
    ("nudging eval", ["-m", "nudging", "eval", "--help"]),
    ("selective-amnesia", ["-m", "selective_amnesia", "--help"]),
    ("selective-amnesia trace", ["-m", "selective_amnesia", "trace", "--help"]),
    ("selective-amnesia unlearn", ["-m", "selective_amnesia", "unlearn", "--help"]),
    ("selective-amnesia score", ["-m", "selective_amnesia", "score", "--help"]),
    ("efficientllm", ["-m", "efficientllm", "--help"]),
    ("efficientllm prune-train", ["-m", "efficientllm", "prune-train", "--help"]),
    ("efficientllm export", ["-m", "efficientllm", "export", "--help"]),
    ("efficientllm eval", ["-m", "efficientllm", "eval", "--help"]),
    ("reproduce/<paper>.py", ["-m", "reprokit.reproduce", "palimpsest", "--help"]),
]
HEADER = """# Command-line reference

Generated from each command's `--help` by `python docs/gen_cli_reference.py`; a test fails when this page
and the commands disagree. Every command prints one line and exits with status 2 on bad input (a missing
file, a wrong option, a model it cannot serve); add `--debug` for the traceback.
"""


def render() -> str:
    env = {**os.environ, "COLUMNS": "100", "LC_ALL": "C.UTF-8"}
    parts = [HEADER]
    for title, args in COMMANDS:
        proc = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60
        )
        text = proc.stdout.replace(Path(sys.executable).name, "python").rstrip()
        if title.startswith("reproduce/"):
            text = text.replace("reproduce/palimpsest.py", "reproduce/<paper>.py").replace(
                "the palimpsest paper", "the <paper> paper"
            )
        parts.append(f"## `{title}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not TARGET.is_file() or TARGET.read_text() != text:
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
