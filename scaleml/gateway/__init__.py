"""Gateway stage: registered models over HTTP (MLflow scoring protocol, Open Inference
Protocol v2), requests batched and predicted on Dask workers that hold the model."""

from scaleml.gateway._models import ModelSpec
from scaleml.gateway._server import BackgroundGateway, serve_forever, serve_in_background
from scaleml.gateway.app import create_app

__all__ = [
    "BackgroundGateway",
    "ModelSpec",
    "create_app",
    "serve_forever",
    "serve_in_background",
]
