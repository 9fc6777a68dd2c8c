"""The gateway's OpenAPI document: every ``$ref`` resolves, 401 and the bearer token are
documented on each protected route, and schemathesis finds no 5xx against a real gateway."""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from scaleml.config import Settings
from scaleml.gateway.app import create_app
from tests.gateway.conftest import (  # noqa: F401  (fixtures)
    gateway_factory,
    log_and_register,
    store,
    train_sklearn,
)
from tests.security._gateway import AUTH, TOKEN, T

_EXAMPLES = int(os.environ.get("SCALEML_TEST_SCHEMATHESIS_EXAMPLES", "25"))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_ref_of_the_openapi_document_resolves_and_401_is_documented() -> None:
    app = create_app(["any-model"], Settings(gateway_backend="local", gateway_token="x"))
    doc = app.openapi()
    refs = _refs(doc)
    assert "#/components/schemas/V2Tensor" in refs
    for ref in refs:
        _resolve(doc, ref)  # the landed document pointed at '#/$defs/V2Tensor'
    assert doc["components"]["securitySchemes"]["gatewayToken"]["scheme"] == "bearer"
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]
    tensor = infer["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert set(tensor["inputs"]["items"]["required"]) >= {"name", "shape", "datatype", "data"}
    protected = open_ = 0
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if path.startswith(("/v2/health", "/health", "/ping", "/version", "/metrics")):
                assert "security" not in operation, (method, path)
                open_ += 1
                continue
            protected += 1
            assert operation.get("security") == [{"gatewayToken": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
            if method == "post":
                assert {"400", "408", "413", "415"} <= set(operation["responses"]), path
    # 14: with the two Triton model-config routes, GET /models/{name}/drift and three explain routes
    assert protected == 14 and open_ == 6


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors_on_the_gateway(
    gateway_factory,  # noqa: F811
    store,  # noqa: F811
) -> None:
    """Generated requests against every operation, with and without the token: no 5xx, and
    every documented response matches its schema."""
    name = f"fuzz-{uuid.uuid4().hex[:6]}"
    log_and_register(store, train_sklearn(), name)
    process = gateway_factory(
        [name], store, "local", gateway_token=TOKEN, gateway_request_timeout_s="5"
    )
    process.wait_ready()
    assert httpx.get(f"{process.url}/v2/models/{name}", headers=AUTH, timeout=T).is_success
    schema = schemathesis.openapi.from_url(f"{process.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # with the two Triton model-config routes, the drift route and three explain routes
    assert len(operations) == 20
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=_EXAMPLES,
            deadline=None,
            derandomize=os.environ.get("CI") == "true",
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            nonlocal calls
            if "name" in (case.path_parameters or {}) and calls % 2:
                case.path_parameters["name"] = name  # half the cases reach the served model
            for headers in (AUTH, {}):
                calls += 1
                case.call_and_validate(
                    headers=headers,
                    timeout=30,
                    checks=[not_a_server_error, response_schema_conformance],
                )

        check()
    assert calls >= 14 * 2
