"""End to end: real ``scaleml serve`` processes, the session's LocalCluster, a SQLite MLflow
store. Predictions equal ``mlflow.pyfunc.load_model(...).predict``; MLflow's and Triton's
clients work; errors name the problem; batching; a worker killed under load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from distributed import Client
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from scaleml.gateway import serve_in_background
from tests.gateway.conftest import FEATURES, frame, pyfunc_predict

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T = 10.0  # seconds: every request is bounded


@pytest.fixture(scope="module")
def dask_gateway(gateway_factory, models, store, client: Client):
    """Both models on the session's 2 workers, behind a bearer token."""
    specs = [models["sklearn"], f"{models['xgboost']}/1"]
    process = gateway_factory(
        specs,
        store,
        "dask",
        scheduler=client.scheduler.address,
        gateway_token=TOKEN,
        gateway_max_body_bytes="200000",
    )
    process.wait_ready()
    return process


@pytest.fixture(scope="module")
def local_gateway(gateway_factory, models, store):
    """The scikit-learn model in the gateway process, through the FastAPI routes (no fast
    lane): the same behaviour is asserted of both paths."""
    process = gateway_factory(
        [models["sklearn"]],
        store,
        "local",
        gateway_fast_lane="false",
        gateway_max_body_bytes="200000",
    )
    process.wait_ready()
    return process


def invocations(url: str, model: str, payload, content_type="application/json", **kw):
    data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    headers = {"Content-Type": content_type, **AUTH, **kw.pop("headers", {})}
    return httpx.post(f"{url}/models/{model}/invocations", content=data, headers=headers, timeout=T)


def mlflow_payloads(X):
    records = X.to_dict(orient="records")
    return {
        "dataframe_split": ({"dataframe_split": X.to_dict(orient="split")}, "application/json"),
        "dataframe_records": ({"dataframe_records": records}, "application/json"),
        "instances": ({"instances": records}, "application/json"),
        "inputs": ({"inputs": {c: X[c].tolist() for c in X.columns}}, "application/json"),
        "csv": (X.to_csv(index=False), "text/csv"),
    }


@pytest.mark.parametrize("flavor", ["sklearn", "xgboost"])
@pytest.mark.parametrize("n_rows", [1, 37])
def test_invocations_in_every_format_equal_pyfunc_predict(
    dask_gateway, models, store, flavor, n_rows
) -> None:
    name = models[flavor]
    X = frame(n_rows, seed=n_rows)
    expected = pyfunc_predict(store, f"models:/{name}/1", X)
    for label, (payload, content_type) in mlflow_payloads(X).items():
        answer = invocations(dask_gateway.url, name, payload, content_type)
        assert answer.status_code == 200, (label, answer.text)
        assert answer.json() == {"predictions": expected, "model_version": "1"}, label
        assert answer.headers["X-Model-Version"] == "1"


@pytest.mark.parametrize(
    ("gateway", "flavor"),
    [("dask_gateway", "sklearn"), ("dask_gateway", "xgboost"), ("local_gateway", "sklearn")],
)
@pytest.mark.parametrize("n_rows", [1, 50])
def test_v2_infer_equals_pyfunc_predict(request, gateway, models, store, flavor, n_rows) -> None:
    dask_gateway = request.getfixturevalue(gateway)
    name = models[flavor]
    X = frame(n_rows, seed=100 + n_rows)
    expected = pyfunc_predict(store, f"models:/{name}/1", X)
    per_column = [
        {"name": c, "shape": [n_rows], "datatype": "FP64", "data": X[c].tolist()} for c in FEATURES
    ]
    matrix = [{"name": "x", "shape": [n_rows, 8], "datatype": "FP64", "data": X.values.tolist()}]
    for inputs in (per_column, matrix):
        answer = httpx.post(
            f"{dask_gateway.url}/v2/models/{name}/versions/1/infer",
            json={"id": "req-7", "inputs": inputs},
            headers=AUTH,
            timeout=T,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["id"] == "req-7" and body["model_name"] == name
        assert body["model_version"] == "1"
        (output,) = body["outputs"]
        assert output["shape"] == [n_rows] and output["data"] == expected


def test_tritonclient_http_speaks_to_v2(dask_gateway, models, store) -> None:
    name = models["xgboost"]
    X = frame(20, seed=3)
    host = dask_gateway.url.removeprefix("http://")
    tc = triton.InferenceServerClient(url=host, connection_timeout=T, network_timeout=T)
    try:
        assert tc.is_server_live(headers=AUTH) and tc.is_server_ready(headers=AUTH)
        assert tc.is_model_ready(name, headers=AUTH)
        metadata = tc.get_model_metadata(name, headers=AUTH)
        assert metadata["versions"] == ["1"]
        assert [i["name"] for i in metadata["inputs"]] == FEATURES
        inputs = []
        for column in FEATURES:
            tensor = triton.InferInput(column, [len(X)], "FP64")
            tensor.set_data_from_numpy(X[column].to_numpy(), binary_data=False)
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput("predictions", binary_data=False)]
        result = tc.infer(name, inputs, outputs=outputs, headers=AUTH)
        expected = pyfunc_predict(store, f"models:/{name}/1", X)
        assert result.as_numpy("predictions").tolist() == expected
    finally:
        tc.close()


def test_mlflow_scoring_server_client_works(local_gateway, models, store) -> None:
    host, port = local_gateway.url.removeprefix("http://").split(":")
    scoring = ScoringServerClient(host, int(port))
    scoring.wait_server_ready(timeout=T)
    X = frame(12, seed=5)
    response = scoring.invoke(X)
    expected = pyfunc_predict(store, f"models:/{models['sklearn']}@champion", X)
    assert np.asarray(response.get_predictions()).ravel().tolist() == expected
    one_model = httpx.post(
        f"{local_gateway.url}/invocations",
        json={"dataframe_split": X.to_dict(orient="split")},
        timeout=T,
    )
    assert one_model.json()["predictions"] == expected


def test_concurrent_requests_share_predict_calls_and_each_gets_its_own_rows(
    local_gateway, models, store
) -> None:
    X = frame(64 * 3, seed=9)
    expected = pyfunc_predict(store, f"models:/{models['sklearn']}/1", X)
    before = _batches(local_gateway.url, models["sklearn"])

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=T) as http:
            requests = [
                http.post(
                    f"{local_gateway.url}/invocations",
                    json={"dataframe_split": X.iloc[3 * i : 3 * i + 3].to_dict(orient="split")},
                )
                for i in range(64)
            ]
            return await asyncio.gather(*requests)

    answers = asyncio.run(send_all())
    assert all(a.status_code == 200 for a in answers)
    for i, answer in enumerate(answers):
        assert answer.json()["predictions"] == expected[3 * i : 3 * i + 3]
    after = _batches(local_gateway.url, models["sklearn"])
    assert after[1] - before[1] == 64  # requests
    assert after[0] - before[0] < 64  # predict calls


def _batches(url: str, model: str) -> tuple[float, float]:
    text = httpx.get(f"{url}/metrics", timeout=T).text
    count = total = 0.0
    for line in text.splitlines():
        if line.startswith(f'scaleml_gateway_batch_requests_count{{model="{model}"}}'):
            count = float(line.split()[-1])
        if line.startswith(f'scaleml_gateway_batch_requests_sum{{model="{model}"}}'):
            total = float(line.split()[-1])
    return count, total


@pytest.mark.parametrize("gateway", ["dask_gateway", "local_gateway"])
def test_errors_are_4xx_naming_the_problem_in_each_protocol(request, gateway, models) -> None:
    url, name = request.getfixturevalue(gateway).url, models["sklearn"]
    record = dict.fromkeys(FEATURES, 0.5)
    missing = invocations(url, name, {"dataframe_records": [{**record, "f3": None} | {}]})
    assert missing.status_code == 400
    assert missing.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'f3'" in missing.json()["message"]
    extra = invocations(url, name, {"dataframe_records": [{**record, "zz": 1}]})
    assert extra.status_code == 400 and "'zz'" in extra.json()["message"]
    text = invocations(url, name, {"dataframe_records": [{**record, "f5": "high"}]})
    assert text.status_code == 400 and "'f5': expected double" in text.json()["message"]
    v2 = httpx.post(
        f"{url}/v2/models/{name}/infer",
        json={"inputs": [{"name": "f0", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
        headers=AUTH,
        timeout=T,
    )
    assert v2.status_code == 400 and "'f1' is missing" in v2.json()["error"]
    assert set(v2.json()) == {"error"}
    wrong_type = invocations(url, name, "f0\n1\n", content_type="text/plain")
    assert wrong_type.status_code == 415 and "text/plain" in wrong_type.json()["message"]
    csv_to_v2 = httpx.post(
        f"{url}/v2/models/{name}/infer",
        content=b"f0\n1\n",
        headers={"Content-Type": "text/csv", **AUTH},
        timeout=T,
    )
    assert csv_to_v2.status_code == 415 and "error" in csv_to_v2.json()
    big = {"dataframe_split": frame(3000).to_dict(orient="split")}  # > 200,000 bytes
    too_large = invocations(url, name, big)
    assert too_large.status_code == 413 and "limit of 200,000" in too_large.json()["message"]
    unknown = invocations(url, "no-such-model", {"inputs": record})
    assert unknown.status_code == 404 and "no-such-model" in unknown.json()["message"]
    old_version = httpx.get(f"{url}/v2/models/{name}/versions/99", headers=AUTH, timeout=T)
    assert old_version.status_code == 404 and "99" in old_version.json()["error"]


def test_the_bearer_token_is_required_except_for_health(dask_gateway, models) -> None:
    url, name = dask_gateway.url, models["sklearn"]
    payload = json.dumps({"inputs": dict.fromkeys(FEATURES, 0.5)})
    headers = {"Content-Type": "application/json"}
    none = httpx.post(
        f"{url}/models/{name}/invocations", content=payload, headers=headers, timeout=T
    )
    assert none.status_code == 401 and none.headers["WWW-Authenticate"] == "Bearer"
    assert none.json()["error_code"] == "UNAUTHENTICATED"
    wrong = httpx.post(
        f"{url}/v2/models/{name}/infer",
        content=b"{}",
        headers={"Authorization": "Bearer nope"},
        timeout=T,
    )
    assert wrong.status_code == 401 and "bearer token" in wrong.json()["error"]
    assert httpx.get(f"{url}/v2/models/{name}", timeout=T).status_code == 401
    for path in ("/ping", "/health", "/v2/health/live", "/v2/health/ready", "/metrics"):
        assert httpx.get(f"{url}{path}", timeout=T).status_code == 200, path
    assert httpx.get(f"{url}/docs", timeout=T).status_code == 200
    spec = httpx.get(f"{url}/openapi.json", timeout=T).json()
    assert "/invocations" in spec["paths"] and "/v2/models/{name}/infer" in spec["paths"]


def test_metrics_report_requests_latency_batches_queue_and_version(dask_gateway, models) -> None:
    invocations(dask_gateway.url, models["sklearn"], {"inputs": dict.fromkeys(FEATURES, 0.1)})
    text = httpx.get(f"{dask_gateway.url}/metrics", timeout=T).text
    name = models["sklearn"]
    for needle in (
        f'scaleml_gateway_requests_total{{model="{name}",protocol="mlflow",status="200"}}',
        f'scaleml_gateway_request_seconds_bucket{{le="0.05",model="{name}"}}',
        f'scaleml_gateway_batch_rows_count{{model="{name}"}}',
        f'scaleml_gateway_queue_depth{{model="{name}"}}',
        f'scaleml_gateway_inflight_batches{{model="{name}"}}',
        f'scaleml_gateway_model_version{{model="{name}",version="1"}} 1.0',
    ):
        assert needle in text, needle


def test_each_request_gets_a_structured_access_log_line(dask_gateway, models) -> None:
    name = models["sklearn"]
    answer = invocations(dask_gateway.url, name, {"inputs": dict.fromkeys(FEATURES, 0.2)})
    assert answer.status_code == 200
    path = f"/models/{name}/invocations"
    deadline = time.monotonic() + 5
    found: list[dict] = []
    while not found and time.monotonic() < deadline:
        for line in list(dask_gateway.lines):
            if line.startswith("{") and f'"path":"{path}","status":200' in line:
                found.append(json.loads(line))
        time.sleep(0.05)
    assert found, "no access-log line for the request"
    record = found[-1]
    assert record["method"] == "POST" and record["status"] == 200
    assert record["model"] == name and record["version"] == "1" and record["ms"] > 0
    assert record["client"].startswith("127.0.0.1:")


@pytest.mark.parametrize("on_cluster", [False, True])
def test_serve_in_background_for_the_demo(models, store, client: Client, on_cluster) -> None:
    X = frame(5, seed=13)
    name = models["xgboost"]
    gateway = serve_in_background(
        [f"{name}/1"], store, client=client if on_cluster else None, port=0
    )
    try:
        assert gateway.url.startswith("http://127.0.0.1:")
        backend = httpx.get(f"{gateway.url}/version", timeout=T).json()["backend"]
        assert backend == ("dask" if on_cluster else "local")
        answer = httpx.post(
            f"{gateway.url}/invocations",
            json={"dataframe_split": X.to_dict(orient="split")},
            timeout=T,
        )
        assert answer.json()["predictions"] == pyfunc_predict(store, f"models:/{name}/1", X)
    finally:
        gateway.stop()
    gateway.wait()  # returns at once: the server thread has ended
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gateway.url}/ping", timeout=T)


def test_a_worker_killed_under_load_costs_no_hung_request(
    dask_gateway, models, client: Client
) -> None:
    """Runs last in this module: it kills one of the session's workers (its nanny restarts it)."""
    url, name = dask_gateway.url, models["xgboost"]
    X = frame(4, seed=11)
    payload = json.dumps({"dataframe_split": X.to_dict(orient="split")})
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    statuses: list[int] = []
    killed_at: list[float] = []

    async def load(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        headers = {"Content-Type": "application/json", **AUTH}
        async with httpx.AsyncClient(timeout=T) as http:

            async def user() -> None:
                while time.monotonic() < deadline:
                    answer = await http.post(
                        f"{url}/models/{name}/invocations/".rstrip("/"),
                        content=payload,
                        headers=headers,
                    )
                    statuses.append(answer.status_code)
                    if answer.status_code == 503:
                        assert "Retry-After" in answer.headers or "worker" in answer.text

            async def killer() -> None:
                await asyncio.sleep(1.0)
                os.kill(pids[victim], signal.SIGKILL)
                killed_at.append(len(statuses))

            await asyncio.gather(killer(), *(user() for _ in range(8)))

    started = time.monotonic()
    asyncio.run(load(5.0))  # httpx raises on any request slower than T: none may hang
    assert time.monotonic() - started < 5.0 + T
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    after = statuses[killed_at[0] :]
    assert after.count(200) > 0, "the gateway recovered on the surviving worker"
    client.wait_for_workers(2, timeout=60)
