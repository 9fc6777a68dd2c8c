"""Hostile requests against real gateway processes, through the fast lane and through the
FastAPI routes: each gets a 4xx naming the problem, one access-log line and no traceback,
without hanging the gateway or growing its memory."""

from __future__ import annotations

import json
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest

from scaleml.config import Settings
from scaleml.gateway._contract import Column, InputSchema, RequestError
from scaleml.gateway._errors import Unauthorized
from scaleml.gateway.api.deps import check_token
from tests.gateway.conftest import (  # noqa: F401  (fixtures)
    FEATURES,
    gateway_factory,
    log_and_register,
    store,
    train_sklearn,
)
from tests.security._gateway import (
    AUTH,
    TOKEN,
    T,
    raw_request,
    read_until_closed,
    rss_mib,
    tracebacks,
)

pytestmark = pytest.mark.slow
BODY_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def model_name(store) -> str:  # noqa: F811
    name = f"hostile-{uuid.uuid4().hex[:6]}"
    log_and_register(store, train_sklearn(), name)
    return name


@pytest.fixture(scope="module", params=["fast-lane", "fastapi"])
def gateway(request, gateway_factory, store, model_name):  # noqa: F811
    """A local-backend gateway with a (non-ASCII) token and a short request time limit."""
    process = gateway_factory(
        [model_name],
        store,
        "local",
        gateway_token=TOKEN,
        gateway_request_timeout_s=str(BODY_TIMEOUT_S),
        gateway_fast_lane="true" if request.param == "fast-lane" else "false",
    )
    process.wait_ready()
    return process


def _post(gateway, path: str, body: bytes, content_type: str = "application/json"):
    headers = {**AUTH, "Content-Type": content_type}
    return httpx.post(f"{gateway.url}{path}", content=body, headers=headers, timeout=T)


def _message(answer: httpx.Response) -> str:
    body = answer.json()
    return body.get("message") or body.get("error") or ""


def test_deeply_nested_json_is_a_400_with_no_traceback(gateway, model_name) -> None:
    since = len(gateway.lines)
    deep = b"[" * 100_000 + b"1" + b"]" * 100_000
    nested_900 = "[" * 900 + "0.5" + "]" * 900
    tensor = '{"name": "f0", "shape": [1], "datatype": "FP64", "data": ' + nested_900 + "}"
    cases = {
        ("/invocations", b'{"inputs": ' + deep + b"}"): "nested too deeply",
        (f"/v2/models/{model_name}/infer", b'{"inputs": ' + deep + b"}"): "nested too deeply",
        ("/invocations", ('{"inputs": ' + nested_900 + "}").encode()): "",
        (f"/v2/models/{model_name}/infer", ('{"inputs": [' + tensor + "]}").encode()): "nested",
    }
    for (path, body), expected in cases.items():
        answer = _post(gateway, path, body)
        assert answer.status_code == 400, (path, answer.text[:300])
        assert expected in _message(answer), (path, answer.text[:300])
    assert tracebacks(gateway, since) == []


def test_a_non_ascii_bearer_token_is_a_401_on_every_protected_route(gateway, model_name) -> None:
    since = len(gateway.lines)
    doc = httpx.get(f"{gateway.url}/openapi.json", timeout=T).json()
    protected = [
        (method.upper(), path.replace("{name}", model_name).replace("{version}", "1"))
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    ]
    assert len(protected) >= 8
    for token in ("t\u00f6ken", "\u2603\u2603", TOKEN + "\u00e9"):
        for method, path in protected:
            headers = {"Authorization": b"Bearer " + token.encode(), "Content-Type": "text/csv"}
            answer = httpx.request(
                method, f"{gateway.url}{path}", headers=headers, content=b"f0\n1\n", timeout=T
            )
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["WWW-Authenticate"] == "Bearer"
            assert "bearer token" in _message(answer)
    row = ",".join(["0.5"] * len(FEATURES))
    answer = _post(gateway, "/invocations", f"{','.join(FEATURES)}\n{row}\n".encode(), "text/csv")
    assert answer.status_code == 200, answer.text
    assert tracebacks(gateway, since) == []


def test_a_non_ascii_gateway_token_is_compared_as_utf8_bytes() -> None:
    gateway = SimpleNamespace(settings=Settings(gateway_token="s\u00e9same-\u00f6ffne-dich"))
    check_token(gateway, "Bearer " + "s\u00e9same-\u00f6ffne-dich".encode().decode("latin-1"))
    for given in ("Bearer s\u00e9same-\u00f6ffne-dich", "Bearer \u2603", "Bearer sesame", None):
        with pytest.raises(Unauthorized):
            check_token(gateway, given)


def test_a_lone_surrogate_gets_the_same_400_through_both_lanes(gateway, model_name) -> None:
    """The fast lane and the FastAPI routes answer alike (both gateways run this test)."""
    since = len(gateway.lines)
    tensor = {"name": "f0", "shape": [1], "datatype": "\ud800", "data": [0.5]}
    answer = _post(gateway, f"/v2/models/{model_name}/infer", json.dumps({"inputs": [tensor]}))
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "error": "input 'f0': datatype \ud800 does not fit the column's type; send FP64"
    }
    records = json.dumps({"dataframe_records": [{"f\udfff": 1.0}]}).encode()
    answer = _post(gateway, "/invocations", records)
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("column 'f\\udfff' is not an input of this model")
    assert tracebacks(gateway, since) == []


def test_a_csv_header_of_300000_columns_is_refused_before_its_rows_are_parsed(
    gateway,
) -> None:
    header = ",".join(f"column_{i}" for i in range(300_000)).encode() + b"\n"
    assert len(header) > 2_000_000
    before = rss_mib(gateway)
    for body in (header, header + b"1," * 299_999 + b"1\n"):
        answer = _post(gateway, "/invocations", body, "text/csv")
        assert answer.status_code == 400, answer.text[:300]
        message = _message(answer)
        assert "300,000 columns" in message and "the model takes" in message
        assert len(message) <= 1000  # never the header echoed back
        assert httpx.get(f"{gateway.url}/v2/health/live", timeout=T).status_code == 200
    assert rss_mib(gateway) - before < 100  # the landed code grew by ~800 MiB


def test_the_csv_header_is_checked_before_pandas_parses_anything(monkeypatch) -> None:
    """The mechanism: ``pd.read_csv`` never runs on a header the signature refuses (and does
    on a good one, the paired reference)."""
    import scaleml.gateway._contract as contract

    parsed: list[int] = []
    read_csv = contract.pd.read_csv

    def counting(*args, **kwargs):
        frame = read_csv(*args, **kwargs)
        parsed.append(frame.shape[1])
        return frame

    monkeypatch.setattr(contract.pd, "read_csv", counting)
    schema = InputSchema([Column(name, "double") for name in FEATURES])
    good = f"{','.join(FEATURES)}\n{','.join(['1'] * 8)}\n".encode()
    assert schema.from_csv(good).n == 1 and parsed == [8]
    hostile = [
        ",".join(f"c{i}" for i in range(300_000)).encode() + b"\n1\n",
        f"{','.join(FEATURES)},extra\n".encode() + b"1," * 8 + b"1\n",
        b"f0,f1,\xff\xfe\n1,2,3\n",
        b'"' + b"x" * 200_000 + b'"\n1\n',
    ]
    for body in hostile:
        with pytest.raises(RequestError):
            schema.from_csv(body)
    assert parsed == [8]


@pytest.mark.parametrize("sent", [b"", b'{"inputs": '])
def test_a_body_that_never_arrives_is_answered_408_and_the_connection_closed(
    gateway, model_name, sent: bytes
) -> None:
    """Connections that declare a body and send none (or part of it) are not held."""
    heads = [
        f"POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {{}}\r\n"
        f"Content-Type: application/json\r\nContent-Length: 1000"
        for path in ("/invocations", f"/v2/models/{model_name}/infer")
    ]
    start = time.monotonic()
    sockets = [
        raw_request(gateway, head.replace("{}", TOKEN).encode(), sent) for head in heads * 10
    ]
    try:
        for sock in sockets:
            try:
                answer = read_until_closed(sock, timeout_s=BODY_TIMEOUT_S + 10)
            except TimeoutError:
                pytest.fail("the gateway held a connection whose body never came")
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"did not arrive within 2 s" in answer
    finally:
        for sock in sockets:
            sock.close()
    assert time.monotonic() - start < BODY_TIMEOUT_S + 20  # no hang (a bound, not a benchmark)
    assert httpx.get(f"{gateway.url}/v2/health/live", timeout=T).status_code == 200


def test_no_hostile_request_is_answered_5xx(gateway, model_name) -> None:
    """A fixed set of malformed bodies on both protocols: 4xx every time."""
    v2 = f"/v2/models/{model_name}/infer"
    json_bodies = [
        b"",
        b"\xff\xfe\x00",
        b'{"inputs": {"f0": [1e999]}}',
        b'{"dataframe_split": {"columns": [1], "data": [[1]]}}',
        b'{"instances": [[[[1]]]]}',
    ]
    tensors = [
        '{"name": "f0", "shape": [-1], "datatype": "FP64", "data": []}',
        '{"name": "f0", "shape": [1e308], "datatype": "FP64", "data": [1]}',
        '{"name": "\\ud800", "shape": [1], "datatype": "FP64", "data": [1]}',
    ]
    bodies = [("/invocations", body, "application/json") for body in json_bodies]
    bodies += [
        ("/invocations", b"f0\n" + b"\x00" * 1000, "text/csv"),
        ("/invocations", b"\n\n\n", "text/csv"),
        ("/invocations", b"{}", "application/x-www-form-urlencoded"),
        (v2, b'{"id": {"a": [1]}, "inputs": []}', ""),
        (v2, b"[]", ""),
    ]
    bodies += [(v2, ('{"inputs": [' + tensor + "]}").encode(), "") for tensor in tensors]
    for path, body, content_type in bodies:
        answer = _post(gateway, path, body, content_type or "application/json")
        assert 400 <= answer.status_code < 500, (path, body[:80], answer.status_code, answer.text)
