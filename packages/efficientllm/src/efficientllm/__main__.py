"""`python -m efficientllm` (and `accelerate launch -m efficientllm prune-train ...`): the command line."""

from efficientllm.cli import main

raise SystemExit(main())
