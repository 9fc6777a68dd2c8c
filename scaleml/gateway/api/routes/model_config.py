"""Triton's model configuration extension: ``GET /v2/models/{name}[/versions/{v}]/config``
(what ``tritonclient``'s ``get_model_config`` asks for)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from scaleml.gateway._protocols import loaded_version
from scaleml.gateway.api.deps import Authorized, GatewayDep
from scaleml.gateway.api.routes.v2 import _metadata
from scaleml.gateway.api.schemas import V2_ERRORS

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"])
_TRITON_TYPES = {"BYTES": "TYPE_STRING"}  # the others are TYPE_ + the v2 datatype


@router.get("/models/{name}/config", dependencies=[Authorized], responses=V2_ERRORS)
async def model_config(name: str, gateway: GatewayDep) -> dict[str, Any]:
    """The served version's configuration in Triton's model config JSON."""
    return _config(name, gateway, None)


@router.get(
    "/models/{name}/versions/{version}/config", dependencies=[Authorized], responses=V2_ERRORS
)
async def version_config(name: str, version: str, gateway: GatewayDep) -> dict[str, Any]:
    """The configuration of ``version`` (404 unless it is the version being served)."""
    return _config(name, gateway, version)


def _config(name: str, gateway: Any, version: str | None) -> dict[str, Any]:
    """Triton's fields: ``max_batch_size`` 0 says the batch dimension is part of ``dims``
    (each input is one column of ``[-1]`` rows); the gateway batches requests itself, up to
    ``gateway_max_batch_size`` rows or ``gateway_max_wait_ms``, reported in ``parameters``."""
    loaded = loaded_version(gateway.model(name), version)
    metadata = _metadata(name, loaded)
    settings = gateway.settings

    def tensor(t: Any) -> dict[str, Any]:
        entry = {
            "name": t.name,
            "data_type": _TRITON_TYPES.get(t.datatype, f"TYPE_{t.datatype}"),
            "dims": t.shape,
        }
        if t.parameters and "classes" in t.parameters:
            entry["parameters"] = {"classes": {"string_value": _joined(t.parameters["classes"])}}
        return entry

    return {
        "name": name,
        "platform": "mlflow",
        "backend": f"scaleml-{gateway.backend_name}",
        "version_policy": {"specific": {"versions": [int(loaded.version)]}},
        "max_batch_size": 0,
        "input": [tensor(t) for t in metadata.inputs],
        "output": [tensor(t) for t in metadata.outputs],
        "parameters": {
            "max_batch_rows": {"string_value": str(settings.gateway_max_batch_size)},
            "max_wait_ms": {"string_value": f"{settings.gateway_max_wait_ms:g}"},
        },
    }


def _joined(classes: list[Any]) -> str:
    return ",".join(str(c) for c in classes)
