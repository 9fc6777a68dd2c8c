"""The explanation core of both protocols, free of web-framework code: a body in (the same
formats as predictions), SHAP contributions per row and feature plus the base values out.

* MLflow scoring formats (``POST /explain``, ``/models/{name}/explain``): JSON (one of the
  four formats) or CSV in; ``{"contributions", "base_values", "features", "outputs",
  "output", "model_version"}`` out. ``contributions`` is ``[row][feature]`` for a model with
  one output (a regressor, a binary margin) and ``[row][output][feature]`` otherwise.
* Open Inference Protocol v2 (``POST /v2/models/{name}/explain``): the tensors of ``infer``
  in; a ``contributions`` tensor (shape ``[n, features]`` or ``[n, outputs, features]``) and a
  ``base_values`` tensor (``[outputs]``) out, the names in ``parameters``. Binary tensors
  work both ways as for ``infer``: inputs with ``binary_data_size``, and the outputs asked for
  in binary (``binary_data`` of a requested output, or ``binary_data_output`` for all, as
  tritonclient asks by default) after the JSON header.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaleml.gateway import _binary
from scaleml.gateway._codecs import dumps, parse_v2_payload
from scaleml.gateway._contract import RequestError, Rows, load_json
from scaleml.gateway._errors import (
    GatewayError,
    PredictTimeout,
    Unavailable,
    UnsupportedMediaType,
)
from scaleml.gateway._explain_host import ExplainUnavailable
from scaleml.gateway._gateway import Gateway
from scaleml.gateway._models import ServedModel
from scaleml.gateway._outputs import Requested, encode_answer, v2_requested
from scaleml.gateway._protocols import loaded_version, parse_off_loop

_OFF_LOOP_BYTES = 64 * 1024
EXPLAIN_OUTPUTS = ("contributions", "base_values")


class NotExplainable(GatewayError):
    """The served version cannot be explained as it was logged (no background)."""

    status = 409
    error_code = "INVALID_STATE"


async def explain_rows(gateway: Gateway, model: ServedModel, rows: Rows) -> tuple[dict, str]:
    """Explain ``rows`` through the model's explanation batcher, within the time limit."""
    import asyncio

    from scaleml.gateway._batcher import QueueFull

    try:
        async with asyncio.timeout(gateway.settings.gateway_request_timeout_s):
            return await model.explain(rows)
    except QueueFull as exc:
        raise Unavailable(str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    except TimeoutError:
        raise PredictTimeout(
            f"no explanation within {gateway.settings.gateway_request_timeout_s:g} s; "
            "retry, or send fewer rows"
        ) from None
    except ExplainUnavailable as exc:
        raise NotExplainable(str(exc)) from None
    except ValueError as exc:
        if type(exc).__name__ == "ExplainUnavailable":  # raised on a worker, unpickled here
            raise NotExplainable(str(exc)) from None
        raise


def _contributions(result: dict[str, Any]) -> np.ndarray:
    values = np.asarray(result["values"], dtype=np.float64)
    return values[:, 0, :] if values.shape[1] == 1 else values


async def mlflow_explain(
    gateway: Gateway, model: ServedModel, content_type: str | None, body: bytes
) -> tuple[bytes, str]:
    """MLflow scoring formats in, contributions out (the module docstring's shape)."""
    schema = loaded_version(model, None).schema
    if content_type == "application/json":

        def parse(data: bytes) -> Rows:
            payload = load_json(data)
            if isinstance(payload, dict) and payload.get("params") is not None:
                raise RequestError("params: explanations take no parameters", "params")
            return schema.from_mlflow_payload(payload)

    elif content_type == "text/csv":
        parse = schema.from_csv
    else:
        raise UnsupportedMediaType(
            f"content type {content_type or '(none)'} is not supported: send "
            "application/json (dataframe_split, dataframe_records, instances or inputs) "
            "or text/csv"
        )
    rows = (
        parse(body) if len(body) < _OFF_LOOP_BYTES else await parse_off_loop(gateway, parse, body)
    )
    result, version = await explain_rows(gateway, model, rows)
    answer = {
        "contributions": _contributions(result).tolist(),
        "base_values": np.asarray(result["base"], dtype=np.float64).tolist(),
        "features": result["features"],
        "outputs": result["outputs"],
        "output": result["output"],
        "model_version": version,
    }
    return dumps(answer), version


async def v2_explain(
    gateway: Gateway,
    model: ServedModel,
    version: str | None,
    content_type: str | None,
    body: bytes,
    inference_header: str | None = None,
) -> tuple[bytes, str, int | None]:
    """Open Inference Protocol v2 tensors in, ``contributions`` and ``base_values`` tensors
    out (JSON or binary, as asked); returns the body, the version that answered and the JSON
    header's length when the body holds binary outputs."""
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
        return rows, request_id, _requested(payload)

    if len(body) < _OFF_LOOP_BYTES:
        rows, request_id, requested = parse(body)
    else:
        rows, request_id, requested = await parse_off_loop(gateway, parse, body)
    result, served = await explain_rows(gateway, model, rows)
    values = _contributions(result)
    base = np.asarray(result["base"], dtype=np.float64)
    head: dict[str, Any] = {"model_name": model.name, "model_version": served}
    if request_id is not None:
        head["id"] = request_id
    head["parameters"] = {
        "features": result["features"],
        "outputs": result["outputs"],
        "output": result["output"],
    }
    tensors = {
        "contributions": {
            "name": "contributions",
            "datatype": "FP64",
            "shape": list(values.shape),
            "data": values.ravel().tolist(),
        },
        "base_values": {
            "name": "base_values",
            "datatype": "FP64",
            "shape": [len(base)],
            "data": base.tolist(),
        },
    }
    chosen = list(tensors) if requested.names is None else list(requested.names)
    payload, header_length = encode_answer(head, [tensors[n] for n in chosen], requested)
    return payload, served, header_length


def _requested(payload: Any) -> Requested:
    """The outputs asked for (``contributions``, ``base_values``) and which go back binary."""
    requested = v2_requested(payload, [])
    for name in requested.names or ():
        if name not in EXPLAIN_OUTPUTS:
            raise RequestError(
                f"output {name!r} is not an output of explain; it has {list(EXPLAIN_OUTPUTS)}",
                name,
            )
    return requested
