"""``up``, ``status`` and ``down`` of the local stack: supervised processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from scaleml.stack._config import LOOPBACK, StackConfig, programs
from scaleml.stack._supervisor import Program, StackError, Supervisor

_DEAD_STATES = {"EXITED", "FATAL", "BACKOFF", "STOPPED", "UNKNOWN"}


@dataclass(frozen=True)
class PartStatus:
    """One part of the stack as ``status`` sees it."""

    name: str
    state: str
    pid: int | None
    healthy: bool
    detail: str


def _health_url(config: StackConfig, name: str) -> str | None:
    base = f"http://{LOOPBACK}"
    return {
        "scheduler": f"{base}:{config.dashboard_port}/health",
        "mlflow": f"{base}:{config.mlflow_port}/health",
        "coordinator": f"{base}:{config.coordinator_port}/health",
        "gateway": f"{base}:{config.gateway_port}/v2/health/live",
    }.get(name)


def _ports(config: StackConfig, name: str) -> list[int]:
    return {
        "scheduler": [config.scheduler_port, config.dashboard_port],
        "mlflow": [config.mlflow_port],
        "coordinator": [config.coordinator_port],
        "gateway": [config.gateway_port],
    }.get(name, [])


def _healthy(config: StackConfig, name: str) -> bool:
    if name.startswith("worker-"):
        return _worker_connected(config, name)
    url = _health_url(config, name)
    try:
        return url is not None and httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _worker_connected(config: StackConfig, name: str) -> bool:
    """The scheduler lists a worker called ``name``."""
    url = f"http://{LOOPBACK}:{config.dashboard_port}/json/identity.json"
    try:
        workers = httpx.get(url, timeout=2.0).json().get("workers", {})
    except (httpx.HTTPError, ValueError):
        return False
    return any(info.get("name") == name for info in workers.values())


def port_in_use(port: int) -> bool:
    """Something listens on ``port`` of the loopback address (or of every address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def up(
    config: StackConfig,
    *,
    timeout_s: float = 300.0,
    announce: Callable[[str], object] = print,
) -> StackConfig:
    """Start every part of the stack that is not running and wait until all are healthy.

    A stack already running in ``config.state_dir`` is updated in place: parts whose
    command changed are restarted, missing or dead parts are started, healthy ones are left.

    Raises:
        StackError: a port is taken by another program, a part exited or stayed unhealthy.
    """
    state_dir = config.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(state_dir)
    wanted = programs(config)
    daemon_running = supervisor.pid() is not None
    if not daemon_running:
        _refuse_orphans(state_dir)
    infos = supervisor.processes() if daemon_running else {}
    running = {n for n, i in infos.items() if i["statename"] == "RUNNING"}
    for program in wanted:
        if program.name in running:
            continue
        for port in _ports(config, program.name):
            if port_in_use(port):
                raise StackError(
                    f"port {port} ({program.name}) is already in use on {LOOPBACK}; "
                    f"stop what holds it or choose another port"
                )
    supervisor.write_config(wanted)
    if daemon_running:
        supervisor.update()
        running = {n for n, i in supervisor.processes().items() if i["statename"] == "RUNNING"}
    else:
        supervisor.start_daemon()
    config.save()
    # Workers and the coordinator wait for the scheduler themselves; the gateway checks its
    # models in MLflow as it starts, so it starts once the others are healthy.
    first = [p for p in wanted if p.name != "gateway"]
    rest = [p for p in wanted if p.name == "gateway"]
    for group in (first, rest):
        for program in group:
            if program.name not in running:
                announce(f"starting {program.name}")
                supervisor.start(program.name)
        _record_pids(supervisor)
        _wait_healthy(supervisor, config, group, timeout_s)
    _record_pids(supervisor)
    return config


def _wait_healthy(
    supervisor: Supervisor, config: StackConfig, group: list[Program], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    pending = {p.name for p in group}
    while pending:
        infos = supervisor.processes()
        for name in sorted(pending):
            info = infos.get(name, {})
            if info.get("statename") in _DEAD_STATES:
                raise StackError(
                    f"{name} exited during start ({info.get('description', '')}); "
                    f"its log: {_log_tail(config.state_dir, name)}"
                )
            if info.get("statename") == "RUNNING" and _healthy(config, name):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            names = ", ".join(sorted(pending))
            raise StackError(
                f"not healthy within {timeout_s:g} s: {names}; logs in {config.state_dir / 'logs'}"
            )
        if pending:
            time.sleep(0.25)


def _log_tail(state_dir: Path, name: str, lines: int = 3) -> str:
    try:
        text = (state_dir / "logs" / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(none)"
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def _record_pids(supervisor: Supervisor) -> None:
    """``pids.json``: supervisord's and each part's PID with its start time (a reused PID
    is never taken for a part)."""
    import psutil

    records = {key: list(value) for key, value in _records(supervisor.state_dir).items()}
    for name, info in supervisor.processes().items():
        if info["pid"]:
            try:
                started = psutil.Process(info["pid"]).create_time()
            except psutil.NoSuchProcess:
                continue
            records[f"{name}:{info['pid']}"] = [info["pid"], started]
    daemon = supervisor.pid()
    if daemon is not None:
        records[f"supervisord:{daemon}"] = [daemon, psutil.Process(daemon).create_time()]
    path = supervisor.state_dir / "pids.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(records, indent=2))
    tmp.replace(path)


def _records(state_dir: Path) -> dict[str, tuple[int, float]]:
    try:
        records = json.loads((state_dir / "pids.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name: (int(pid), float(started)) for name, (pid, started) in records.items()}


def _same_process(pid: int, started: float) -> bool | None:
    """True: ``pid`` is still the recorded process; False: another process has that PID;
    None: no process has it."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return abs(process.create_time() - started) < 0.01
    except psutil.NoSuchProcess:
        return None


def _recorded_alive(state_dir: Path) -> dict[str, int]:
    """The parts recorded in ``pids.json`` whose process still runs."""
    return {
        key.rsplit(":", 1)[0]: pid
        for key, (pid, started) in _records(state_dir).items()
        if _same_process(pid, started)
    }


def _refuse_orphans(state_dir: Path) -> None:
    orphans = {n: p for n, p in _recorded_alive(state_dir).items() if n != "supervisord"}
    if orphans:
        names = ", ".join(f"{n} (pid {p})" for n, p in sorted(orphans.items()))
        raise StackError(
            f"supervisord of {state_dir} is gone but parts still run: {names}; "
            f"run 'scaleml cluster down --state-dir {state_dir}' first"
        )


def status(state_dir: Path) -> list[PartStatus]:
    """Every part of the stack in ``state_dir``: its state, PID and health.

    Raises:
        StackError: there is no stack in ``state_dir``.
    """
    config = StackConfig.load(state_dir)
    if config is None:
        raise StackError(f"no stack in {state_dir} (start one with 'scaleml cluster up')")
    supervisor = Supervisor(state_dir)
    if supervisor.pid() is None:
        alive = _recorded_alive(state_dir)
        return [
            PartStatus(
                p.name,
                "ORPHANED" if p.name in alive else "STOPPED",
                alive.get(p.name),
                False,
                "supervisord is not running",
            )
            for p in programs(config)
        ]
    infos = supervisor.processes()
    parts = []
    for program in programs(config):
        info = infos.get(program.name, {})
        state = info.get("statename", "UNKNOWN")
        healthy = state == "RUNNING" and _healthy(config, program.name)
        detail = info.get("description", "")
        if state in _DEAD_STATES:
            detail = _exit_reason(state_dir, program.name) or detail
        parts.append(PartStatus(program.name, state, info.get("pid") or None, healthy, detail))
    return parts


def _exit_reason(state_dir: Path, name: str) -> str | None:
    """Why supervisord saw ``name`` exit last ("terminated by SIGKILL; not expected")."""
    try:
        lines = (state_dir / "logs" / "supervisord.log").read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if f"exited: {name} (" in line:
            return "exited: " + line.split(f"exited: {name} (", 1)[1].rstrip(")")
    return None


def down(state_dir: Path, *, timeout_s: float = 10.0) -> list[str]:
    """Stop every part (SIGTERM, then SIGKILL after ``timeout_s``) and supervisord; kill any
    recorded part left over. Returns the names of the parts that had to be killed."""
    supervisor = Supervisor(state_dir)
    supervisor.shutdown(timeout_s + 5)
    leftovers = sorted(_recorded_alive(state_dir))
    # A part runs in its own process group (supervisord's setpgrp): kill what is left of
    # each group, also of a part whose leader died (a worker's process under a killed nanny).
    for pid, started in _records(state_dir).values():
        if _same_process(pid, started) is False:
            continue
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
    deadline = time.monotonic() + timeout_s
    while _recorded_alive(state_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    for name in ("pids.json", "supervisord.pid", "supervisor.sock"):
        (state_dir / name).unlink(missing_ok=True)
    return leftovers
