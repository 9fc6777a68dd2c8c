"""The gateway explains what it predicts: ``/explain``, ``/models/NAME/explain`` and
``/v2/models/NAME/explain`` on a real uvicorn process (dask backend, the session's workers)
return contributions equal to ``scaleml.insight.explain`` on the same rows, batch concurrent
requests, refuse bad input with a 4xx naming the column, keep answering through a hot swap,
speak tritonclient's default binary tensors, and refuse (409, naming what is missing) to
explain a model logged without its explanation background."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
import xgboost
from distributed import Client
from sklearn.linear_model import LogisticRegression

from scaleml.config import Settings
from scaleml.data import Dataset, write_synthetic
from scaleml.insight import explain
from scaleml.tracking import Tracker, register
from scaleml.tracking._explain import explain_and_log

pytestmark = pytest.mark.slow
T = 30.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = write_synthetic(
        tmp_path_factory.mktemp("gw-explain") / "data",
        rows=400,
        features=5,
        block_rows=200,
        random_state=5,
    )
    return Dataset(str(path), target="target")


def _frame(dataset: Dataset) -> pd.DataFrame:
    return pd.concat(list(dataset.iter_blocks()), ignore_index=True)


def _log(store: Settings, model: object, name: str, dataset: Dataset, client: Client) -> str:
    """Log ``model``, log its explanation background, then register it (alias champion)."""
    tracker = Tracker(store)
    example = dataset.input_example()
    with tracker.run(name) as run:
        if isinstance(model, xgboost.XGBClassifier):
            uri = run.log_native_model(model, "xgboost", example)
        else:
            uri = run.log_sklearn_model(model, example)
    explain_and_log(uri, dataset, settings=store, client=client, plots=False, report=False)
    return register(uri, name, tracker=tracker).version


def _log_plain(store: Settings, model: object, name: str, example: pd.DataFrame) -> None:
    """A model logged and registered with MLflow alone: no explanation background."""
    mlflow.set_tracking_uri(store.mlflow_tracking_uri)
    mlflow.set_registry_uri(store.mlflow_tracking_uri)
    mlflow.set_experiment(store.experiment)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=example)
    version = mlflow.register_model(info.model_uri, name).version
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)


@pytest.fixture(scope="module")
def served(store: Settings, dataset: Dataset, client: Client, gateway_factory):
    frame = _frame(dataset)
    x, y = frame[dataset.features], frame["target"]
    suffix = uuid.uuid4().hex[:6]
    names = {
        "xgboost": f"xgb-explain-{suffix}",
        "linear": f"lin-explain-{suffix}",
        "plain": f"plain-{suffix}",
    }
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(x, y)
    _log(store, model, names["xgboost"], dataset, client)
    _log(store, LogisticRegression().fit(x, y), names["linear"], dataset, client)
    _log_plain(store, LogisticRegression(C=0.5).fit(x, y), names["plain"], x.head(5))
    process = gateway_factory(
        list(names.values()), store, "dask", scheduler=client.scheduler.address
    )
    process.wait_ready()
    return process, names


def _split(rows: pd.DataFrame) -> dict:
    return {"dataframe_split": rows.to_dict(orient="split")}


def _reference(store: Settings, dataset: Dataset, client: Client, uri: str):
    """``explain()`` of every row of the dataset (the sample holds them all, in order)."""
    return explain(uri, dataset, sample=dataset.n_rows, client=client, settings=store)


@pytest.mark.parametrize("kind", ["xgboost", "linear"])
def test_gateway_contributions_equal_explain_in_both_protocols(
    served, store: Settings, dataset: Dataset, client: Client, kind: str
) -> None:
    process, names = served
    name = names[kind]
    reference = _reference(store, dataset, client, f"models:/{name}/1")
    rows = reference.sample_data[dataset.features].iloc[::37].reset_index(drop=True)
    expected = reference.sample_values[::37, 0, :]

    answer = httpx.post(f"{process.url}/models/{name}/explain", json=_split(rows), timeout=T)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "1" and body["features"] == list(dataset.features)
    assert body["output"] == "margin" and body["outputs"] == ["1"]
    np.testing.assert_allclose(body["contributions"], expected, atol=1e-9)
    np.testing.assert_allclose(body["base_values"], reference.base_values, atol=1e-9)

    tensors = [
        {"name": f, "shape": [len(rows)], "datatype": "FP64", "data": rows[f].tolist()}
        for f in dataset.features
    ]
    v2 = httpx.post(f"{process.url}/v2/models/{name}/explain", json={"inputs": tensors}, timeout=T)
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["contributions"]["shape"] == [len(rows), len(dataset.features)]
    values = np.asarray(outputs["contributions"]["data"]).reshape(len(rows), -1)
    np.testing.assert_allclose(values, expected, atol=1e-9)
    assert v2.json()["parameters"]["features"] == list(dataset.features)


def test_concurrent_explanations_share_explain_calls(served, dataset: Dataset) -> None:
    process, names = served
    name = names["xgboost"]
    rows = _frame(dataset)[dataset.features]
    before = _explain_batches(process.url, name)

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=T) as http:
            return await asyncio.gather(
                *(
                    http.post(
                        f"{process.url}/models/{name}/explain",
                        json=_split(rows.iloc[2 * i : 2 * i + 2]),
                    )
                    for i in range(48)
                )
            )

    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [200] * 48
    assert all(len(a.json()["contributions"]) == 2 for a in answers)
    after = _explain_batches(process.url, name)
    assert after[1] - before[1] == 48  # requests
    assert after[0] - before[0] < 48  # explain calls
    metrics = httpx.get(f"{process.url}/metrics", timeout=T).text
    labels = f'model="{name}",route="/models/{{name}}/explain",status="200"'
    route = f"scaleml_gateway_explain_requests_total{{{labels}}}"
    assert route in metrics


def _explain_batches(url: str, model: str) -> tuple[float, float]:
    count = total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=T).text.splitlines():
        if line.startswith(f'scaleml_gateway_explain_batch_requests_count{{model="{model}"}}'):
            count = float(line.split()[-1])
        if line.startswith(f'scaleml_gateway_explain_batch_requests_sum{{model="{model}"}}'):
            total = float(line.split()[-1])
    return count, total


def test_bad_input_is_a_4xx_naming_the_column(served, dataset: Dataset) -> None:
    process, names = served
    name = names["linear"]
    rows = _frame(dataset)[dataset.features].head(3)
    missing = httpx.post(
        f"{process.url}/models/{name}/explain", json=_split(rows.drop(columns="f002")), timeout=T
    )
    assert missing.status_code == 400 and "'f002'" in missing.json()["message"]
    bad = rows.astype(object)
    bad.loc[1, "f003"] = "high"
    wrong = httpx.post(f"{process.url}/models/{name}/explain", json=_split(bad), timeout=T)
    assert wrong.status_code == 400 and "'f003'" in wrong.json()["message"]
    tensors = [{"name": "nope", "shape": [1], "datatype": "FP64", "data": [1.0]}]
    v2 = httpx.post(f"{process.url}/v2/models/{name}/explain", json={"inputs": tensors}, timeout=T)
    assert v2.status_code == 400 and "'nope'" in v2.json()["error"]
    unknown = httpx.post(f"{process.url}/models/nope/explain", json=_split(rows), timeout=T)
    assert unknown.status_code == 404
    csv = httpx.post(
        f"{process.url}/explain",
        content=b"f000\n1\n",
        headers={"Content-Type": "text/csv", "X-Model": name},
        timeout=T,
    )
    assert csv.status_code == 400 and "'f001'" in csv.json()["message"]


def test_explanations_keep_answering_through_a_hot_swap(
    served, store: Settings, dataset: Dataset, client: Client, tmp_path: Path
) -> None:
    process, names = served
    name = names["linear"]
    frame = _frame(dataset)
    rows = frame[dataset.features].head(4)
    statuses: list[int] = []
    versions: set[str] = set()

    async def load(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=T) as http:
            while not stop.is_set():
                answer = await http.post(f"{process.url}/models/{name}/explain", json=_split(rows))
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    versions.add(answer.json()["model_version"])

    async def swap() -> None:
        stop = asyncio.Event()
        users = [asyncio.create_task(load(stop)) for _ in range(4)]
        flipped = (frame["target"] == 0).astype(int)  # another model: other contributions
        model = LogisticRegression(C=0.05).fit(frame[dataset.features], flipped)
        await asyncio.to_thread(_log, store, model, name, dataset, client)  # version 2
        deadline = time.monotonic() + 60
        while "2" not in versions and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*users)

    asyncio.run(swap())
    assert versions == {"1", "2"}
    assert set(statuses) == {200}, statuses
    reference = _reference(store, dataset, client, f"models:/{name}/2")
    answer = httpx.post(f"{process.url}/models/{name}/explain", json=_split(rows), timeout=T)
    np.testing.assert_allclose(
        answer.json()["contributions"], reference.sample_values[:4, 0, :], atol=1e-9
    )


def test_tritonclient_default_binary_tensors_explain(
    served, store: Settings, dataset: Dataset, client: Client
) -> None:
    """The body tritonclient builds with its defaults (binary inputs, every output asked for
    in binary), read back by tritonclient's own parser."""
    process, names = served
    name = names["xgboost"]
    reference = _reference(store, dataset, client, f"models:/{name}/1")
    rows = reference.sample_data[dataset.features].iloc[:25].reset_index(drop=True)
    inputs = []
    for column in dataset.features:
        tensor = triton.InferInput(column, [len(rows)], "FP64")
        tensor.set_data_from_numpy(rows[column].to_numpy())  # defaults: binary
        inputs.append(tensor)
    for outputs in (None, [triton.InferRequestedOutput("contributions")]):
        body, json_size = triton.InferenceServerClient.generate_request_body(
            inputs, outputs=outputs, request_id="e1"
        )
        headers = {"Content-Type": "application/octet-stream"}
        if json_size is not None:
            headers["Inference-Header-Content-Length"] = str(json_size)
        answer = httpx.post(
            f"{process.url}/v2/models/{name}/explain", content=body, headers=headers, timeout=T
        )
        assert answer.status_code == 200, answer.text
        length = answer.headers.get("Inference-Header-Content-Length")
        assert length is not None  # binary outputs, as asked
        result = triton.InferenceServerClient.parse_response_body(
            answer.content, header_length=int(length)
        )
        assert result.get_response()["id"] == "e1"
        contributions = result.as_numpy("contributions")
        assert contributions.shape == (len(rows), len(dataset.features))
        np.testing.assert_allclose(contributions, reference.sample_values[:25, 0, :], atol=1e-9)
        if outputs is None:
            np.testing.assert_allclose(
                result.as_numpy("base_values"), reference.base_values, atol=1e-9
            )
        else:
            assert result.as_numpy("base_values") is None
    wrong = [triton.InferRequestedOutput("predictions")]
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs, outputs=wrong)
    answer = httpx.post(
        f"{process.url}/v2/models/{name}/explain",
        content=body,
        headers={"Inference-Header-Content-Length": str(json_size)},
        timeout=T,
    )
    assert answer.status_code == 400 and "'predictions'" in answer.json()["error"]


def test_a_model_logged_without_a_background_is_409_naming_it(served, dataset: Dataset) -> None:
    """A linear model needs the background ``scaleml explain`` logs; MLflow alone logs none.
    The gateway still predicts with it."""
    process, names = served
    name = names["plain"]
    rows = _frame(dataset)[dataset.features].head(3)
    answer = httpx.post(f"{process.url}/models/{name}/explain", json=_split(rows), timeout=T)
    assert answer.status_code == 409, answer.text
    message = answer.json()["message"]
    assert "no explanation background logged" in message and "scaleml explain" in message
    assert answer.json()["error_code"] == "INVALID_STATE"
    tensors = [
        {"name": f, "shape": [len(rows)], "datatype": "FP64", "data": rows[f].tolist()}
        for f in dataset.features
    ]
    v2 = httpx.post(f"{process.url}/v2/models/{name}/explain", json={"inputs": tensors}, timeout=T)
    assert v2.status_code == 409 and "background" in v2.json()["error"]
    predicted = httpx.post(f"{process.url}/models/{name}/invocations", json=_split(rows), timeout=T)
    assert predicted.status_code == 200 and len(predicted.json()["predictions"]) == 3
