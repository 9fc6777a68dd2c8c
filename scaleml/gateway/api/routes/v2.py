"""Open Inference Protocol v2 (KServe / Triton REST): metadata, readiness, ``infer``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

import scaleml
from scaleml.gateway._binary import HEADER
from scaleml.gateway._contract import V2_TYPES as _V2_TYPES
from scaleml.gateway._models import LoadedVersion, ServedModel
from scaleml.gateway._outputs import PROBABILITIES
from scaleml.gateway._protocols import loaded_version, v2_infer
from scaleml.gateway.api.deps import Authorized, GatewayDep, PredictDep, PredictRequest
from scaleml.gateway.api.schemas import (
    INFER_BODY,
    V2_ERRORS,
    ModelReady,
    V2InferResponse,
    V2ModelMetadata,
    V2ServerMetadata,
)

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"])
EXTENSIONS = ["binary_tensor_data", "model_configuration"]


@router.get("", dependencies=[Authorized], response_model=V2ServerMetadata, responses=V2_ERRORS)
async def server_metadata() -> V2ServerMetadata:
    return V2ServerMetadata(
        name="scaleml-gateway", version=scaleml.__version__, extensions=EXTENSIONS
    )


@router.get(
    "/models/{name}",
    dependencies=[Authorized],
    response_model=V2ModelMetadata,
    response_model_exclude_none=True,
    responses=V2_ERRORS,
)
async def model_metadata(name: str, gateway: GatewayDep) -> V2ModelMetadata:
    return _metadata(name, loaded_version(gateway.model(name), None))


@router.get(
    "/models/{name}/versions/{version}",
    dependencies=[Authorized],
    response_model=V2ModelMetadata,
    response_model_exclude_none=True,
    responses=V2_ERRORS,
)
async def version_metadata(name: str, version: str, gateway: GatewayDep) -> V2ModelMetadata:
    return _metadata(name, loaded_version(gateway.model(name), version))


@router.get(
    "/models/{name}/ready",
    dependencies=[Authorized],
    response_model=ModelReady,
    responses=V2_ERRORS,
)
async def model_ready(name: str, gateway: GatewayDep, response: Response) -> ModelReady:
    ready = gateway.model(name).ready
    response.status_code = 200 if ready else 503
    return ModelReady(name=name, ready=ready)


@router.post(
    "/models/{name}/infer",
    response_model=V2InferResponse,
    responses=V2_ERRORS,
    openapi_extra=INFER_BODY,
)
async def infer(name: str, request: Request, call: PredictDep) -> Response:
    return await _infer(request, call, call.gateway.model(name), None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=V2InferResponse,
    responses=V2_ERRORS,
    openapi_extra=INFER_BODY,
)
async def infer_version(name: str, version: str, request: Request, call: PredictDep) -> Response:
    return await _infer(request, call, call.gateway.model(name), version)


async def _infer(
    request: Request, call: PredictRequest, model: ServedModel, version: str | None
) -> Response:
    request.state.model = model.name
    payload, served, header_length = await v2_infer(
        call.gateway, model, version, call.content_type, call.body, request.headers.get(HEADER)
    )
    request.state.version = served
    if header_length is None:
        return Response(payload, media_type="application/json")
    headers = {HEADER: str(header_length)}
    return Response(payload, media_type="application/octet-stream", headers=headers)


_NUMPY_V2 = {
    "float64": "FP64",
    "float32": "FP32",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
}


def _metadata(name: str, loaded: LoadedVersion) -> V2ModelMetadata:
    inputs = [
        {"name": c.name, "datatype": c.v2_datatype, "shape": [-1]} for c in loaded.schema.columns
    ]
    outputs = []
    for i, spec in enumerate(loaded.outputs):
        if spec.get("type") == "tensor":
            tensor = spec.get("tensor-spec", {})
            datatype = _NUMPY_V2.get(str(tensor.get("dtype")), "BYTES")
            shape = [int(d) for d in tensor.get("shape", [-1])]
            outputs.append({"name": "predictions", "datatype": datatype, "shape": shape})
        else:
            column = str(spec.get("name", f"output_{i}"))
            datatype = _V2_TYPES.get(str(spec.get("type")), "BYTES")
            outputs.append({"name": column, "datatype": datatype, "shape": [-1]})
    if loaded.classes is not None:
        outputs.append(
            {
                "name": PROBABILITIES,
                "datatype": "FP64",
                "shape": [-1, len(loaded.classes)],
                "parameters": {"classes": loaded.classes},
            }
        )
    return V2ModelMetadata(
        name=name, versions=[loaded.version], platform="mlflow", inputs=inputs, outputs=outputs
    )
