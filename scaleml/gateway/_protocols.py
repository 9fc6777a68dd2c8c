"""The predict core of both protocols, free of web-framework code: a body and its content
type in, response bytes and the version that answered out, domain errors raised.

Used by the FastAPI routes and by the fast lane in front of them (``_fastlane``).
"""

from __future__ import annotations

import asyncio

from scaleml.gateway._codecs import dumps, mlflow_predictions, parse_v2, v2_outputs
from scaleml.gateway._errors import ModelNotFound, Unavailable, UnsupportedMediaType
from scaleml.gateway._gateway import Gateway
from scaleml.gateway._models import LoadedVersion, ServedModel

_OFF_LOOP_BYTES = 64 * 1024  # parse bigger bodies in a thread: the loop keeps answering


async def mlflow_invocations(
    gateway: Gateway, model: ServedModel, content_type: str | None, body: bytes
) -> tuple[bytes, str]:
    """MLflow scoring protocol: JSON (one of the four formats) or CSV in, predictions out."""
    loaded = loaded_version(model, None)
    if content_type == "application/json":
        parse = loaded.schema.from_mlflow_json
    elif content_type == "text/csv":
        parse = loaded.schema.from_csv
    else:
        raise UnsupportedMediaType(
            f"content type {content_type or '(none)'} is not supported: send "
            "application/json (dataframe_split, dataframe_records, instances or inputs) "
            "or text/csv"
        )
    rows = parse(body) if len(body) < _OFF_LOOP_BYTES else await asyncio.to_thread(parse, body)
    output, version = await gateway.predict(model, rows)
    return dumps({"predictions": mlflow_predictions(output), "model_version": version}), version


async def v2_infer(
    gateway: Gateway,
    model: ServedModel,
    version: str | None,
    content_type: str | None,
    body: bytes,
) -> tuple[bytes, str]:
    """Open Inference Protocol v2: JSON tensors in, JSON tensors out, ``id`` echoed."""
    if content_type not in (None, "application/json"):
        raise UnsupportedMediaType(
            f"content type {content_type} is not supported: send JSON tensors (application/json)"
        )
    loaded = loaded_version(model, version)
    if len(body) < _OFF_LOOP_BYTES:
        rows, request_id = parse_v2(body, loaded.schema)
    else:
        rows, request_id = await asyncio.to_thread(parse_v2, body, loaded.schema)
    output, served = await gateway.predict(model, rows)
    answer = {"model_name": model.name, "model_version": served, "outputs": v2_outputs(output)}
    if request_id is not None:
        answer["id"] = request_id
    return dumps(answer), served


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
