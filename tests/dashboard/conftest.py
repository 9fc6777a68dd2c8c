"""The session cluster with scaleml's dashboard plugin, and the address of its pages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from scaleml.dashboard import install


@pytest.fixture(scope="module")
def pages(cluster: LocalCluster, client: Client) -> str:
    """The ``/scaleml/`` address on the session cluster's scheduler, the plugin installed
    there (kept if a module before installed it)."""
    assert install(client) is None
    return f"http://127.0.0.1:{cluster.scheduler.http_server.port}/scaleml/"


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the page tests leave their screenshots (to look at while changing the pages):
    ``$SCALEML_TEST_SCREENSHOTS`` if set, else a temporary directory."""
    chosen = os.environ.get("SCALEML_TEST_SCREENSHOTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("dashboard-screenshots")
