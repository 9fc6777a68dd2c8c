"""What a local stack is made of: its settings, saved in its state directory, and the
supervised programs (the role commands of ``_roles``) they give."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from scaleml.stack import _roles
from scaleml.stack._supervisor import Program, StackError

LOOPBACK = "127.0.0.1"


@dataclass
class StackConfig:
    """The settings of one local stack; saved as ``stack.json`` in ``state_dir``."""

    state_dir: Path
    workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    scheduler_port: int = _roles.SCHEDULER_PORT
    dashboard_port: int = _roles.DASHBOARD_PORT
    mlflow_port: int = _roles.MLFLOW_PORT
    coordinator_port: int = _roles.COORDINATOR_PORT
    gateway_port: int = _roles.GATEWAY_PORT
    mlflow_backend_store: str | None = None
    coordinator_db: str | None = None
    data_dir: Path | None = None
    models: list[str] = field(default_factory=list)
    stop_timeout_s: float = 10.0

    @property
    def scheduler_address(self) -> str:
        return f"tcp://{LOOPBACK}:{self.scheduler_port}"

    @property
    def urls(self) -> dict[str, str]:
        """Where each HTTP part answers."""
        urls = {
            "dashboard": f"http://{LOOPBACK}:{self.dashboard_port}/status",
            "pages": f"http://{LOOPBACK}:{self.dashboard_port}/scaleml/",
            "mlflow": f"http://{LOOPBACK}:{self.mlflow_port}",
            "coordinator": f"http://{LOOPBACK}:{self.coordinator_port}",
        }
        if self.models:
            urls["gateway"] = f"http://{LOOPBACK}:{self.gateway_port}"
        return urls

    def settings_env(self) -> dict[str, str]:
        """The ``SCALEML_*`` variables that point every part, the client and the CLI at
        this stack."""
        state = self.state_dir
        job_store = self.coordinator_db or f"sqlite:///{state / 'coordinator.db'}"
        env = {
            "SCALEML_SCHEDULER": self.scheduler_address,
            "SCALEML_MLFLOW_TRACKING_URI": self.urls["mlflow"],
            "SCALEML_COORDINATOR_URL": self.urls["coordinator"],
            "SCALEML_COORDINATOR_DB": job_store,
            "SCALEML_DATA_DIR": str(self.data_dir or state / "data"),
            "SCALEML_CACHE_DIR": str(state / "cache"),
            "SCALEML_GATEWAY_BACKEND": "dask",
        }
        return env

    def save(self) -> None:
        """Write ``stack.json`` (to a temporary name, then renamed)."""
        data = dataclasses.asdict(self)
        data["state_dir"] = str(self.state_dir)
        data["data_dir"] = None if self.data_dir is None else str(self.data_dir)
        path = self.state_dir / "stack.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, state_dir: Path) -> StackConfig | None:
        """The saved settings of the stack in ``state_dir``, or ``None``."""
        try:
            data = json.loads((state_dir / "stack.json").read_text())
        except FileNotFoundError:
            return None
        data["state_dir"] = state_dir
        if data.get("data_dir") is not None:
            data["data_dir"] = Path(data["data_dir"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def role_commands(config: StackConfig) -> list[_roles.RoleCommand]:
    """Every role command of the stack, in start order (one per worker)."""
    state = config.state_dir
    commands = [
        _roles.scheduler_command(
            host=LOOPBACK, port=config.scheduler_port, dashboard_port=config.dashboard_port
        ),
        _roles.mlflow_command(
            host=LOOPBACK,
            port=config.mlflow_port,
            backend_store_uri=_mlflow_store(config.mlflow_backend_store, state),
            artifacts_destination=str(state / "mlartifacts"),
        ),
    ]
    commands += [
        _roles.worker_command(
            scheduler_address=config.scheduler_address,
            host=LOOPBACK,
            nthreads=config.threads_per_worker,
            memory_limit=config.memory_limit,
            name=f"worker-{i}",
            local_directory=str(state / "cache"),
        )
        for i in range(1, config.workers + 1)
    ]
    commands.append(_roles.coordinator_command(host=LOOPBACK, port=config.coordinator_port))
    if config.models:
        commands.append(
            _roles.gateway_command(host=LOOPBACK, port=config.gateway_port, models=config.models)
        )
    return commands


def _mlflow_store(url: str | None, state_dir: Path) -> str:
    """MLflow's backend store: SQLite in the state directory by default; ``postgresql://``
    goes through psycopg 3 (scaleml's PostgreSQL driver; MLflow's default is psycopg2)."""
    if not url:
        return f"sqlite:///{state_dir / 'mlflow.db'}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


def program_name(command: _roles.RoleCommand, index: int) -> str:
    """supervisord's name of a part: the role, and ``worker-N`` for workers."""
    return f"worker-{index}" if command.role == "worker" else command.role


def programs(config: StackConfig) -> list[Program]:
    """The supervised programs of the stack: each role command with its program resolved
    next to this Python (the same environment), and the stack's settings in its env."""
    result = []
    worker_index = 0
    for command in role_commands(config):
        if command.role == "worker":
            worker_index += 1
        executable = _executable(command.argv[0])
        result.append(
            Program(
                name=program_name(command, worker_index),
                argv=[executable, *command.argv[1:]],
                env={**config.settings_env(), **command.env},
                stop_timeout_s=config.stop_timeout_s,
            )
        )
    return result


def _executable(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"the program {name!r} is not installed (expected at {beside})")
    return found
