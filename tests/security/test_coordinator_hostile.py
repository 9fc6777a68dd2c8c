"""Hostile and careless requests against a real coordinator (uvicorn on loopback), on both job
stores (SQLite and PostgreSQL): each gets a 4xx naming what is wrong, never a 5xx, never a
hang, and never the content of a file or the whole input echoed back.

These servers only queue (``run_jobs=False``): every refusal happens at submit. The jobs that
must run (a dataset that exists but lacks the target column) are in
``test_coordinator_jobs.py``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scaleml.config import Settings
from scaleml.coordinator import create_app, parse_spec
from tests.coordinator.conftest import TOKEN, ThreadServer, http
from tests.coordinator.conftest import pg_database as pg_database  # the fixture

FORCE_TOKEN = "force-token-456"
_BODY_TIMEOUT_S = 1.0
_MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding one (empty) dataset directory and a symlink out of the root."""
    root = tmp_path_factory.mktemp("data-root")
    (root / "clf").mkdir()
    (root / "escape").symlink_to("/etc")
    return root


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest,
    roots: Path,
    pg_database: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ThreadServer]:
    """A coordinator that only queues, on a SQLite file or a PostgreSQL database."""
    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    url = f"sqlite:///{tmp / 'jobs.db'}" if request.param == "sqlite" else pg_database("sec")
    settings = Settings(
        coordinator_db=url,
        coordinator_token=TOKEN,
        coordinator_force_tokens=[FORCE_TOKEN],
        coordinator_data_roots=[str(roots)],
        coordinator_register_models=["team-*", "churn"],
        coordinator_max_body_bytes=_MAX_BODY,
        coordinator_body_timeout_s=_BODY_TIMEOUT_S,
        data_dir=tmp / "data",
        cache_dir=tmp / "cache",
    )
    with ThreadServer(create_app(settings, run_jobs=False)) as running:
        yield running


@pytest.fixture
def api(server: ThreadServer) -> Iterator[httpx.Client]:
    """A client with the token; the test fails if any response was a server error."""
    errors: list[str] = []

    def no_server_error(response: httpx.Response) -> None:
        if response.status_code >= 500:
            errors.append(f"{response.request.method} {response.request.url}")

    with http(server.url) as client:
        client.event_hooks["response"] = [no_server_error]
        yield client
    assert not errors, errors


def _spec(roots: Path, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "train",
        "estimator": {"estimator": "SGDClassifier", "params": {"tol": None}},
        "dataset": {"path": str(roots / "clf"), "target": "target"},
        **extra,
    }


def _refused(response: httpx.Response, status: int, *loc: str) -> str:
    """The message of a refusal with ``status`` whose first error's location ends with
    ``loc``; the response is small whatever the request was."""
    assert response.status_code == status, response.text[:500]
    assert len(response.content) < 8_000
    error = response.json()["detail"][0]
    assert tuple(str(part) for part in error["loc"][-len(loc) :]) == loc, error
    return error["msg"]


# -- 10.1: dataset locations only under the data roots ----------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/etc/shadow",
        "file:///etc/passwd",
        "file://otherhost/data/x.csv",
        "http://127.0.0.1:9/secret.csv",
        "https://169.254.169.254/latest/meta-data",
        "simplecache::file:///etc/passwd",
        "{root}/../../../etc/passwd",
        "{root}/escape/passwd",
        "{root}/escape/*",
        "{root}-sibling/x.csv",
        "s3://bucket/data.parquet",
    ],
)
def test_dataset_outside_the_roots_gets_422_at_submit(
    api: httpx.Client, roots: Path, path: str
) -> None:
    spec = _spec(roots)
    spec["dataset"]["path"] = path.format(root=roots)
    before = api.get("/jobs").json()["total"]
    msg = _refused(api.post("/jobs", json=spec), 422, "dataset", "path")
    assert "outside the coordinator's data roots" in msg
    assert "root:" not in msg  # nothing read
    assert api.get("/jobs").json()["total"] == before  # nothing stored


def test_refusals_do_not_tell_which_paths_exist(api: httpx.Client, roots: Path) -> None:
    messages = []
    for path in ("/etc/passwd", "/etc/no-such-file-xyz", "/etc", "/no-such-dir/"):
        spec = _spec(roots)
        spec["dataset"]["path"] = path
        msg = _refused(api.post("/jobs", json=spec), 422, "dataset", "path")
        messages.append(msg.replace(repr(path), "PATH"))
    assert len(set(messages)) == 1, messages


def test_one_bad_path_in_a_list_is_named(api: httpx.Client, roots: Path) -> None:
    spec = _spec(roots)
    spec["dataset"]["path"] = [str(roots / "clf"), "file:///etc/hosts"]
    _refused(api.post("/jobs", json=spec), 422, "dataset", "path", "1")


def test_storage_options_may_not_redirect_the_filesystem(api: httpx.Client, roots: Path) -> None:
    spec = _spec(roots)
    spec["dataset"]["storage_options"] = {"client_kwargs": {"endpoint_url": "http://10.0.0.1"}}
    msg = _refused(
        api.post("/jobs", json=spec), 422, "storage_options", "client_kwargs", "endpoint_url"
    )
    assert "redirect" in msg


def test_paths_under_the_roots_are_accepted(api: httpx.Client, roots: Path) -> None:
    for path in (str(roots / "clf"), f"file://{roots}/clf", str(roots / "clf" / "*.parquet")):
        spec = _spec(roots)
        spec["dataset"]["path"] = path
        response = api.post("/jobs", json=spec)
        assert response.status_code == 201, response.text


# -- 10.6: limits on every string and container; non-finite numbers ---------------------------


def _post_text(api: httpx.Client, text: str) -> httpx.Response:
    return api.post("/jobs", content=text, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        ({"experiment": "e" * 600}, ("experiment",), "at most 250"),
        ({"run_name": "r" * 300}, ("run_name",), "at most 250"),
        ({"run_name": "r" * 5000}, (), "run_name: text longer than 4096 characters"),
        ({"register_as": "team-" + "m" * 300}, ("register_as",), "at most 250"),
        ({"experiment": "bad \ud800 text"}, (), "experiment: text is not valid Unicode"),
        ({"alias": "x" * 251}, ("alias",), "at most 250"),
    ],
)
def test_long_and_invalid_text_gets_422_on_both_stores(
    api: httpx.Client, roots: Path, change: dict[str, Any], loc: tuple[str, ...], words: str
) -> None:
    response = _post_text(api, json.dumps({**_spec(roots), **change}))  # "\ud800" escaped
    assert response.status_code == 422, response.text[:300]
    error = response.json()["detail"][0]
    assert words in error["msg"]
    if loc:
        assert tuple(error["loc"][-len(loc) :]) == loc


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    ("template", "where"),
    [
        ('"estimator": {{"estimator": "SGDClassifier", "params": {{"alpha": {v}}}}}', "alpha"),
        ('"estimator": {{"estimator": "SGDClassifier"}}, "epochs": {v}', "epochs"),
    ],
)
def test_non_finite_numbers_get_422_naming_the_field(
    api: httpx.Client, roots: Path, literal: str, template: str, where: str
) -> None:
    dataset = json.dumps({"path": str(roots / "clf"), "target": "target"})
    text = f'{{"kind": "train", {template.format(v=literal)}, "dataset": {dataset}}}'
    response = _post_text(api, text)
    assert response.status_code == 422, response.text[:300]
    assert where in json.dumps(response.json()["detail"][0])


def test_non_finite_validation_fraction_and_space_values(api: httpx.Client, roots: Path) -> None:
    dataset = f'{{"path": "{roots / "clf"}", "target": "t", "validation_fraction": NaN}}'
    estimator = '{"estimator": "SGDClassifier"}'
    text = f'{{"kind": "train", "estimator": {estimator}, "dataset": {dataset}}}'
    assert _post_text(api, text).status_code == 422
    spec = {**_spec(roots), "kind": "search", "method": "grid"}
    spec["space"] = {"alpha": "__NAN__"}
    text = json.dumps(spec).replace('"__NAN__"', "[NaN, 0.1]")
    response = _post_text(api, text)
    assert response.status_code == 422
    assert "space.alpha.0: NaN and infinite numbers are refused" in response.text


@pytest.mark.parametrize("depth", [12, 200, 20_000])
def test_deep_storage_options_get_422(api: httpx.Client, roots: Path, depth: int) -> None:
    text = json.dumps(_spec(roots)).replace(
        '"target": "target"',
        '"target": "target", "storage_options": ' + '{"a": ' * depth + "1" + "}" * depth,
    )
    response = _post_text(api, text)
    assert 400 <= response.status_code < 500, response.text[:300]
    assert len(response.content) < 8_000


def test_deeply_nested_json_body_gets_4xx(api: httpx.Client) -> None:
    for text in ("[" * 50_000 + "]" * 50_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        response = _post_text(api, text)
        assert 400 <= response.status_code < 500, response.text[:300]


@pytest.mark.parametrize(
    "change",
    [
        {"estimator": {"estimator": "SGDClassifier", "params": {"random_state": 10**30}}},
        {"estimator": {"estimator": "SGDClassifier", "params": {"k" * 300: 1}}},
        {"estimator": {"estimator": "SGDClassifier", "params": {"class_weight": "x" * 5000}}},
        {"dataset": {"path": ["p"] * 10_001, "target": "t"}},
    ],
)
def test_out_of_range_values_get_422(
    api: httpx.Client, roots: Path, change: dict[str, Any]
) -> None:
    response = api.post("/jobs", json={**_spec(roots), **change})
    assert response.status_code == 422, response.text[:300]
    assert len(response.content) < 8_000


def test_the_stored_spec_is_the_validated_one(api: httpx.Client, roots: Path) -> None:
    spec = _spec(roots, experiment="é" * 250, epochs=3, random_state=2**32 - 1)
    spec["estimator"]["params"] = {"alpha": 1e-300, "eta0": 1e300, "tol": None}
    job = api.post("/jobs", json=spec).json()
    stored = api.get(f"/jobs/{job['id']}").json()["spec"]
    assert stored == parse_spec(spec).model_dump(mode="json")
    assert stored["experiment"] == "é" * 250


# -- 10.7: model names jobs may register; forcing an alias move is a privilege -----------------


def test_registering_a_name_off_the_list_gets_422(api: httpx.Client, roots: Path) -> None:
    response = api.post("/jobs", json=_spec(roots, register_as="scaleml-demo"))
    msg = _refused(response, 422, "register_as")
    assert "may not register 'scaleml-demo'" in msg and "team-*" in msg
    for name in ("team-churn", "churn"):
        assert api.post("/jobs", json=_spec(roots, register_as=name)).status_code == 201


def test_forcing_an_alias_move_needs_a_force_token(
    api: httpx.Client, server: ThreadServer, roots: Path
) -> None:
    forced = _spec(roots, register_as="churn", promote="always")
    msg = _refused(api.post("/jobs", json=forced), 403, "promote")
    assert "SCALEML_COORDINATOR_FORCE_TOKENS" in msg
    for promote in ("if-better", "never"):
        spec = _spec(roots, register_as="churn", promote=promote)
        assert api.post("/jobs", json=spec).status_code == 201
    with http(server.url, token=FORCE_TOKEN) as admin:
        job = admin.post("/jobs", json=forced)
        assert job.status_code == 201, job.text
        assert job.json()["spec"]["promote"] == "always"
    assert api.post("/jobs", json={**forced, "promote": "sometimes"}).status_code == 422
    default = api.post("/jobs", json=_spec(roots, register_as="churn")).json()
    assert default["spec"]["promote"] == "if-better"


# -- 10.9: a body limit; errors never echo big inputs -----------------------------------------


def test_a_body_over_the_limit_gets_413(api: httpx.Client, roots: Path) -> None:
    spec = _spec(roots, run_name="x" * (_MAX_BODY + 1))
    response = api.post("/jobs", json=spec)
    assert response.status_code == 413
    assert "SCALEML_COORDINATOR_MAX_BODY_BYTES" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"kind": "train", "run_name": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = api.post("/jobs", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_errors_do_not_echo_big_inputs(api: httpx.Client, roots: Path) -> None:
    big = "y" * 50_000
    for spec in (
        _spec(roots, run_name=big),
        _spec(roots, kind="nope", run_name=big),
        {**_spec(roots), "estimator": {"estimator": big}},
        {**_spec(roots), "epochs": [1] * 5_000},
        {**_spec(roots), "dataset": {"path": str(roots / "clf"), "features": [1] * 5_000}},
    ):
        response = api.post("/jobs", json=spec)
        assert response.status_code == 422, response.text[:300]
        assert len(response.content) < 8_000
        assert "y" * 300 not in response.text


# -- 10.10: events cursor past the database's integer range -----------------------------------


def test_events_cursor_out_of_range_gets_422(api: httpx.Client, roots: Path) -> None:
    job_id = api.post("/jobs", json=_spec(roots)).json()["id"]
    for after in (2**31, 2**63, 10**30):
        response = api.get(f"/jobs/{job_id}/events", params={"after": after, "follow": "false"})
        _refused(response, 422, "after")
    response = api.get(
        f"/jobs/{job_id}/events",
        params={"follow": "false"},
        headers={"Last-Event-ID": str(2**40)},
    )
    _refused(response, 422, "last-event-id")
    ok = api.get(f"/jobs/{job_id}/events", params={"follow": "false", "after": 2**31 - 1})
    assert ok.status_code == 200 and ok.text == ""


# -- 10.11: a declared body never sent -------------------------------------------------------


def _held(port: int, body: bytes) -> tuple[bytes, float]:
    """Send a request declaring a 1,000-byte body and only ``body``; return what the server
    answered before closing, and how long it took (bounded by a socket timeout)."""
    head = (
        "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):  # b"" when the server closes
            answer += chunk
    return answer, time.monotonic() - start


def test_a_declared_body_never_sent_is_answered_408_and_closed(server: ThreadServer) -> None:
    for body in (b"", b'{"kind": "tr'):
        answer, _ = _held(server.port, body)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"not received within" in answer
    with http(server.url) as api:  # the server still answers
        assert api.get("/jobs").status_code == 200


def test_many_held_connections_are_all_released(server: ThreadServer) -> None:
    socks = []
    head = (
        "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            sock.sendall(head)
            socks.append(sock)
        closed = 0
        for sock in socks:
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            closed += answer.startswith(b"HTTP/1.1 408")
        assert closed == len(socks)
    finally:
        for sock in socks:
            sock.close()


# -- 11.8: API details -----------------------------------------------------------------------


def test_a_bad_scoring_is_reported_under_scoring(api: httpx.Client, roots: Path) -> None:
    spec = {**_spec(roots), "kind": "search", "method": "random", "n_iter": 2}
    spec["space"] = {"alpha": [0.1, 0.01]}
    spec["scoring"] = "acuracy"
    msg = _refused(api.post("/jobs", json=spec), 422, "scoring")
    assert "did you mean 'accuracy'" in msg
    spec["scoring"] = "accuracy"
    assert api.post("/jobs", json=spec).status_code == 201


def test_a_misspelled_estimator_gets_a_suggestion(api: httpx.Client, roots: Path) -> None:
    spec = {**_spec(roots), "estimator": {"estimator": "SGDClasifier"}}
    msg = _refused(api.post("/jobs", json=spec), 422, "estimator")
    assert "did you mean 'SGDClassifier'" in msg
    assert "MLPRegressor" not in msg  # not the whole allow-list


def test_cancelling_a_cancelled_job_gets_409(api: httpx.Client, roots: Path) -> None:
    job_id = api.post("/jobs", json=_spec(roots)).json()["id"]
    first = api.post(f"/jobs/{job_id}/cancel")
    assert first.status_code == 200 and first.json()["state"] == "CANCELLED"
    again = api.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert "already ended CANCELLED" in again.json()["detail"]
