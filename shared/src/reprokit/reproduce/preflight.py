"""Paper-scale preflight: every model and data set the config names is found before any work starts.

A requirement is found as a local path, in the local Hugging Face cache, or (when online) on the hub.
All missing ones are listed in one message, so a user fixes them in one go.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from reprokit.cli import error_summary
from reprokit.errors import PreflightError
from reprokit.reproduce.spec import Requirement

__all__ = ["find_requirement", "preflight"]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def find_requirement(req: Requirement) -> tuple[str | None, str]:
    """(where `req` was found: a path, "cache" or "hub"; or None, with the reason it was not)."""
    path = Path(req.id).expanduser()
    if path.exists():
        return str(path), ""
    from reprokit.lm import looks_like_path

    if looks_like_path(req.id):
        return None, "no such folder"  # a path, not a hub id
    from huggingface_hub import snapshot_download

    repo_type = "dataset" if req.kind == "dataset" else "model"
    try:
        snapshot_download(req.id, repo_type=repo_type, revision=req.revision, local_files_only=True)
        return "cache", ""
    except Exception:  # any failure means "not in the local cache"
        pass
    if _offline():
        return None, "not in the local Hugging Face cache"
    try:
        from huggingface_hub import HfApi

        HfApi().repo_info(req.id, repo_type=repo_type, revision=req.revision, timeout=10)
        return "hub", ""
    except Exception as err:  # unknown, gated or unreachable: say which
        return None, error_summary(err)


def preflight(requirements: Sequence[Requirement]) -> dict[str, str]:
    """Look every requirement up: raise `PreflightError` listing all missing ones, else say where each is."""
    found: dict[str, str] = {}
    missing: list[str] = []
    seen: set[tuple[str, str, str | None]] = set()
    for req in requirements:
        key = (req.kind, req.id, req.revision)
        if key in seen:
            continue
        seen.add(key)
        where, reason = find_requirement(req)
        label = req.id + (f"@{req.revision}" if req.revision else "")
        if where is None:
            missing.append(f"{req.kind} {label}" + (f" ({req.why})" if req.why else "") + f": {reason}")
        else:
            found[label] = where
    if missing:
        mode = "offline (HF_HUB_OFFLINE=1)" if _offline() else "online"
        raise PreflightError(
            f"{len(missing)} of {len(seen)} models/data sets the paper-scale config names are not available "
            f"({mode}): {'; '.join(missing)}. Download them into the Hugging Face cache (huggingface-cli "
            "download ID) or point the config at local folders, then run again."
        )
    return found
