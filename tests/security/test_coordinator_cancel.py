"""Cancelling a running search does not wait for MLflow to catch up with the search's backlog:
trial runs still queued for creation when the search stops are never created (issue 11.8: a
cancel took 13.5 s, 245 s on a loaded machine, writing then killing every queued trial run)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from scaleml.tracking._trial_runs import TrialRuns


class _GatedClient(MlflowClient):
    """A real MLflow client whose first ``create_run`` waits for a gate: the backlog builds."""

    def __init__(self, uri: str, gate: threading.Event) -> None:
        super().__init__(uri)
        self.gate = gate

    def create_run(self, *args: Any, **kwargs: Any) -> Any:
        self.gate.wait(60)
        return super().create_run(*args, **kwargs)


def test_abort_skips_trial_runs_not_yet_created(tmp_path: Path) -> None:
    gate = threading.Event()
    client = _GatedClient(f"sqlite:///{tmp_path / 'mlflow.db'}", gate)
    experiment = client.create_experiment("cancel", artifact_location=str(tmp_path / "a"))
    gate.set()
    parent = client.create_run(experiment)
    gate.clear()
    trials = TrialRuns(client, experiment, parent.info.run_id)
    for model_id in range(20):
        trials.open(model_id, f"trial-{model_id}", {"alpha": model_id})
        trials.metric(model_id, "score", 0.5, 1)
    deadline = time.monotonic() + 30
    while trials._queue.qsize() > 39 and time.monotonic() < deadline:
        time.sleep(0.01)  # the first open is being written, blocked at the gate
    aborting = threading.Thread(target=trials.abort, args=("KILLED",))
    aborting.start()
    while trials._queue.qsize() < 40 and time.monotonic() < deadline:
        time.sleep(0.01)  # abort() has queued its stop
    gate.set()
    aborting.join(60)
    assert not aborting.is_alive()
    children = client.search_runs(
        [experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == 1  # the run being written; the 19 queued ones never created
    assert children[0].info.status == "KILLED"
    assert [m.value for m in client.get_metric_history(children[0].info.run_id, "score")] == [0.5]
