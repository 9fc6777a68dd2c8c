"""Flat-memory checks: a cluster of small workers (``capped_settings``) and each process's
peak resident memory (``peak_rss_bytes``, run on the workers with ``client.run``)."""

from __future__ import annotations

from pathlib import Path

from scaleml.config import Settings


def peak_rss_bytes() -> int:
    """This process's peak resident memory since it started (``VmHWM``).

    Not ``getrusage``: its ``ru_maxrss`` survives ``exec``, so a worker spawned by a large
    parent would report the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def capped_settings(memory_limit: int, tmp_path: Path) -> Settings:
    """The cluster scaleml deploys (its worker malloc settings included): 2 worker processes
    of 1 thread, each limited to ``memory_limit`` bytes."""
    return Settings(
        n_workers=2,
        threads_per_worker=1,
        worker_memory_limit=str(memory_limit),
        dashboard_address=":0",
        cache_dir=tmp_path / "cache",
    )
