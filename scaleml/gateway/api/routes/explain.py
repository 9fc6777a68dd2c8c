"""Explanations next to predictions: ``POST /explain`` (one model, or ``X-Model``),
``POST /models/{name}/explain`` (MLflow scoring formats) and
``POST /v2/models/{name}/explain`` (Open Inference Protocol v2 tensors)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from scaleml.gateway._binary import HEADER
from scaleml.gateway._explain_protocols import mlflow_explain, v2_explain
from scaleml.gateway._models import ServedModel
from scaleml.gateway.api.deps import PredictDep, PredictRequest
from scaleml.gateway.api.schemas import (
    INFER_BODY,
    INVOCATIONS_BODY,
    MLFLOW_ERRORS,
    V2_ERRORS,
    MlflowError,
    V2Error,
    V2Tensor,
)

router = APIRouter(tags=["Explanations"])


class Contributions(BaseModel):
    """SHAP contributions of each row, in the MLflow scoring protocol's style."""

    contributions: list[Any] = Field(
        description="[row][feature] for one output, else [row][output][feature]."
    )
    base_values: list[float] = Field(description="One per output.")
    features: list[str]
    outputs: list[str]
    output: str = Field(description="The space explained: margin, probability or prediction.")
    model_version: str


class V2ExplainResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2Tensor]
    parameters: dict[str, Any]


_CONFLICT = "The model version cannot be explained: no explanation background was logged."
MLFLOW_RESPONSES = {**MLFLOW_ERRORS, 409: {"model": MlflowError, "description": _CONFLICT}}
V2_RESPONSES = {**V2_ERRORS, 409: {"model": V2Error, "description": _CONFLICT}}


@router.post(
    "/explain",
    response_model=Contributions,
    responses=MLFLOW_RESPONSES,
    openapi_extra=INVOCATIONS_BODY,
    summary="SHAP contributions of rows for the served model",
    description="With several models served, name one in the X-Model header.",
)
async def explain(request: Request, call: PredictDep) -> Response:
    model = call.gateway.model(request.headers.get("x-model"))
    return await _explain(request, call, model, "/explain")


@router.post(
    "/models/{name}/explain",
    response_model=Contributions,
    responses=MLFLOW_RESPONSES,
    openapi_extra=INVOCATIONS_BODY,
    summary="SHAP contributions of rows for the model called name",
)
async def model_explain(name: str, request: Request, call: PredictDep) -> Response:
    return await _explain(request, call, call.gateway.model(name), "/models/{name}/explain")


@router.post(
    "/v2/models/{name}/explain",
    response_model=V2ExplainResponse,
    responses=V2_RESPONSES,
    openapi_extra=INFER_BODY,
    summary="SHAP contributions as an Open Inference Protocol tensor",
)
async def v2_model_explain(name: str, request: Request, call: PredictDep) -> Response:
    model = call.gateway.model(name)
    request.state.model = model.name
    request.state.route = "/v2/models/{name}/explain"
    payload, version, header_length = await v2_explain(
        call.gateway, model, None, call.content_type, call.body, request.headers.get(HEADER)
    )
    request.state.version = version
    if header_length is None:
        return Response(payload, media_type="application/json")
    headers = {HEADER: str(header_length)}
    return Response(payload, media_type="application/octet-stream", headers=headers)


async def _explain(
    request: Request, call: PredictRequest, model: ServedModel, route: str
) -> Response:
    request.state.model = model.name
    request.state.route = route
    payload, version = await mlflow_explain(call.gateway, model, call.content_type, call.body)
    request.state.version = version
    return Response(payload, media_type="application/json", headers={"X-Model-Version": version})
