"""The searches page in headless Chromium while a search runs on the session's LocalCluster,
and ``connect()`` installing the pages on a running scheduler."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed import Client, LocalCluster
from scipy.stats import loguniform
from sklearn.linear_model import SGDClassifier

from scaleml.cluster import connect
from scaleml.config import Settings
from scaleml.data import Dataset
from scaleml.search import HyperbandSearchCV, observe
from tests.browser import Browser


def _points(page: Any, search_id: str) -> int:
    """Points drawn in the search's plot now (read from the page's Bokeh document)."""
    return page.evaluate(
        """(id) => {
            const source = Bokeh.documents[0].get_model_by_name(`lines-${id}`);
            return source.data.ys.reduce((n, ys) => n + ys.length, 0);
        }""",
        search_id,
    )


def _wait(condition: Any, timeout: float = 120, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)
    return value


@pytest.mark.slow
def test_the_search_page_draws_a_running_search_live(
    client: Client, classification_path: Path, pages: str, browser: Browser, shots: Path
) -> None:
    search = HyperbandSearchCV(
        SGDClassifier(tol=None, random_state=0),
        {"alpha": loguniform(1e-5, 1e-1), "penalty": ["l2", "l1"]},
        max_iter=27,
        random_state=0,
        scoring="accuracy",
    )
    data = Dataset(str(classification_path), target="target")
    failed: list[BaseException] = []
    # The search waits at its third record until the page is open, so that it is still running
    # (and drawing) when the page is read, however loaded the machine is.
    page_open = threading.Event()
    records: list[dict[str, Any]] = []

    def hold(record: dict[str, Any]) -> None:
        records.append(record)
        if len(records) == 3:
            page_open.wait(timeout=300)

    observe(search, on_record=hold)

    def fit() -> None:
        try:
            search.fit(data)
        except BaseException as exc:  # reported by the test
            failed.append(exc)

    worker = threading.Thread(target=fit)
    worker.start()
    try:

        def running() -> str | None:
            listing = httpx.get(f"{pages}api/searches.json", timeout=60).json()
            for i, name in enumerate(listing["name"]):
                ours = name.startswith("HyperbandSearchCV") and listing["calls"][i]
                if ours and listing["status"][i] == "running":
                    return listing["id"][i]
            return None

        search_id = _wait(running, what="the search's first points")
        page = browser.open(f"{pages}searches")
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
        first = _points(page, search_id)
        page_open.set()
        page.wait_for_function(
            f"() => Bokeh.documents[0].get_model_by_name('lines-{search_id}')"
            f".data.ys.reduce((n, ys) => n + ys.length, 0) > {first}",
            timeout=60_000,
        )
        page.screenshot(path=str(shots / "searches-running.png"), full_page=True)
        # The search's own plot (other searches of this process may be drawn too) has both
        # axes labelled.
        labels = page.evaluate(
            """(id) => {
                const doc = Bokeh.documents[0];
                const source = doc.get_model_by_name(`lines-${id}`);
                const plot = [...doc.all_models].find(
                    (m) => m.renderers && m.renderers.some((r) => r.data_source === source)
                );
                return [...plot.below, ...plot.left].map((axis) => axis.axis_label);
            }""",
            search_id,
        )
        assert sorted(labels) == ["partial_fit calls", "validation score (accuracy)"]
    finally:
        page_open.set()
        worker.join()
    assert not failed, failed
    # once finished, the page says so and marks the best model of the search
    page = browser.open(f"{pages}searches")
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
    page.screenshot(path=str(shots / "searches-finished.png"), full_page=True)
    assert _points(page, search_id) == sum(len(h) for h in search.model_history_.values())
    best = page.evaluate(
        f"() => Bokeh.documents[0].get_model_by_name('best-{search_id}').data.text[0]"
    )
    chosen = search.cv_results_["model_id"][search.best_index_]
    assert best == f"best {search.best_score_:.4g} (model {chosen})"
    assert browser.errors == []


def test_connect_installs_the_pages_on_a_running_scheduler(
    cluster: LocalCluster, settings: Settings
) -> None:
    lines: list[str] = []
    with connect(
        settings.model_copy(update={"scheduler": cluster.scheduler_address}), announce=lines.append
    ) as own:
        url = next(line.split(": ", 1)[1] for line in lines if line.startswith("scaleml pages:"))
        assert url.endswith("/scaleml/")
        assert own.run_on_scheduler(
            lambda dask_scheduler: "scaleml-dashboard" in dask_scheduler.plugins
        )
    assert lines[0].startswith("Dask dashboard:")
