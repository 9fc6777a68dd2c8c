"""A search's tasks pinned to a worker that is gone run elsewhere: also when the worker was
gone before the task was pinned to it (a view of the cluster a moment old), which no
"a worker left" notice will ever report."""

from __future__ import annotations

import time
import uuid

import pytest
from distributed import Client

from scaleml.search._pins import PINNED, Unpinner, wait_pinned

GONE = "tcp://127.0.0.1:9"  # no worker listens there (the discard port)


def add(a: int, b: int) -> int:
    return a + b


@pytest.mark.timeout(60)
def test_a_task_pinned_to_a_worker_already_gone_still_runs(client: Client) -> None:
    token = uuid.uuid4().hex[:8]
    first = client.submit(add, 1, 2, key=f"first-{token}", workers=[GONE], **PINNED)
    second = client.submit(add, first, 3, key=f"second-{token}", workers=[GONE], **PINNED)
    wait_pinned(client, [second], token, every=0.2)
    assert second.result() == 6
    assert first.result() == 3


@pytest.mark.timeout(60)
def test_the_unpinner_frees_tasks_pinned_after_its_last_look_at_the_workers(
    client: Client,
) -> None:
    token = uuid.uuid4().hex[:8]
    unpinner = Unpinner(client, token, sweep_seconds=2.0)
    unpinner.check()  # sweeps once; the workers have not changed since
    stuck = client.submit(add, 2, 2, key=f"late-{token}", workers=[GONE], **PINNED)
    with pytest.raises(TimeoutError):
        stuck.result(timeout=1)  # no worker may take it
    time.sleep(1.5)  # over 2 s since the sweep: the next one is due
    assert unpinner.check() == set()  # no worker left meanwhile
    assert stuck.result(timeout=30) == 4
