"""Routers: MLflow scoring protocol, Open Inference Protocol v2, health and metrics."""
