"""The LocalCluster scaleml starts listens on loopback only, dashboard included, unless a
host is configured."""

from __future__ import annotations

import os

import psutil
import pytest

from scaleml.cluster import connect, loopback_unless_given
from scaleml.config import Settings


def _listening(pid: int) -> set[tuple[str, int]]:
    connections = psutil.Process(pid).net_connections("inet")
    return {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}


@pytest.mark.parametrize("dashboard", [":0", "0"])
def test_the_local_cluster_and_its_dashboard_listen_on_loopback_only(
    tmp_path, dashboard: str
) -> None:
    before = _listening(os.getpid())
    settings = Settings(n_workers=1, dashboard_address=dashboard, cache_dir=tmp_path / "cache")
    with connect(settings, announce=lambda line: None) as client:
        opened = _listening(os.getpid()) - before
        workers = client.run(lambda: sorted(_listening(os.getpid())))
        dashboard_port = client.scheduler_info()["services"]["dashboard"]
    assert ("127.0.0.1", dashboard_port) in opened
    assert opened and {ip for ip, _ in opened} == {"127.0.0.1"}, opened
    assert len(workers) == 1
    for sockets in workers.values():
        assert sockets and {ip for ip, _ in sockets} == {"127.0.0.1"}, sockets


def test_a_dashboard_address_with_a_host_is_kept() -> None:
    assert loopback_unless_given("0.0.0.0:8787") == "0.0.0.0:8787"
    assert loopback_unless_given("[::1]:8787") == "[::1]:8787"
    assert loopback_unless_given(":8787") == "127.0.0.1:8787"
    assert loopback_unless_given(None) is None
