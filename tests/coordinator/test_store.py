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
from mlflow import MlflowClient
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


def test_expired_attempts_are_retried_up_to_max_attempts_then_failed_with_every_reason(
    store: JobStore,
) -> None:
    job_id = store.add("search", {"kind": "search"}, "exp", max_attempts=2).id
    assert store.claim_next("dead-1", lease_s=0.2).attempt == 1
    time.sleep(0.4)
    assert store.fail_expired() == [job_id]
    job = store.get(job_id)
    assert (job.state, job.attempt, job.max_attempts, job.owner) == ("QUEUED", 2, 2, None)
    assert job.error is None and "retrying" in job.message
    assert not store.finish(job_id, "dead-1", "SUCCEEDED")  # the dead attempt cannot end it
    assert store.heartbeat("dead-1", [job_id], lease_s=60) == []  # nor renew a lease on it
    assert store.claim_next("dead-2", lease_s=0.2).attempt == 2
    time.sleep(0.4)
    assert store.fail_expired() == [job_id]
    job = store.get(job_id)
    assert (job.state, job.attempt) == ("FAILED", 2)
    assert job.error == f"attempt 1: {RESTARTED}; attempt 2: {RESTARTED}"
    assert store.claim_next("r", lease_s=60) is None
    events = [(e.type, e.data.get("state"), e.data.get("attempt")) for e in store.events(job_id)]
    assert events == [
        ("state", "QUEUED", None),
        ("state", "RUNNING", 1),
        ("retrying", None, 1),
        ("state", "QUEUED", 2),
        ("state", "RUNNING", 2),
        ("state", "FAILED", 2),
    ]


def test_own_errors_are_not_retried_but_keep_earlier_attempts_reasons(store: JobStore) -> None:
    job_id = store.add("train", {"kind": "train"}, "exp", max_attempts=3).id
    store.claim_next("dead", lease_s=0.2)
    time.sleep(0.4)
    store.fail_expired()
    store.claim_next("live", lease_s=60)
    assert store.finish(job_id, "live", "FAILED", error="ValueError: bad data")
    job = store.get(job_id)
    assert (job.state, job.attempt) == ("FAILED", 2)
    assert job.error == f"attempt 1: {RESTARTED}; attempt 2: ValueError: bad data"
    assert store.claim_next("live", lease_s=60) is None


def test_a_cancel_requested_before_the_holder_died_is_final(store: JobStore) -> None:
    job_id = store.add("train", {"kind": "train"}, "exp", max_attempts=3).id
    store.claim_next("dead", lease_s=0.2)
    store.request_cancel(job_id)
    time.sleep(0.4)
    assert store.fail_expired() == [job_id]
    assert (store.get(job_id).state, store.get(job_id).attempt) == ("CANCELLED", 1)
    assert store.claim_next("live", lease_s=60) is None


def test_a_store_created_by_schema_1_gains_the_attempt_columns(store: JobStore) -> None:
    job_id = _add(store)[0]
    with store.engine.begin() as conn:  # the tables as scaleml with schema 1 created them
        conn.execute(text("ALTER TABLE scaleml_jobs DROP COLUMN attempt"))
        conn.execute(text("ALTER TABLE scaleml_jobs DROP COLUMN max_attempts"))
        conn.execute(text("DELETE FROM scaleml_schema_version"))
        conn.execute(text("INSERT INTO scaleml_schema_version (version) VALUES (1)"))
    store.close()
    migrated = JobStore(store.url)
    job = migrated.claim_next("r", lease_s=60)
    assert job.id == job_id and (job.attempt, job.max_attempts) == (1, 1)  # as before: no retry
    assert migrated.add("train", {}, "exp", max_attempts=2).max_attempts == 2
    with migrated.engine.begin() as conn:
        versions = conn.execute(text("SELECT version FROM scaleml_schema_version")).scalars()
        assert sorted(versions) == [1, 2]
    migrated.close()


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
                cluster,
                mlflow_uri,
                db,
                tmp_path / str(i),
                coordinator_max_running_jobs=2,
                # A lease of 6 s: at 0.5 s (1.5 s) a loaded machine delayed a heartbeat past
                # it and the other replica failed a healthy training as abandoned.
                coordinator_heartbeat_s=2.0,
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


@pytest.mark.slow
def test_a_replica_whose_attempt_was_taken_stops_it_before_running_the_next_one(
    cluster: LocalCluster, mlflow_uri: str, pg_database: Any, jobs_data: Path, tmp_path: Path
) -> None:
    """A replica that stalled past its lease (here: its lease is expired by hand) and had its
    attempt re-queued by another one stops that attempt, records nothing for it, and runs the
    next attempt only after the first one ended: never two attempts of a job at once."""
    settings = coordinator_settings(cluster, mlflow_uri, pg_database("lost"), tmp_path)
    replica = Coordinator(settings)
    other = JobStore(settings.coordinator_db)
    job_id = other.add("train", train_spec(jobs_data, epochs=100_000), "lost", max_attempts=2).id
    replica.start()
    try:
        wait_for(lambda: (other.get(job_id).progress or 0) > 0, 120, what="attempt 1 to run")
        first_run = other.get(job_id).mlflow_run_id

        def take_over() -> bool:
            with other.engine.begin() as conn:
                conn.execute(text("UPDATE scaleml_jobs SET lease_expires = 0"))
            return other.end_attempt(job_id, 1) == "QUEUED"

        wait_for(take_over, 30, what="the attempt to be taken over")
        wait_for(lambda: other.get(job_id).attempt == 2 and other.get(job_id).mlflow_run_id,
                 120, what="attempt 2 to run")  # fmt: skip
        other.request_cancel(job_id)
        wait_for(lambda: other.get(job_id).state == "CANCELLED", 60, what="the cancel")
    finally:
        replica.stop()
    events = [(e.type, e.data.get("state"), e.data.get("attempt")) for e in other.events(job_id)]
    assert [e for e in events if e[0] != "progress"] == [
        ("state", "QUEUED", None), ("state", "RUNNING", 1), ("retrying", None, 1),
        ("state", "QUEUED", 2), ("state", "RUNNING", 2), ("cancel_requested", None, None),
        ("state", "CANCELLED", None),
    ]  # fmt: skip
    tracking = MlflowClient(mlflow_uri)
    first, second = tracking.get_run(first_run), tracking.get_run(other.get(job_id).mlflow_run_id)
    assert first.info.status == "KILLED" and first.data.tags["scaleml.attempt"] == "1"
    assert second.data.tags["scaleml.attempt"] == "2"
    assert first.info.end_time <= second.info.start_time
    other.close()


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
