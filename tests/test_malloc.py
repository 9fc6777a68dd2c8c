"""glibc's thresholds, kept raised while a job runs: what a worker process pays in page faults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# Each step allocates and frees a 1 MiB array 200 times and prints the minor page faults.
SCRIPT = textwrap.dedent(
    """
    import resource, numpy as np
    from scaleml import _malloc

    def faults():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(200):
            a = np.ones(131072)
            del a
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    print("start", faults())
    print("kept", int(_malloc.keep_freed_memory()), faults())
    _malloc.keep_freed_memory()
    _malloc.release_freed_memory()
    print("still_kept", faults())
    _malloc.release_freed_memory()
    print("released", faults())
    _malloc.release_freed_memory()
    print("extra_release", faults())
    """
)
PAGES_PER_ROUND = 200 * 2**20 // 4096


def _run(env: dict[str, str]) -> dict[str, list[int]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return {
        line.split()[0]: [int(v) for v in line.split()[1:]] for line in done.stdout.splitlines()
    }


def test_a_worker_with_dasks_trim_threshold_stops_faulting_while_kept():
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    out = _run(env)
    assert out["start"][0] > 0.9 * PAGES_PER_ROUND  # every 1 MiB array is a fresh mmap
    assert out["kept"] == [1, pytest.approx(0, abs=0.05 * PAGES_PER_ROUND)]
    assert out["still_kept"][0] < 0.05 * PAGES_PER_ROUND  # one of two holders released
    assert out["released"][0] > 0.9 * PAGES_PER_ROUND  # start-up thresholds are back
    assert out["extra_release"][0] > 0.9 * PAGES_PER_ROUND  # an unmatched release is harmless


def test_glibcs_adaptive_thresholds_are_left_alone():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = _run(env)
    assert out["kept"][0] == 0
    assert out["start"][0] < 0.05 * PAGES_PER_ROUND
