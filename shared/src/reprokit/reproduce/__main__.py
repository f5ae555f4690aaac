"""``python -m reprokit.reproduce <paper> [options]``: the same as ``python reproduce/<paper>.py``."""

import sys

from reprokit.reproduce.runner import available_papers, main

if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
    names = ", ".join(sorted(available_papers())) or "none installed"
    print(f"usage: python -m reprokit.reproduce PAPER [options]   (papers: {names})", file=sys.stderr)
    raise SystemExit(2)
raise SystemExit(main(sys.argv[1], sys.argv[2:]))
