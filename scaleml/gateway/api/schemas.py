"""Response and request shapes, for the OpenAPI document at ``/docs``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Predictions(BaseModel):
    """MLflow scoring protocol answer."""

    predictions: list[Any]
    model_version: str = Field(description="The registered model version that answered.")


class MlflowError(BaseModel):
    error_code: str
    message: str


class V2Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class V2InferRequest(BaseModel):
    id: str | None = None
    inputs: list[V2Tensor]
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2Tensor]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = Field(
        default=None, description="For 'probabilities': the classes, in column order."
    )


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Error(BaseModel):
    error: str


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


MLFLOW_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": MlflowError} for code in (400, 401, 404, 408, 413, 415, 503, 504)
}
V2_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": V2Error} for code in (400, 401, 404, 408, 413, 415, 503, 504)
}
INVOCATIONS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "Exactly one of dataframe_split, dataframe_records, "
                    "instances, inputs (MLflow's scoring protocol).",
                },
                "example": {"dataframe_split": {"columns": ["f0", "f1"], "data": [[0.1, 0.2]]}},
            },
            "text/csv": {"schema": {"type": "string"}, "example": "f0,f1\n0.1,0.2\n"},
        },
    }
}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` inlined: a schema placed in an operation's
    ``openapi_extra`` cannot point into a ``$defs`` of its own (``#/$defs/...`` resolves
    against the whole OpenAPI document)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": inline_schema(V2InferRequest)}},
    }
}
