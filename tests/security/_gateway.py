"""Helpers of the gateway security tests: real ``scaleml serve`` processes on 127.0.0.1 (the
fixtures of ``tests/gateway/conftest.py``), their memory, their log, raw sockets."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx

from tests.gateway.conftest import GatewayProcess

TOKEN = "open-sesame"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T = 30.0  # client timeout: a request that takes longer is a hang


def rss_mib(process: GatewayProcess) -> float:
    """Resident memory of the gateway process now."""
    with open(f"/proc/{process.proc.pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def tracebacks(process: GatewayProcess, since: int) -> list[str]:
    """Traceback lines the gateway wrote to standard error after its ``since``-th line
    (waits for the batched access log to be written first)."""
    time.sleep(0.5)
    return [line for line in list(process.lines)[since:] if "Traceback" in line]


def address(process: GatewayProcess) -> tuple[str, int]:
    parts = urlsplit(process.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def raw_request(process: GatewayProcess, head: bytes, body: bytes = b"") -> socket.socket:
    """A socket that sent ``head`` (request line and headers) and ``body``, then stays."""
    sock = socket.create_connection(address(process), timeout=T)
    sock.sendall(head + b"\r\n\r\n" + body)
    return sock


def read_until_closed(sock: socket.socket, timeout_s: float) -> bytes:
    """Everything the server sends until it closes the connection (``socket.timeout`` if it
    keeps it open longer than ``timeout_s``)."""
    sock.settimeout(timeout_s)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def served(process: GatewayProcess) -> dict[str, str | None]:
    """The version each model is served at."""
    return httpx.get(f"{process.url}/version", timeout=T).json()["models"]
