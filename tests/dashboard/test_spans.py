"""Work labelled by job: a job's tasks run in the span ``scaleml/job/<id>`` (and its training
in a span below it), so the dashboard attributes their time to it; two concurrent jobs are
told apart. Jobs run through the coordinator's runner on the session cluster, each with a
client of its own, as the coordinator does."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed import Client, LocalCluster

from scaleml.config import Settings
from scaleml.coordinator.runners import JobContext, run_job
from scaleml.coordinator.specs import parse_spec
from scaleml.data import write_synthetic
from tests.browser import Browser


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 rows in 4 blocks: the jobs are about their labels, not their work."""
    path = tmp_path_factory.mktemp("data") / "tiny"
    return write_synthetic(path, rows=4_000, features=4, block_rows=1_000, random_state=3)


def _train_spec(data: Path) -> Any:
    return parse_spec(
        {
            "kind": "train",
            "estimator": {"estimator": "SGDClassifier", "params": {"random_state": 0}},
            "dataset": {"path": str(data), "target": "target", "validation_fraction": 0.2},
            "epochs": 1,
        }
    )


def _spans(dask_scheduler: Any = None) -> list[dict[str, Any]]:
    spans = dask_scheduler.extensions["spans"].spans.values()
    return [
        {
            "name": list(span.name),
            "groups": sorted({group.name for group in span.traverse_groups()}),
            "execute_s": sum(
                v for k, v in span.cumulative_worker_metrics.items() if k[0] == "execute"
            ),
        }
        for span in spans
    ]


def test_each_job_runs_in_a_span_of_its_own(
    cluster: LocalCluster, client: Client, tiny_path: Path, settings: Settings, pages: str
) -> None:
    spec = _train_spec(tiny_path)
    results: dict[str, Any] = {}

    def job(job_id: str) -> None:
        with Client(cluster.scheduler_address) as own:
            context = JobContext(job_id=job_id, settings=settings, client=own)
            results[job_id] = run_job(spec, context)

    ids = ["jobalpha", "jobbeta"]
    threads = [threading.Thread(target=job, args=(job_id,)) for job_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == set(ids)

    spans = {tuple(s["name"]): s for s in client.run_on_scheduler(_spans)}
    for job_id in ids:
        assert ("scaleml", "job", job_id) in spans
        [training] = [n for n in spans if n[:3] == ("scaleml", "job", job_id) and len(n) == 6]
        assert training[3:5] == ("scaleml", "training")
        # the training's tasks, with readable prefixes, carry the job's span, with their time
        groups = spans[training]["groups"]
        assert any(g.startswith("fit_blocks-sgdclassifier-") for g in groups), groups
        assert any(g.startswith("score_blocks-sgdclassifier-") for g in groups), groups
        assert spans[training]["execute_s"] > 0
    # told apart: scaleml's task groups of each job are in its span only
    first, second = (
        {g for n, s in spans.items() if n[:3] == ("scaleml", "job", j) for g in s["groups"]}
        for j in ids
    )
    ours = [{g for g in groups if "-sgdclassifier-" in g} for groups in (first, second)]
    assert len(ours[0]) == len(ours[1]) == 3 and not ours[0] & ours[1], ours

    # the jobs page lists both, finished, with their MLflow runs
    jobs = httpx.get(f"{pages}api/jobs.json", timeout=60).json()
    rows = {j: (jobs["state"][i], jobs["run"][i]) for i, j in enumerate(jobs["id"])}
    for job_id in ids:
        assert rows[job_id] == ("finished", results[job_id]["run_id"])
    trainings = httpx.get(f"{pages}api/trainings.json", timeout=60).json()
    assert sum(run in trainings["run"] for run in (r["run_id"] for r in results.values())) == 2


_RENDERED = """() => !document.querySelector("script[src*='bokeh']")
    || (window.Bokeh && Bokeh.documents.length > 0)"""
"""A page without plots (no search yet) has no BokehJS; one with plots has rendered them."""


# after the jobs above, which filled the jobs and trainings pages (and test_serving, the
# serving page): every page renders its records in Chromium, without console errors
def test_the_index_links_every_page_and_each_page_renders(
    pages: str, browser: Browser, client: Client, shots: Path
) -> None:
    page = browser.open(pages)
    for name in ("Searches", "Trainings", "Jobs", "Serving"):
        page.get_by_role("link", name=name, exact=True).first.click()
        assert page.locator("h1").inner_text() == name
        page.wait_for_function(_RENDERED)
        page.wait_for_timeout(500)  # let the plots draw, for the screenshot
        page.screenshot(path=str(shots / f"{name.lower()}.png"), full_page=True)
        page.go_back()
    assert browser.errors == []
    assert httpx.get(pages.rstrip("/"), follow_redirects=False, timeout=60).status_code in (
        301,
        302,
    )
    assert httpx.get(f"{pages}api/nothing.json", timeout=60).status_code == 404
