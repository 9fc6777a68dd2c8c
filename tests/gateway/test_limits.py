"""Backpressure and time limits against a real gateway process serving a model whose predict
takes half a second (a real MLflow pyfunc model logged from code)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import mlflow
import pytest

from scaleml.tracking import Tracker, register
from tests.gateway.conftest import SLOW_MODEL, frame

pytestmark = pytest.mark.slow
T = 10.0


@pytest.fixture(scope="module")
def slow_gateway(gateway_factory, store):
    name = f"slow-{uuid.uuid4().hex[:6]}"
    tracker = Tracker(store)
    with tracker.run(name) as run, mlflow.start_run(run_id=run.run_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(SLOW_MODEL), input_example=frame(2)
        )
    register(info.model_uri, name, tracker=tracker)
    process = gateway_factory(
        [name],
        store,
        "local",
        gateway_max_queue="2",
        gateway_max_batch_size="1",
        gateway_request_timeout_s="0.3",
    )
    process.wait_ready()
    return process


def test_a_full_queue_answers_503_with_retry_after_at_once_and_slow_ones_504(
    slow_gateway,
) -> None:
    payload = {"dataframe_split": frame(1).to_dict(orient="split")}

    async def burst() -> list[tuple[httpx.Response, float]]:
        async with httpx.AsyncClient(timeout=T) as http:

            async def one() -> tuple[httpx.Response, float]:
                loop = asyncio.get_running_loop()
                start = loop.time()
                answer = await http.post(f"{slow_gateway.url}/invocations", json=payload)
                return answer, loop.time() - start

            return await asyncio.gather(*(one() for _ in range(10)))

    answers = asyncio.run(burst())
    statuses = sorted(a.status_code for a, _ in answers)
    # One request in flight and two queued (each waits 0.3 s, then 504); the rest: 503 at once.
    assert statuses.count(503) >= 7 and statuses.count(504) >= 1, statuses
    assert set(statuses) <= {503, 504}
    # "At once": every 503 came back before the first 504, which waited out the time limit
    # (relative, not a duration: a loaded machine slows both).
    first_504 = min(seconds for answer, seconds in answers if answer.status_code == 504)
    for answer, seconds in answers:
        body = answer.json()
        if answer.status_code == 503:
            assert answer.headers["Retry-After"] == "1"
            assert (
                body["error_code"] == "TEMPORARILY_UNAVAILABLE"
                and "queue is full" in body["message"]
            )
            assert seconds < first_504
        else:
            assert body["error_code"] == "DEADLINE_EXCEEDED" and "0.3 s" in body["message"]


def test_v2_time_limit_errors_use_the_v2_body(slow_gateway) -> None:
    name = httpx.get(f"{slow_gateway.url}/version", timeout=T).json()["models"]
    (model,) = name
    tensors = [{"name": f"f{i}", "shape": [1], "datatype": "FP64", "data": [0.5]} for i in range(8)]
    answer = httpx.post(
        f"{slow_gateway.url}/v2/models/{model}/infer", json={"inputs": tensors}, timeout=T
    )
    assert answer.status_code == 504 and set(answer.json()) == {"error"}
