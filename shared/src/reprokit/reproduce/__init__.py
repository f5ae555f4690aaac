"""The reproduction contract: a paper declares a `PaperSpec`; one runner does the rest.

    python reproduce/nudging.py --scale tiny       # == python -m reprokit.reproduce nudging

Names are imported on first use (`reprokit.lazy`), so a reproduce script's ``--help`` stays fast.
"""

from reprokit.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "reprokit.reproduce.runner": ("available_papers", "load_config", "load_spec", "main", "run"),
        "reprokit.reproduce.seeds": ("SeedResults", "aggregate_seeds", "mean_interval"),
        "reprokit.reproduce.spec": ("Experiment", "PaperSpec", "Requirement", "RunContext"),
    },
)
