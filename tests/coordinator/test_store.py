"""The job store on SQLite and PostgreSQL: schema, atomic claims, leases, cancels; and two
coordinator replicas on one database never running the same job."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster
from sqlalchemy import text

from scaleml.coordinator import RESTARTED, Coordinator, JobStore
from scaleml.errors import ConfigError
from tests.coordinator.conftest import coordinator_settings, train_spec, wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path, pg_database: Any) -> JobStore:
    url = f"sqlite:///{tmp_path / 'jobs.db'}" if request.param == "sqlite" else pg_database()
    job_store = JobStore(url)
    yield job_store
    job_store.close()


def _add(store: JobStore, n: int = 1) -> list[str]:
    return [store.add("train", {"kind": "train", "n": i}, "exp").id for i in range(n)]


def test_schema_is_created_versioned_and_reopened(store: JobStore) -> None:
    job_id = _add(store)[0]
    again = JobStore(store.url)
    assert again.get(job_id).state == "QUEUED"
    with again.engine.begin() as conn:
        conn.execute(text("UPDATE scaleml_schema_version SET version = 99"))
    with pytest.raises(ConfigError, match="schema version 99, newer than"):
        JobStore(store.url)
    again.close()


def test_postgresql_urls_use_psycopg_3() -> None:
    with pytest.raises(ConfigError, match="SCALEML_COORDINATOR_DB: not a database URL"):
        JobStore("not a url")


def test_claims_are_atomic_across_stores(store: JobStore) -> None:
    ids = _add(store, 30)
    other = JobStore(store.url)
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claim_all(job_store: JobStore, owner: str) -> None:
        while (job := job_store.claim_next(owner, lease_s=60)) is not None:
            with lock:
                claimed.append((job.id, owner))

    threads = [
        threading.Thread(target=claim_all, args=(s, f"replica-{i}"))
        for i, s in enumerate([store, other] * 3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    counts = Counter(job_id for job_id, _ in claimed)
    assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}
    for job_id, owner in claimed:
        job = store.get(job_id)
        assert job.state == "RUNNING" and job.owner == owner
        running_events = [e for e in store.events(job_id) if e.data.get("state") == "RUNNING"]
        assert len(running_events) == 1
    other.close()


def test_expired_lease_fails_the_job_and_its_old_holder_cannot_finish_it(store: JobStore) -> None:
    job_id = _add(store)[0]
    assert store.claim_next("dead-replica", lease_s=0.2).id == job_id
    assert store.fail_expired() == []
    time.sleep(0.4)
    assert store.fail_expired() == [job_id]
    job = store.get(job_id)
    assert job.state == "FAILED" and job.error == RESTARTED
    assert not store.finish(job_id, "dead-replica", "SUCCEEDED")
    assert store.get(job_id).state == "FAILED"


def test_heartbeat_keeps_a_lease(store: JobStore) -> None:
    job_id = _add(store)[0]
    store.claim_next("live-replica", lease_s=0.5)
    for _ in range(4):
        time.sleep(0.2)
        store.heartbeat("live-replica", [job_id], lease_s=0.5)
        assert store.fail_expired() == []
    assert store.get(job_id).state == "RUNNING"


def test_cancel_queued_at_once_and_running_by_request(store: JobStore) -> None:
    queued, running = _add(store, 2)
    assert store.claim_next("r", lease_s=60).id == queued  # oldest first
    store.request_cancel(running)  # still QUEUED: cancelled at once
    assert store.get(running).state == "CANCELLED"
    assert store.claim_next("r", lease_s=60) is None  # a cancelled job is never claimed
    job = store.request_cancel(queued)
    assert job.state == "RUNNING" and job.cancel_requested
    assert store.cancel_requests("r") == [queued]
    assert store.finish(queued, "r", "CANCELLED")
    assert [e.data.get("state") for e in store.events(queued) if e.type == "state"] == [
        "QUEUED",
        "RUNNING",
        "CANCELLED",
    ]


@pytest.mark.slow
def test_two_coordinators_never_run_the_same_job(
    cluster: LocalCluster,
    mlflow_uri: str,
    pg_database: Any,
    jobs_data: Path,
    tmp_path: Path,
) -> None:
    db = pg_database("replicas")
    replicas = [
        Coordinator(
            coordinator_settings(
                cluster, mlflow_uri, db, tmp_path / str(i), coordinator_max_running_jobs=2
            )
        )
        for i in range(2)
    ]
    # Two trainings in one experiment on one dataset (they record the same MLflow dataset at
    # once), and eight jobs that fail fast (a missing file) to make many claims race.
    spec = train_spec(jobs_data, experiment=f"replicas-{uuid.uuid4().hex[:8]}")
    failing = train_spec(tmp_path / "missing")
    specs = [spec, spec, *[failing] * 8]
    ids = [replicas[0].store.add("train", s, "replicas").id for s in specs]
    for replica in replicas:
        replica.start()
    try:
        for job_id in ids:
            wait_for(
                lambda job_id=job_id: (
                    replicas[1].store.get(job_id).state in ("SUCCEEDED", "FAILED")
                ),
                120,
                what=f"job {job_id}",
            )
    finally:
        for replica in replicas:
            replica.stop()
    store = JobStore(db)
    owners = Counter()
    for job_id in ids:
        runs = [e for e in store.events(job_id) if e.data.get("state") == "RUNNING"]
        assert len(runs) == 1, f"job {job_id} was started {len(runs)} times"
        owners[runs[0].data["owner"]] += 1
    assert set(owners) <= {replica.replica for replica in replicas}
    assert sum(owners.values()) == len(ids)
    states = [store.get(job_id).state for job_id in ids]
    assert states == ["SUCCEEDED"] * 2 + ["FAILED"] * 8
    store.close()


def test_non_finite_numbers_are_stored_as_null(store: JobStore) -> None:
    job_id = _add(store)[0]
    store.claim_next("r", lease_s=60)
    nan = float("nan")
    assert store.report(job_id, "r", "progress", {"best_score": nan}, best_score=nan)
    assert store.finish(
        job_id, "r", "SUCCEEDED", result={"best_score": nan, "scores": [1.0, float("inf")]}
    )
    job = store.get(job_id)
    assert job.best_score is None and job.result == {"best_score": None, "scores": [1.0, None]}
    assert store.events(job_id)[-2].data == {"best_score": None}
