"""Deployment: the role commands every deployment runs (the Helm chart's containers and the
local stack alike), and the local stack of supervised processes (``scaleml cluster``)."""

from scaleml.stack._config import StackConfig, role_commands
from scaleml.stack._roles import (
    ROLES,
    RoleCommand,
    coordinator_command,
    gateway_command,
    mlflow_command,
    scheduler_command,
    worker_command,
)
from scaleml.stack._stack import PartStatus, down, port_in_use, status, up
from scaleml.stack._supervisor import StackError

__all__ = [
    "ROLES",
    "PartStatus",
    "RoleCommand",
    "StackConfig",
    "StackError",
    "coordinator_command",
    "down",
    "gateway_command",
    "mlflow_command",
    "port_in_use",
    "role_commands",
    "scheduler_command",
    "status",
    "up",
    "worker_command",
]
