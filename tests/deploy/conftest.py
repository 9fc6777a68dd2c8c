"""Helpers of the deployment tests: run the ``scaleml`` command, find the stack's processes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psutil

from tests.coordinator.conftest import pg_database  # noqa: F401  (a fixture: PostgreSQL databases)


def scaleml(*args: str, timeout: float = 700) -> subprocess.CompletedProcess[str]:
    """Run ``python -m scaleml.cli ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "scaleml.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stack_processes(state_dir: Path) -> list[psutil.Process]:
    """supervisord of ``state_dir`` and every process under it."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "supervisor.supervisord" in cmdline and str(state_dir / "supervisord.conf") in cmdline:
            found.append(process)
            found += process.children(recursive=True)
    return found


def listening(processes: list[psutil.Process]) -> list[tuple[str, int]]:
    """The TCP addresses the ``processes`` listen on."""
    addresses = []
    for process in processes:
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        addresses += [
            (c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN
        ]
    return addresses
