"""Run the gateway under uvicorn (uvloop + httptools): in the foreground, or in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import uvicorn

from scaleml.config import Settings
from scaleml.gateway._models import ModelSpec
from scaleml.gateway.app import create_app


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn settings for serving: uvloop and httptools, our own access log, a graceful
    shutdown that gives in-flight requests their full time limit."""
    return uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        backlog=4096,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=int(settings.gateway_request_timeout_s) + 5,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve_forever(
    models: Sequence[str | ModelSpec],
    settings: Settings,
    *,
    scheduler_address: str | None = None,
    announce: Callable[[str], object] = print,
) -> None:
    """Serve until SIGINT/SIGTERM, then finish in-flight requests and stop."""
    app = create_app(models, settings, scheduler_address=scheduler_address)
    sock = bind(settings.gateway_host, settings.gateway_port)
    server = uvicorn.Server(uvicorn_config(app, settings))
    announce(f"gateway listening on {url_of(sock)} (backend {app.state.gateway.backend_name})")
    server.run(sockets=[sock])


class BackgroundGateway:
    """A gateway running in a thread of this process; ``url`` to reach it, ``stop()`` to end
    it. Also a context manager."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self._server = server
        self._thread = thread
        self.url = url

    def stop(self, timeout: float = 30.0) -> None:
        """Finish in-flight requests, unload the models and stop the server thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def wait(self) -> None:
        """Block until the server stops, or until Ctrl-C (which stops it)."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            self.stop()

    def __enter__(self) -> BackgroundGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_in_background(
    models: Sequence[str | ModelSpec],
    settings: Settings,
    client: Any = None,
    *,
    wait_ready_s: float | None = 120.0,
    port: int = 0,
) -> BackgroundGateway:
    """Start a gateway on 127.0.0.1 and a free port in a background thread.

    Args:
        models: ``NAME[@alias|/version]`` of each model to serve.
        settings: scaleml settings (MLflow store, ``gateway_*`` knobs).
        client: a :class:`distributed.Client`; given, batches are predicted on its cluster's
            workers (``dask`` backend), else in this process (``local``), unless
            ``settings.gateway_backend`` says otherwise.
        wait_ready_s: wait this long for every model to load (``None``: do not wait).
        port: the port on 127.0.0.1 (0: a free one).

    Raises:
        TimeoutError: the models were not loaded within ``wait_ready_s``.
    """
    address = client.scheduler.address if client is not None else None
    if client is not None and settings.gateway_backend == "auto":
        settings = settings.model_copy(update={"gateway_backend": "dask"})
    app = create_app(models, settings, scheduler_address=address)
    sock = bind("127.0.0.1", port)
    config = uvicorn_config(app, settings)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="scaleml-gateway", daemon=True
    )
    thread.start()
    handle = BackgroundGateway(server, thread, url_of(sock))
    if wait_ready_s is not None:
        try:
            wait_until_ready(handle.url, wait_ready_s)
        except TimeoutError:
            handle.stop()
            raise
    return handle


def wait_until_ready(url: str, timeout_s: float) -> None:
    """Poll ``/v2/health/ready`` until it says ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the gateway at {url} was not ready within {timeout_s:g} s")
