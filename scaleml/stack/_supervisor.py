"""supervisord for the local stack: its configuration file, the daemon, and its XML-RPC API.

supervisord daemonises, starts each part in its own process group, writes each part's log
and stops a part with SIGTERM, then SIGKILL after ``stopwaitsecs``. Parts are not restarted
automatically: a part that dies stays dead, ``scaleml cluster status`` reports it and
``scaleml cluster up`` starts it again.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleml.errors import ScalemlError

_SOCKET_PATH_MAX = 100  # AF_UNIX paths are limited to 107 bytes on Linux


class StackError(ScalemlError):
    """The local stack cannot be started, queried or stopped as asked."""


@dataclass(frozen=True)
class Program:
    """One supervised process: its name, argv (absolute program path first), environment."""

    name: str
    argv: list[str]
    env: dict[str, str]
    stop_timeout_s: float


def _quote_env(env: dict[str, str]) -> str:
    def one(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return ",".join(f"{key}={one(value)}" for key, value in sorted(env.items()))


def render_config(state_dir: Path, programs: list[Program]) -> str:
    """supervisord.conf text for ``programs``, everything under ``state_dir``."""
    logs = state_dir / "logs"
    lines = [
        "[unix_http_server]",
        f"file={state_dir / 'supervisor.sock'}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={logs / 'supervisord.log'}",
        f"pidfile={state_dir / 'supervisord.pid'}",
        f"directory={state_dir}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{state_dir / 'supervisor.sock'}",
    ]
    for program in programs:
        lines += [
            "",
            f"[program:{program.name}]",
            f"command={shlex.join(program.argv)}",
            f"directory={state_dir}",
            f"stdout_logfile={logs / (program.name + '.log')}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
            "redirect_stderr=true",
            "autostart=false",
            "autorestart=false",
            "startsecs=1",
            "startretries=0",
            "stopsignal=TERM",
            f"stopwaitsecs={max(1, round(program.stop_timeout_s))}",
            "stopasgroup=true",
            "killasgroup=true",
        ]
        if program.env:
            lines.append(f"environment={_quote_env(program.env)}")
    # supervisord reads the file with ConfigParser interpolation: a literal % is %%
    return "\n".join(lines).replace("%", "%%") + "\n"


class Supervisor:
    """The supervisord of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.config_path = state_dir / "supervisord.conf"
        self.socket_path = state_dir / "supervisor.sock"
        self.pid_path = state_dir / "supervisord.pid"

    # -- the daemon -------------------------------------------------------------------------
    def pid(self) -> int | None:
        """supervisord's PID if it is running."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def write_config(self, programs: list[Program]) -> None:
        """Write supervisord.conf (to a temporary name, then renamed)."""
        if len(str(self.socket_path)) > _SOCKET_PATH_MAX:
            raise StackError(
                f"the state directory path is too long for a Unix socket: {self.state_dir}"
            )
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".conf.tmp")
        tmp.write_text(render_config(self.state_dir, programs))
        tmp.replace(self.config_path)

    def start_daemon(self, timeout_s: float = 20.0) -> None:
        """Start supervisord (it daemonises) and wait until its API answers."""
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.config_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            raise StackError(f"supervisord did not start: {message[-1] if message else '?'}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.rpc.supervisor.getState()
                return
            except (OSError, xmlrpc.client.Fault):
                time.sleep(0.1)
        raise StackError(f"supervisord did not answer within {timeout_s:g} s")

    @property
    def rpc(self) -> Any:
        """supervisord's XML-RPC proxy (over its Unix socket)."""
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def update(self) -> None:
        """Re-read the configuration: stop and remove changed or removed programs, add new
        and changed ones (not started)."""
        [[added, changed, removed]] = self.rpc.supervisor.reloadConfig()
        for name in [*changed, *removed]:
            self._stop(name)
            self.rpc.supervisor.removeProcessGroup(name)
        for name in [*changed, *added]:
            self.rpc.supervisor.addProcessGroup(name)

    # -- processes --------------------------------------------------------------------------
    def processes(self) -> dict[str, dict[str, Any]]:
        """supervisord's info on each program, by name."""
        return {info["name"]: info for info in self.rpc.supervisor.getAllProcessInfo()}

    def start(self, name: str) -> None:
        """Start one program (without waiting for it to be healthy)."""
        try:
            self.rpc.supervisor.startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise StackError(f"could not start {name}: {fault.faultString}") from None

    def _stop(self, name: str) -> None:
        try:
            self.rpc.supervisor.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def shutdown(self, timeout_s: float) -> None:
        """Stop every program (SIGTERM, SIGKILL after its timeout), then supervisord."""
        pid = self.pid()
        if pid is None:
            return
        try:
            self.rpc.supervisor.stopAllProcesses(True)
            self.rpc.supervisor.shutdown()
        except (OSError, xmlrpc.client.Fault):
            os.kill(pid, 15)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, 9)


def _alive(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
