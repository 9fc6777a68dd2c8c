"""Health, version and metrics: no token needed. Readiness is real: false until every model
is loaded."""

from __future__ import annotations

from fastapi import APIRouter, Response

import scaleml
from scaleml.gateway.api.deps import GatewayDep
from scaleml.gateway.api.schemas import Live, Ready

router = APIRouter(tags=["health"])


@router.get("/ping", response_model=Ready, responses={503: {"model": Ready}})
@router.get("/health", response_model=Ready, responses={503: {"model": Ready}})
async def ping(gateway: GatewayDep, response: Response) -> Ready:
    """MLflow's health check: 200 once every model is loaded, 503 before."""
    response.status_code = 200 if gateway.ready else 503
    return Ready(ready=gateway.ready)


@router.get("/version")
async def version(gateway: GatewayDep) -> dict[str, object]:
    """scaleml's version and the model versions being served."""
    return {
        "scaleml": scaleml.__version__,
        "backend": gateway.backend_name,
        "models": {
            name: (m.current.version if m.current else None) for name, m in gateway.models.items()
        },
    }


@router.get("/v2/health/live", response_model=Live)
async def live() -> Live:
    """The process answers."""
    return Live(live=True)


@router.get("/v2/health/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(gateway: GatewayDep, response: Response) -> Ready:
    """200 once every model is loaded, 503 before."""
    response.status_code = 200 if gateway.ready else 503
    return Ready(ready=gateway.ready)


@router.get("/metrics", response_class=Response)
async def metrics(gateway: GatewayDep) -> Response:
    """Prometheus text format."""
    return Response(gateway.metrics.render(), media_type="text/plain; version=0.0.4")
