"""``GET /models/{name}/drift``: the served version's drift against its training contract."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from scaleml.gateway._errors import Unavailable
from scaleml.gateway.api.deps import Authorized, GatewayDep
from scaleml.gateway.api.schemas import MLFLOW_ERRORS

router = APIRouter(tags=["monitoring"])
_ERRORS = {code: MLFLOW_ERRORS[code] for code in (401, 404, 503)}


@router.get(
    "/models/{name}/drift",
    dependencies=[Authorized],
    responses=_ERRORS,
    summary="Drift of the live inputs and predictions from the training data",
)
async def drift(name: str, gateway: GatewayDep) -> dict[str, Any]:
    """The window size, rows seen, each feature's scores (PSI and Wasserstein for numeric
    features, Jensen-Shannon for categorical ones) and status against the thresholds, and the
    prediction drift (class balance for classifiers). A version served without a contract (or
    with contracts off) reports ``contract_mode: off`` and no scores."""
    model = gateway.model(name)
    loaded = model.current
    if loaded is None:
        raise Unavailable(f"model {name!r} is not loaded yet", headers={"Retry-After": "1"})
    if loaded.monitor is None:
        return {"model": name, "version": loaded.version, "contract_mode": "off", "contract": False}
    return loaded.monitor.report()
