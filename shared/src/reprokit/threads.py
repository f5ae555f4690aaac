"""How many CPU threads torch uses for tiny models, chosen so a busy machine slows them gracefully.

torch's default (one intra-op thread per core) makes every matrix product wait for its slowest thread;
when other processes hold some cores, the waits pile up and tiny models run several times slower
(7x measured with two competing CPU-bound processes on 2 cores). One thread per process degrades in
proportion to the CPU share instead (`benchmarks/threads_contention.py` measures both).
"""

from __future__ import annotations

__all__ = ["TINY_SCALE_THREADS", "apply_threads"]

TINY_SCALE_THREADS = 1


def apply_threads(threads: int | None, *, scale: str) -> int | None:
    """Set torch's intra-op threads: `threads` if given; else one at the tiny scale; else torch's default.

    Returns the number set, or None when torch's default was kept.
    """
    import torch

    if threads is None and scale == "tiny":
        threads = TINY_SCALE_THREADS
    if threads is not None:
        torch.set_num_threads(int(threads))
    return threads
