"""The supervision of the local stack with stand-in programs (``sleep``): a killed
supervisord leaves parts that ``status`` reports, ``up`` refuses and ``down`` kills."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest

from scaleml.stack import StackConfig, StackError, down, status, up
from scaleml.stack._config import programs
from scaleml.stack._stack import _record_pids
from scaleml.stack._supervisor import Program, Supervisor


def _stand_ins(config: StackConfig) -> list[Program]:
    sleep = shutil.which("sleep")
    assert sleep
    return [Program(p.name, [sleep, "1000"], {}, stop_timeout_s=1) for p in programs(config)[:3]]


def test_parts_orphaned_by_a_killed_supervisord_are_reported_refused_and_killed(
    tmp_path: Path,
) -> None:
    config = StackConfig(tmp_path, workers=1)
    config.save()
    supervisor = Supervisor(tmp_path)
    supervisor.write_config(_stand_ins(config))
    supervisor.start_daemon()
    for name in ("scheduler", "mlflow", "worker-1"):
        supervisor.start(name)
    deadline = time.monotonic() + 30
    while any(i["statename"] != "RUNNING" for i in supervisor.processes().values()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    _record_pids(supervisor)
    parts = {p.name: p for p in status(tmp_path)}
    assert [parts[n].state for n in ("scheduler", "mlflow", "worker-1")] == ["RUNNING"] * 3
    pids = [parts[n].pid for n in ("scheduler", "mlflow", "worker-1")]

    daemon = supervisor.pid()
    assert daemon is not None
    os.kill(daemon, signal.SIGKILL)
    while psutil.pid_exists(daemon) and psutil.Process(daemon).status() != "zombie":
        time.sleep(0.05)

    parts = {p.name: p for p in status(tmp_path)}
    assert parts["scheduler"].state == "ORPHANED" and parts["scheduler"].pid == pids[0]
    assert parts["coordinator"].state == "STOPPED" and not parts["coordinator"].healthy
    with pytest.raises(StackError, match=r"supervisord of .* is gone but parts still run"):
        up(config)
    assert sorted(down(tmp_path, timeout_s=5)) == ["mlflow", "scheduler", "worker-1"]
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert {p.state for p in status(tmp_path)} == {"STOPPED"}
