"""reprokit: shared utilities for the four-paper reproducibility monorepo."""

__version__ = "0.1.0"
