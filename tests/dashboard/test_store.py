"""The scheduler keeps a bounded number of scaleml records; the views drawn from them."""

from __future__ import annotations

from typing import Any

import dask
import httpx
import numpy as np
from distributed import Client

from scaleml.dashboard import _views
from scaleml.dashboard._events import small
from scaleml.dashboard._store import PLUGIN_NAME, Store


def _flood(n: int, dask_scheduler: Any = None) -> dict[str, Any]:
    for i in range(n):
        dask_scheduler.log_event(
            "scaleml-job", {"event": "progress", "id": f"flood{i % 7}", "n": i}
        )
    store = dask_scheduler.plugins[PLUGIN_NAME].store
    count, kept = store.records("job")
    return {
        "count": count,
        "kept": len(kept),
        "max": store.max_records,
        "first": kept[0].get("n") if kept else None,
        "last": kept[-1].get("n") if kept else None,
        "dask_kept": len(dask_scheduler.get_events("scaleml-job")),
    }


def test_the_scheduler_keeps_at_most_the_configured_number_of_records(
    client: Client, pages: str
) -> None:
    before = client.run_on_scheduler(_flood, 0)["count"]
    out = client.run_on_scheduler(_flood, 100_000)
    assert out["count"] == before + 100_000
    assert out["kept"] == out["max"] == 10_000  # the default SCALEML_DASHBOARD_MAX_RECORDS
    assert (out["first"], out["last"]) == (90_000, 99_999)  # the oldest were dropped
    assert out["dask_kept"] <= dask.config.get("distributed.admin.low-level-log-length")
    # the route pages poll for new records answers from the bounded store
    answer = httpx.get(
        f"{pages}api/events/job.json", params={"since": out["count"] - 5}, timeout=60
    ).json()
    assert [r["n"] for r in answer["records"]] == list(range(99_995, 100_000))
    assert (
        httpx.get(f"{pages}api/events/job.json", params={"since": "x"}, timeout=60).status_code
        == 400
    )
    assert httpx.get(f"{pages}api/events/nothing.json", timeout=60).status_code == 404


def test_a_store_drops_its_oldest_records_and_refuses_a_bad_size() -> None:
    store = Store(max_records=3)
    for i in range(5):
        store.add("search", {"id": "s", "event": "trial", "n": i})
    store.add("search", "not a record")
    assert [r["n"] for r in store.records("search")[1]] == [2, 3, 4]
    assert store.records("search", since=4)[1] == [{"id": "s", "event": "trial", "n": 4}]
    for bad in (0, -1, 2.5, True):
        try:
            Store(max_records=bad)  # type: ignore[arg-type]
        except ValueError as exc:
            assert "max_records" in str(exc)
        else:
            raise AssertionError(f"Store(max_records={bad!r}) was accepted")


def test_records_are_made_small_before_they_leave() -> None:
    record = small({"params": {f"p{i}": np.float64(i) for i in range(500)}, "x": float("nan")})
    assert len(record["params"]) == 201 and record["params"]["..."] == 300
    assert record["params"]["p3"] == 3.0 and record["x"] is None
    assert len(small("y" * 10_000)) == 160


def test_search_views_from_records_that_arrive_out_of_order() -> None:
    records = [
        {"event": "trial", "id": "s1", "model": 1, "calls": 3, "score": 0.7, "bracket": 1},
        {"event": "start", "id": "s1", "name": "Hyperband", "time": 10.0, "scoring": "accuracy"},
        {"event": "trial", "id": "s1", "model": 1, "calls": 1, "score": 0.5, "bracket": 1},
        {"event": "trial", "id": "s1", "model": 0, "calls": 1, "score": 0.6, "bracket": 0},
        {"event": "note", "id": "s1", "models": {"0": {"alpha": 0.1}}, "trial_runs": {"1": "r1"}},
    ]
    lines = _views.search_lines(_views.activities(records)["s1"])
    assert lines["xs"] == [[1, 3], [1]] and lines["ys"] == [[0.5, 0.7], [0.6]]
    assert lines["label"] == ["bracket 1", "bracket 0"] and lines["color"][0] != lines["color"][1]
    assert _views.search_best(_views.activities(records)["s1"])["text"] == ["best 0.7 (model 1)"]
    trials = _views.search_trials(_views.activities(records)["s1"])
    assert trials["model"] == ["1", "0"] and trials["run"] == ["r1", ""]
    assert trials["params"] == ["", "alpha=0.1"] and trials["stopped"] == ["", ""]
    finished = [*records, {"event": "end", "id": "s1", "status": "finished", "time": 12.0}]
    finished.append({"event": "note", "id": "s1", "stopped_early": ["0"]})
    assert _views.search_trials(_views.activities(finished)["s1"])["stopped"] == ["no", "yes"]
    assert _views.search_list(_views.activities(finished))["status"] == ["finished"]
