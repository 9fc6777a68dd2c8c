"""MLflow's scoring protocol: ``POST /invocations`` (one model, or ``X-Model``) and
``POST /models/{name}/invocations``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from scaleml.gateway._codecs import dumps, mlflow_predictions
from scaleml.gateway._errors import Unavailable, UnsupportedMediaType
from scaleml.gateway._models import ServedModel
from scaleml.gateway.api.deps import PredictDep, PredictRequest
from scaleml.gateway.api.schemas import INVOCATIONS_BODY, MLFLOW_ERRORS, Predictions

router = APIRouter(tags=["MLflow scoring protocol"])
_OFF_LOOP_BYTES = 64 * 1024  # parse bigger bodies in a thread


@router.post(
    "/invocations",
    response_model=Predictions,
    responses=MLFLOW_ERRORS,
    openapi_extra=INVOCATIONS_BODY,
    summary="Predict with the served model",
    description="With several models served, name one in the X-Model header.",
)
async def invocations(request: Request, call: PredictDep) -> Response:
    model = call.gateway.model(request.headers.get("x-model"))
    return await _invoke(request, call, model)


@router.post(
    "/models/{name}/invocations",
    response_model=Predictions,
    responses=MLFLOW_ERRORS,
    openapi_extra=INVOCATIONS_BODY,
    summary="Predict with the model called name",
)
async def model_invocations(name: str, request: Request, call: PredictDep) -> Response:
    return await _invoke(request, call, call.gateway.model(name))


async def _invoke(request: Request, call: PredictRequest, model: ServedModel) -> Response:
    request.state.model = model.name
    loaded = model.current
    if loaded is None:
        raise Unavailable(f"model {model.name!r} is not loaded yet", headers={"Retry-After": "1"})
    if call.content_type == "application/json":
        parse = loaded.schema.from_mlflow_json
    elif call.content_type == "text/csv":
        parse = loaded.schema.from_csv
    else:
        raise UnsupportedMediaType(
            f"content type {call.content_type or '(none)'} is not supported: send "
            "application/json (dataframe_split, dataframe_records, instances or inputs) "
            "or text/csv"
        )
    body = call.body
    rows = parse(body) if len(body) < _OFF_LOOP_BYTES else await asyncio.to_thread(parse, body)
    output, version = await call.gateway.predict(model, rows)
    request.state.version = version
    return Response(
        dumps({"predictions": mlflow_predictions(output), "model_version": version}),
        media_type="application/json",
        headers={"X-Model-Version": version},
    )
