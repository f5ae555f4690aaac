"""`python -m nudging`: the command line."""

from nudging.cli import main

raise SystemExit(main())
