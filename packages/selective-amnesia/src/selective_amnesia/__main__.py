"""`python -m selective_amnesia` (and `accelerate launch -m selective_amnesia`): the command line."""

from selective_amnesia.cli import main

raise SystemExit(main())
