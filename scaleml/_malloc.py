"""glibc's allocator in the calling process (a Dask worker): give memory back, or keep it
for the length of a job.

Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so that freed memory goes
back to the OS at once. Setting any such variable also freezes glibc's mmap threshold at
128 KiB: every array of 128 KiB or more is then a fresh ``mmap`` whose pages are faulted in
and zeroed on first touch and unmapped when freed. Work that allocates the same arrays of a
few hundred KiB thousands of times (``partial_fit`` on a block, a score on a test set) pays
that on every call: on the dask-ml tutorial search it made the workers' tasks ~10% slower
and a test-set score 1.5x slower. :func:`keep_freed_memory` lifts both thresholds while a
job runs and puts them back, trimming the heap, when the last job that asked is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_GLIBC_DEFAULT = 128 * 2**10
KEPT_MMAP_THRESHOLD = 32 * 2**20
"""While kept: arrays below 32 MiB (glibc's largest mmap threshold) come from the heap."""
KEPT_TRIM_THRESHOLD = 64 * 2**20
"""While kept: the heap keeps up to 64 MiB of free memory at its top."""

_lock = threading.Lock()
_holders = 0
_restore: dict[int, int] = {}


def trim() -> None:
    """Hand the free memory of glibc's heaps back to the OS (no-op off glibc)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def keep_freed_memory() -> bool:
    """Raise this process's mmap and trim thresholds until :func:`release_freed_memory`.

    Acts only when the process started with fixed thresholds (a ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` variable, as Dask's nanny sets) below the kept values: without
    them glibc adapts its thresholds itself. Calls nest (one per running job); returns whether
    the thresholds are raised.
    """
    global _holders
    libc = _libc()
    if libc is None:
        return False
    with _lock:
        if _holders == 0:
            _restore.clear()
            _restore.update(_raise(libc))
        _holders += 1
        return bool(_restore)


def release_freed_memory() -> None:
    """Undo one :func:`keep_freed_memory`; the last one restores the start-up thresholds and
    trims the heap."""
    global _holders
    libc = _libc()
    if libc is None:
        return
    with _lock:
        _holders = max(0, _holders - 1)
        if _holders or not _restore:
            return
        for option, value in _restore.items():
            libc.mallopt(option, value)
        _restore.clear()
    libc.malloc_trim(0)


@contextmanager
def workers_keep_freed_memory(client: Any) -> Iterator[None]:
    """:func:`keep_freed_memory` on every worker of the ``distributed`` ``client`` for the
    length of the block (workers that leave or join meanwhile are skipped)."""
    client.run(keep_freed_memory, on_error="ignore")
    try:
        yield
    finally:
        client.run(release_freed_memory, on_error="ignore")


def _raise(libc: Any) -> dict[int, int]:
    """Raise the fixed thresholds; return the values to put back."""
    started = {
        _M_MMAP_THRESHOLD: os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        _M_TRIM_THRESHOLD: os.environ.get("MALLOC_TRIM_THRESHOLD_"),
    }
    if all(value is None for value in started.values()):
        return {}
    kept = {_M_MMAP_THRESHOLD: KEPT_MMAP_THRESHOLD, _M_TRIM_THRESHOLD: KEPT_TRIM_THRESHOLD}
    restore: dict[int, int] = {}
    for option, value in started.items():
        current = _as_int(value)
        if current < kept[option] and libc.mallopt(option, kept[option]) == 1:
            restore[option] = current
    return restore


def _as_int(value: str | None) -> int:
    try:
        return int(value) if value is not None else _GLIBC_DEFAULT
    except ValueError:
        return _GLIBC_DEFAULT


@functools.cache
def _libc() -> Any:
    """glibc, or ``None`` (not Linux, or a libc without ``mallopt``/``malloc_trim``, e.g. musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc
