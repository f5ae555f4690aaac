"""`python -m palimpsest` runs the command line."""

from palimpsest.cli import main

raise SystemExit(main())
