"""End to end, on real ``scaleml serve`` processes: tritonclient with its DEFAULT options (binary
tensors in and out, model config), hostile binary bodies, probabilities in both protocols, and
the dask backend's in-process path for a lone small batch."""

from __future__ import annotations

import asyncio
import functools
import json
import struct
import uuid

import httpx
import mlflow
import numpy as np
import pytest
import tritonclient.http as triton
from distributed import Client
from sklearn.linear_model import LinearRegression

from scaleml.gateway._backends import DaskBackend
from tests.gateway.conftest import FEATURES, frame, log_and_register

pytestmark = pytest.mark.slow
T = 10.0
HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def regressor(store) -> str:
    name = f"reg-{uuid.uuid4().hex[:6]}"
    X = frame(200, 4)
    log_and_register(store, LinearRegression().fit(X, X.f0 * 2 - X.f1), name)
    return name


@pytest.fixture(scope="module")
def dask_gw(gateway_factory, models, regressor, store, client: Client):
    specs = [models["sklearn"], f"{models['xgboost']}/1", regressor]
    process = gateway_factory(specs, store, "dask", scheduler=client.scheduler.address)
    process.wait_ready()
    return process


@pytest.fixture(scope="module")
def local_gw(gateway_factory, models, regressor, store):
    """Through the FastAPI routes (no fast lane): both paths must behave the same."""
    specs = [models["sklearn"], regressor]
    process = gateway_factory(specs, store, "local", gateway_fast_lane="false")
    process.wait_ready()
    return process


@functools.cache
def _pyfunc(tracking_uri: str, uri: str):
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.pyfunc.load_model(uri)


def pyfunc_predict(store, uri: str, X) -> list:
    """The reference, ``mlflow.pyfunc.load_model(uri).predict(X)`` (each model loaded once)."""
    return np.asarray(_pyfunc(str(store.mlflow_tracking_uri), uri).predict(X)).tolist()


def raw_model(store, uri: str):
    return _pyfunc(str(store.mlflow_tracking_uri), uri).get_raw_model()


@pytest.mark.parametrize("gateway", ["dask_gw", "local_gw"])
def test_tritonclient_with_its_default_binary_tensors(request, gateway, models, store) -> None:
    url = request.getfixturevalue(gateway).url
    name = models["sklearn"]
    X = frame(30, seed=21)
    expected = pyfunc_predict(store, f"models:/{name}/1", X)
    probabilities = raw_model(store, f"models:/{name}/1").predict_proba(X)
    tc = triton.InferenceServerClient(url=url.removeprefix("http://"), network_timeout=T)
    try:
        assert tc.is_server_live() and tc.is_server_ready() and tc.is_model_ready(name)
        assert "binary_tensor_data" in tc.get_server_metadata()["extensions"]
        inputs = []
        for column in FEATURES:
            tensor = triton.InferInput(column, [len(X)], "FP64")
            tensor.set_data_from_numpy(X[column].to_numpy())  # defaults: binary
            inputs.append(tensor)
        # No outputs named: tritonclient asks for every output in binary.
        result = tc.infer(name, inputs)
        assert result.get_output("predictions")["parameters"]["binary_data_size"] == 8 * 30
        assert result.as_numpy("predictions").tolist() == expected
        # Named outputs, binary (the default) and JSON, with the probabilities.
        outputs = [
            triton.InferRequestedOutput("predictions"),
            triton.InferRequestedOutput("probabilities", binary_data=False),
        ]
        result = tc.infer(name, inputs, outputs=outputs, request_id="r1")
        assert result.get_response()["id"] == "r1"
        assert result.as_numpy("predictions").tolist() == expected
        probas = result.get_output("probabilities")
        assert "data" in probas and probas["parameters"]["classes"] == [0, 1]
        np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-12)
        # One binary matrix [n, 8] of FP32 holds every column.
        matrix = triton.InferInput("x", [len(X), 8], "FP32")
        matrix.set_data_from_numpy(X.to_numpy(np.float32))
        result = tc.infer(name, [matrix], outputs=[triton.InferRequestedOutput("predictions")])
        as_float32 = X.astype(np.float32).astype(np.float64)
        assert result.as_numpy("predictions").tolist() == pyfunc_predict(
            store, f"models:/{name}/1", as_float32
        )
        metadata = tc.get_model_metadata(name)
        assert [o["name"] for o in metadata["outputs"]] == ["predictions", "probabilities"]
        assert metadata["outputs"][1]["shape"] == [-1, 2]
        config = tc.get_model_config(name)
        assert config["name"] == name and config["max_batch_size"] == 0
        assert config["input"][0] == {"name": "f0", "data_type": "TYPE_FP64", "dims": [-1]}
        assert [o["name"] for o in config["output"]] == ["predictions", "probabilities"]
        assert config["output"][1]["data_type"] == "TYPE_FP64"
        assert tc.get_model_config(name, model_version="1")["name"] == name
    finally:
        tc.close()


def binary_request(tensors: list[dict], blobs: list[bytes]) -> tuple[bytes, int]:
    header = json.dumps({"inputs": tensors}).encode()
    return header + b"".join(blobs), len(header)


@pytest.mark.parametrize("gateway", ["dask_gw", "local_gw"])
def test_hostile_binary_bodies_are_400_naming_the_header_or_input(request, gateway, models) -> None:
    url, name = request.getfixturevalue(gateway).url, models["sklearn"]
    X = frame(3, seed=2)
    tensors = [
        {"name": c, "shape": [3], "datatype": "FP64", "parameters": {"binary_data_size": 24}}
        for c in FEATURES
    ]
    blobs = [X[c].to_numpy().tobytes() for c in FEATURES]
    body, length = binary_request(tensors, blobs)

    def post(data: bytes, header: str | None) -> httpx.Response:
        headers = {} if header is None else {HEADER: header}
        return httpx.post(f"{url}/v2/models/{name}/infer", content=data, headers=headers, timeout=T)

    assert post(body, str(length)).status_code == 200
    for header in (str(len(body) + 1), "-5", "12abc", "1e3"):
        answer = post(body, header)
        assert answer.status_code == 400, (header, answer.text)
        assert HEADER in answer.json()["error"], header
    short = post(body[:-8], str(length))  # the last input's bytes are cut
    assert short.status_code == 400 and "'f7'" in short.json()["error"]
    leftover = post(body + b"\0" * 8, str(length))
    assert leftover.status_code == 400 and HEADER in leftover.json()["error"]
    wrong_size = [dict(t) for t in tensors]
    wrong_size[2] = {**tensors[2], "parameters": {"binary_data_size": 16}}
    data, size = binary_request(wrong_size, [*blobs[:2], blobs[2][:16], *blobs[3:]])
    answer = post(data, str(size))
    assert answer.status_code == 400 and "'f2'" in answer.json()["error"]
    assert "does not match shape [3]" in answer.json()["error"]
    negative = [dict(t) for t in tensors]
    negative[4] = {**tensors[4], "parameters": {"binary_data_size": -24}}
    data, size = binary_request(negative, blobs)
    answer = post(data, str(size))
    assert answer.status_code == 400 and "'f4'" in answer.json()["error"]
    strings = [dict(t) for t in tensors]
    strings[1] = {**tensors[1], "datatype": "BYTES", "parameters": {"binary_data_size": 7}}
    data, size = binary_request(strings, [blobs[0], struct.pack("<I", 99) + b"abc", *blobs[2:]])
    answer = post(data, str(size))
    assert answer.status_code == 400 and "'f1'" in answer.json()["error"]


@pytest.mark.parametrize("gateway", ["dask_gw", "local_gw"])
def test_probabilities_over_both_protocols_and_regressors_refused(
    request, gateway, models, regressor, store
) -> None:
    url, name = request.getfixturevalue(gateway).url, models["sklearn"]
    X = frame(9, seed=31)
    probabilities = raw_model(store, f"models:/{name}/1").predict_proba(X)
    split = X.to_dict(orient="split")
    proba = {"predict_method": "predict_proba"}
    answer = httpx.post(
        f"{url}/models/{name}/invocations",
        json={"dataframe_split": split, "params": proba},
        timeout=T,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["classes"] == [0, 1] and body["model_version"] == "1"
    np.testing.assert_allclose(body["predictions"], probabilities, rtol=1e-12)
    labels = httpx.post(
        f"{url}/models/{name}/invocations",
        json={"dataframe_split": split, "params": {"predict_method": "predict"}},
        timeout=T,
    ).json()
    assert labels["predictions"] == pyfunc_predict(store, f"models:/{name}/1", X)
    for params, field in (
        ({"predict_method": "predict_proba"}, "params.predict_method"),
        ({"predict_method": "decision_function"}, "params.predict_method"),
        ({"temperature": 0.5}, "params.temperature"),
    ):
        target = regressor if params == proba else name
        refused = httpx.post(
            f"{url}/models/{target}/invocations",
            json={"dataframe_split": split, "params": params},
            timeout=T,
        )
        assert refused.status_code == 400, refused.text
        assert field in refused.json()["message"]
    v2_inputs = [
        {"name": c, "shape": [9], "datatype": "FP64", "data": X[c].tolist()} for c in FEATURES
    ]
    v2 = httpx.post(
        f"{url}/v2/models/{name}/infer",
        json={"inputs": v2_inputs, "outputs": [{"name": "probabilities"}]},
        timeout=T,
    ).json()
    (output,) = v2["outputs"]
    assert output["name"] == "probabilities" and output["shape"] == [9, 2]
    assert output["parameters"]["classes"] == [0, 1]
    np.testing.assert_allclose(np.reshape(output["data"], (9, 2)), probabilities, rtol=1e-12)
    v2_regressor = httpx.post(
        f"{url}/v2/models/{regressor}/infer",
        json={"inputs": v2_inputs, "outputs": [{"name": "probabilities"}]},
        timeout=T,
    )
    assert v2_regressor.status_code == 400 and "'probabilities'" in v2_regressor.json()["error"]
    unknown = httpx.post(
        f"{url}/v2/models/{name}/infer",
        json={"inputs": v2_inputs, "outputs": [{"name": "scores"}]},
        timeout=T,
    )
    assert unknown.status_code == 400 and "'scores'" in unknown.json()["error"]
    metadata = httpx.get(f"{url}/v2/models/{regressor}", timeout=T).json()
    assert [o["name"] for o in metadata["outputs"]] == ["predictions"]


def test_probabilities_of_an_xgboost_classifier_on_the_workers(dask_gw, models, store) -> None:
    name = models["xgboost"]
    X = frame(40, seed=41)
    probabilities = raw_model(store, f"models:/{name}/1").predict_proba(X)
    answer = httpx.post(
        f"{dask_gw.url}/models/{name}/invocations",
        json={
            "dataframe_records": X.to_dict(orient="records"),
            "params": {"predict_method": "predict_proba"},
        },
        timeout=T,
    )
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], probabilities, rtol=1e-6)


def _metric(url: str, prefix: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=T).text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def test_a_lone_small_request_is_predicted_in_process_and_batches_under_load_on_workers(
    dask_gw, models, store
) -> None:
    url, name = dask_gw.url, models["sklearn"]
    inprocess = f'scaleml_gateway_inprocess_batches_total{{model="{name}"}}'
    batches = f'scaleml_gateway_batch_requests_count{{model="{name}"}}'
    X = frame(64 * 4, seed=51)
    expected = pyfunc_predict(store, f"models:/{name}/1", X)
    before = _metric(url, inprocess)
    for i in range(5):  # one at a time: nothing else in flight
        payload = {"dataframe_split": X.iloc[i : i + 1].to_dict(orient="split")}
        answer = httpx.post(f"{url}/models/{name}/invocations", json=payload, timeout=T)
        assert answer.json()["predictions"] == expected[i : i + 1]
    assert _metric(url, inprocess) - before == 5
    big = httpx.post(
        f"{url}/models/{name}/invocations",
        json={"dataframe_split": X.iloc[:200].to_dict(orient="split")},
        timeout=T,
    )
    assert big.json()["predictions"] == expected[:200]
    assert _metric(url, inprocess) - before == 5  # 200 rows > 64: on a worker
    before_in, before_all = _metric(url, inprocess), _metric(url, batches)

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=T) as http:
            return await asyncio.gather(
                *(
                    http.post(
                        f"{url}/models/{name}/invocations",
                        json={"dataframe_split": X.iloc[i : i + 4].to_dict(orient="split")},
                    )
                    for i in range(0, 256, 4)
                )
            )

    answers = asyncio.run(send_all())
    for i, answer in zip(range(0, 256, 4), answers, strict=True):
        assert answer.json()["predictions"] == expected[i : i + 4]
    on_workers = (_metric(url, batches) - before_all) - (_metric(url, inprocess) - before_in)
    assert on_workers >= 1, "under load batches go to the workers"


def test_the_in_process_path_can_be_turned_off(models, store, client: Client) -> None:
    name = models["sklearn"]
    X = frame(3, seed=3)
    expected = pyfunc_predict(store, f"models:/{name}/1", X)
    settings = store.model_copy(update={"gateway_inprocess_max_rows": 0})
    in_process: list[int] = []

    async def predict_once() -> list:
        backend = DaskBackend(settings, client.scheduler.address)
        await backend.start()
        try:
            handle = await backend.load(f"models:/{name}/1")
            handle.on_inprocess = lambda: in_process.append(1)
            output = await handle.predict(FEATURES, [X[c].to_numpy() for c in FEATURES])
            await handle.unload()
            return output.tolist()
        finally:
            await backend.close()

    assert asyncio.run(predict_once()) == expected
    assert in_process == []
