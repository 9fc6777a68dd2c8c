"""Provenance of a run: which code (scaleml version, git commit and dirty flag), where (host,
user, the Dask cluster's shape) and, when the coordinator runs it, which job (its tags).

Set as ``scaleml.*`` tags on every run scaleml opens, and copied to every model version it
registers.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import scaleml

PROVENANCE_TAGS = (
    "scaleml.version",
    "scaleml.git_commit",
    "scaleml.git_dirty",
    "scaleml.host",
    "scaleml.user",
    "scaleml.python",
    "scaleml.cluster_workers",
    "scaleml.cluster_threads",
    "scaleml.cluster_memory_bytes",
    "scaleml.job_id",
    "scaleml.dataset_fingerprint",
)


def provenance_tags() -> dict[str, str]:
    """The provenance tags of a run opened now, in this process."""
    tags = {
        "scaleml.version": scaleml.__version__,
        "scaleml.host": socket.gethostname(),
        "scaleml.user": _user(),
        "scaleml.python": platform.python_version(),
    }
    commit, dirty = _git_state()
    if commit:
        tags["scaleml.git_commit"] = commit
        tags["scaleml.git_dirty"] = str(dirty).lower()
    tags.update(_cluster_shape())
    return tags


def schema_hash(schema: dict[str, str], target: str | None) -> str:
    """A short hash of a dataset's column names and types, and its target."""
    text = json.dumps({"schema": schema, "target": target}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def _git_state() -> tuple[str | None, bool]:
    """The commit of the repository scaleml runs from and whether its files differ from it
    (read once per process)."""
    source = Path(scaleml.__file__).resolve().parent
    commit = _git(source, "rev-parse", "HEAD")
    if commit is None or len(commit) != 40:
        return None, False
    status = _git(source, "status", "--porcelain", "--untracked-files=no")
    return commit, bool(status)


def _git(where: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cluster_shape() -> dict[str, str]:
    """Workers, threads and memory of the current Dask client's cluster (none without one)."""
    try:
        from distributed import get_client

        info: dict[str, Any] = get_client().scheduler_info(n_workers=-1)
    except Exception:  # no client, or the scheduler is gone: nothing to record
        return {}
    workers = info.get("workers", {}).values()
    return {
        "scaleml.cluster_workers": str(len(workers)),
        "scaleml.cluster_threads": str(sum(w.get("nthreads", 0) for w in workers)),
        "scaleml.cluster_memory_bytes": str(sum(w.get("memory_limit", 0) or 0 for w in workers)),
    }
