"""`scaleml cluster` refusals and the supervised programs, without starting a stack."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from scaleml.stack import StackConfig, role_commands
from scaleml.stack._config import programs
from scaleml.stack._supervisor import render_config
from tests.deploy.conftest import free_ports, scaleml, stack_processes


def test_up_refuses_a_port_in_use_naming_it_and_starts_nothing(tmp_path: Path) -> None:
    ports = free_ports(5)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[2]))
        taken.listen()
        result = scaleml(
            "cluster", "up", "--state-dir", str(tmp_path), "--scheduler-port", str(ports[0]),
            "--dashboard-port", str(ports[1]), "--mlflow-port", str(ports[2]),
            "--coordinator-port", str(ports[3]), "--gateway-port", str(ports[4]),
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: port {ports[2]} (mlflow) is already in use on 127.0.0.1; "
        "stop what holds it or choose another port"
    )
    assert stack_processes(tmp_path) == []


def test_status_and_up_refuse_bad_input_with_exit_2(tmp_path: Path) -> None:
    status = scaleml("cluster", "status", "--state-dir", str(tmp_path / "none"))
    assert status.returncode == 2 and status.stderr.startswith("error: no stack in ")
    bad = scaleml("cluster", "up", "--state-dir", str(tmp_path), "--memory-limit", "lots")
    assert bad.returncode == 2 and "--memory-limit" in bad.stderr
    store = scaleml("cluster", "up", "--state-dir", str(tmp_path), "--mlflow-backend-store", "x")
    assert store.returncode == 2 and "--mlflow-backend-store" in store.stderr
    assert stack_processes(tmp_path) == []


def test_every_part_binds_loopback_and_runs_from_this_environment(tmp_path: Path) -> None:
    config = StackConfig(tmp_path, workers=3, models=["churn@champion"])
    parts = programs(config)
    assert [p.name for p in parts] == [
        "scheduler", "mlflow", "worker-1", "worker-2", "worker-3", "coordinator", "gateway",
    ]  # fmt: skip
    for part in parts:
        assert Path(part.argv[0]).parent == Path(sys.executable).parent
        host = part.argv[part.argv.index("--host") + 1]
        assert host == "127.0.0.1", part
        assert part.env["SCALEML_SCHEDULER"] == config.scheduler_address
    worker = parts[2]
    assert worker.argv[worker.argv.index("--dashboard-address") + 1] == "127.0.0.1:0"
    assert worker.env["MALLOC_TRIM_THRESHOLD_"] == str(64 * 2**20)
    # the same commands the chart runs: only the program's path differs
    assert [[Path(p.argv[0]).name, *p.argv[1:]] for p in parts] == [
        c.argv for c in role_commands(config)
    ]


@pytest.mark.parametrize("value", ['a "quoted" value', "100%", "back\\slash"])
def test_supervisor_config_keeps_odd_values(tmp_path: Path, value: str) -> None:
    import configparser

    config = StackConfig(tmp_path, workers=1)
    parts = programs(config)
    parts[0].env["ODD"] = value
    parser = configparser.ConfigParser()
    parser.read_string(render_config(tmp_path, parts))
    environment = parser["program:scheduler"]["environment"]
    assert f'ODD="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' in (
        environment
    )
