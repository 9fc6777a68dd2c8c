"""MLflow's scoring protocol: ``POST /invocations`` (one model, or ``X-Model``) and
``POST /models/{name}/invocations``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from scaleml.gateway._models import ServedModel
from scaleml.gateway._protocols import mlflow_invocations
from scaleml.gateway.api.deps import PredictDep, PredictRequest
from scaleml.gateway.api.schemas import INVOCATIONS_BODY, MLFLOW_ERRORS, Predictions

router = APIRouter(tags=["MLflow scoring protocol"])


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
    payload, version = await mlflow_invocations(call.gateway, model, call.content_type, call.body)
    request.state.version = version
    return Response(payload, media_type="application/json", headers={"X-Model-Version": version})
