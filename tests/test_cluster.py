import os
import sys

import dask
import httpx
import pytest
from distributed import LocalCluster

from scaleml.cluster import WORKER_MALLOC_ENVIRON, connect
from scaleml.config import Settings


def test_without_a_scheduler_a_local_cluster_of_processes_is_started(tmp_path) -> None:
    lines: list[str] = []
    settings = Settings(
        n_workers=2,
        worker_memory_limit="700MiB",
        dashboard_address=":0",
        cache_dir=tmp_path / "cache",
    )
    with connect(settings, announce=lines.append) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        assert {w["nthreads"] for w in workers.values()} == {1}
        assert {w["memory_limit"] for w in workers.values()} == {700 * 2**20}
        worker_pids = set(client.run(os.getpid).values())
        assert os.getpid() not in worker_pids and len(worker_pids) == 2
        assert client.submit(sum, [1, 2, 3]).result() == 6
        address = client.scheduler.address
        # scaleml's pages are on its dashboard, announced under the dashboard's line
        pages = lines[1].removeprefix("scaleml pages: ")
        port = client.cluster.scheduler.http_server.port
        assert pages.endswith(f":{port}/scaleml/")
        index = httpx.get(f"http://127.0.0.1:{port}/scaleml/", timeout=60)
        assert index.status_code == 200 and 'href="searches"' in index.text
    assert len(lines) == 2 and lines[0].startswith("Dask dashboard: http")
    assert "/status" in lines[0]
    # The local cluster is gone once the block exits.
    assert client.status == "closed"
    assert address.startswith("tcp://127.0.0.1")


def test_with_a_scheduler_address_the_client_joins_that_cluster(cluster: LocalCluster) -> None:
    lines: list[str] = []
    settings = Settings(scheduler=cluster.scheduler_address)
    with connect(settings, announce=lines.append) as client:
        assert client.scheduler.address == cluster.scheduler_address
        assert client.submit(pow, 2, 10).result() == 1024
    assert cluster.scheduler_address in lines[0]
    # Connecting to someone else's cluster must not shut it down.
    assert cluster.status.name == "running"
    assert len(cluster.scheduler_info["workers"]) == 2


def _malloc_environ() -> dict[str, str | None]:
    return {
        name: os.environ.get(name) for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_local_workers_get_scalemls_malloc_settings_whatever_an_earlier_cluster_left(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An earlier Dask cluster in this process leaves its pre-spawn value in os.environ.
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    settings = Settings(n_workers=1, dashboard_address=":0", cache_dir=tmp_path / "cache")
    with connect(settings, announce=lambda line: None) as client:
        assert list(client.run(_malloc_environ).values()) == [WORKER_MALLOC_ENVIRON]
        # The nanny's copy of the values in this process is undone once the workers run.
        assert _malloc_environ() == {
            "MALLOC_TRIM_THRESHOLD_": "65536",
            "MALLOC_MMAP_THRESHOLD_": None,
        }
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_a_users_own_malloc_setting_for_the_workers_is_kept(tmp_path) -> None:
    settings = Settings(n_workers=1, dashboard_address=":0", cache_dir=tmp_path / "cache")
    key = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
    with (
        dask.config.set({key: 1_000_000}),
        connect(settings, announce=lambda line: None) as client,
    ):
        (worker,) = client.run(_malloc_environ).values()
    assert worker["MALLOC_TRIM_THRESHOLD_"] == "1000000"
    assert worker["MALLOC_MMAP_THRESHOLD_"] is None
