"""The predict core of both protocols, free of web-framework code: a body and its content
type in, response bytes and the version that answered out, domain errors raised.

Used by the FastAPI routes and by the fast lane in front of them (``_fastlane``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from scaleml.gateway import _binary
from scaleml.gateway._codecs import parse_v2_payload
from scaleml.gateway._contract import Rows, load_json
from scaleml.gateway._errors import ModelNotFound, PredictTimeout, Unavailable, UnsupportedMediaType
from scaleml.gateway._gateway import Gateway
from scaleml.gateway._models import LoadedVersion, ServedModel
from scaleml.gateway._outputs import (
    Requested,
    mlflow_answer,
    mlflow_wants_probabilities,
    v2_answer,
    v2_requested,
)

T = TypeVar("T")
_OFF_LOOP_BYTES = 64 * 1024  # parse bigger bodies in a thread: the loop keeps answering


async def mlflow_invocations(
    gateway: Gateway, model: ServedModel, content_type: str | None, body: bytes
) -> tuple[bytes, str]:
    """MLflow scoring protocol: JSON (one of the four formats, and ``params``) or CSV in,
    predictions (or probabilities, ``_outputs``) out."""
    loaded = loaded_version(model, None)
    schema = loaded.schema
    if content_type == "application/json":

        def parse(data: bytes) -> tuple[Rows, Any]:
            payload = load_json(data)
            params = payload.get("params") if isinstance(payload, dict) else None
            return schema.from_mlflow_payload(payload), params

    elif content_type == "text/csv":

        def parse(data: bytes) -> tuple[Rows, Any]:
            return schema.from_csv(data), None

    else:
        raise UnsupportedMediaType(
            f"content type {content_type or '(none)'} is not supported: send "
            "application/json (dataframe_split, dataframe_records, instances or inputs) "
            "or text/csv"
        )
    if len(body) < _OFF_LOOP_BYTES:
        rows, params = parse(body)
    else:
        rows, params = await parse_off_loop(gateway, parse, body)
    proba = mlflow_wants_probabilities(params, loaded.classes)
    output, version = await gateway.predict(model, rows, proba=proba)
    return mlflow_answer(output, version), version


async def v2_infer(
    gateway: Gateway,
    model: ServedModel,
    version: str | None,
    content_type: str | None,
    body: bytes,
    inference_header: str | None = None,
) -> tuple[bytes, str, int | None]:
    """Open Inference Protocol v2: JSON or binary tensors in (``_binary``), the outputs asked
    for out (JSON or binary), ``id`` echoed. Returns the body, the version that answered and
    the JSON header's length when the body holds binary outputs."""
    if content_type not in (None, "application/json", "application/octet-stream"):
        raise UnsupportedMediaType(
            f"content type {content_type} is not supported: send JSON tensors "
            "(application/json), or binary tensors with the Inference-Header-Content-Length "
            "header"
        )
    loaded = loaded_version(model, version)

    def parse(data: bytes) -> tuple[Rows, str | None, Requested]:
        payload = _binary.load_request(data, _binary.header_length(inference_header, len(data)))
        rows, request_id = parse_v2_payload(payload, loaded.schema)
        return rows, request_id, v2_requested(payload, loaded.classes)

    if len(body) < _OFF_LOOP_BYTES:
        rows, request_id, requested = parse(body)
    else:
        rows, request_id, requested = await parse_off_loop(gateway, parse, body)
    output, served = await gateway.predict(model, rows, proba=requested.probabilities)
    head: dict[str, Any] = {"model_name": model.name, "model_version": served}
    if request_id is not None:
        head["id"] = request_id
    payload, header_length = v2_answer(head, output, requested)
    return payload, served, header_length


async def parse_off_loop(gateway: Gateway, parse: Callable[..., T], *args: Any) -> T:
    """``parse(*args)`` in a thread, answered within ``gateway_request_timeout_s`` (504 after)."""
    limit = gateway.settings.gateway_request_timeout_s
    try:
        async with asyncio.timeout(limit):
            return await asyncio.to_thread(parse, *args)
    except TimeoutError:
        message = f"the request was not parsed within {limit:g} s; send fewer rows"
        raise PredictTimeout(message) from None


def loaded_version(model: ServedModel, version: str | None) -> LoadedVersion:
    """The version being served (checked against ``version`` when one is asked for)."""
    loaded = model.current
    if loaded is None:
        raise Unavailable(f"model {model.name!r} is not loaded yet", headers={"Retry-After": "1"})
    if version not in (None, "", loaded.version):
        raise ModelNotFound(
            f"model {model.name!r} version {version} is not served; version {loaded.version} is"
        )
    return loaded
