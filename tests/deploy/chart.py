"""Render the Helm chart offline (helm-python-sdk: Helm's engine as a library, no helm binary)
and walk what it renders."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "scaleml"
RELEASE = "rel"
NAMESPACE = "ml"
CRD_KINDS = {"DaskCluster", "DaskAutoscaler", "ServiceMonitor"}

MODELS = ["churn@champion", "fraud/3"]
CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "gateway": {"gateway": {"models": MODELS}, "settings": {"experiment": "churn"}},
    "operator": {"gateway": {"models": MODELS}, "dask": {"operator": {"enabled": True}}},
    "hpa-off": {
        "gateway": {"models": MODELS, "autoscaling": {"enabled": False}, "replicas": 3},
        "dask": {"worker": {"resources": {"limits": {"cpu": "1500m", "memory": "6Gi"}}}},
    },
    "external-postgres": {
        "gateway": {"models": MODELS, "auth": {"existingSecret": "gw-token"}},
        "coordinator": {
            "replicas": 3,
            "database": {"existingSecret": "jobs-db", "existingSecretKey": "url"},
            "auth": {"existingSecret": "coord-token"},
        },
        "mlflow": {
            "backendStore": {
                "postgres": {"enabled": True, "host": "db.internal", "database": "mlflow"},
                "existingDatabaseSecret": {"name": "mlflow-db", "passwordKey": "password"},
            },
            "artifactRoot": {
                "s3": {
                    "enabled": True,
                    "bucket": "models",
                    "path": "mlflow",
                    "existingSecret": {"name": "s3-keys"},
                }
            },
        },
    },
    "policies-ingress": {
        "gateway": {"models": MODELS},
        "networkPolicy": {"enabled": True},
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "hosts": [
                {
                    "host": "ml.example.com",
                    "paths": [
                        {"path": "/", "pathType": "Prefix", "component": "gateway"},
                        {"path": "/jobs", "pathType": "Prefix", "component": "coordinator"},
                    ],
                }
            ],
        },
        "serviceMonitor": {"enabled": True},
        "postgresql": {"enabled": True},
        "mlflow": {"persistence": {"enabled": True}},
    },
    "optional-off": {
        "coordinator": {"enabled": False},
        "gateway": {"enabled": False, "models": MODELS},
        "mlflow": {"enabled": False},
        "tests": {"enabled": False},
        "serviceAccount": {"create": False},
    },
}


@cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(values: dict[str, Any], release: str = RELEASE) -> dict[str, str]:
    """Template path -> rendered text."""
    return chart().render(values, name=release, namespace=NAMESPACE, is_install=True)


def objects(values: dict[str, Any], release: str = RELEASE) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders with ``values`` (a fresh copy)."""
    return copy.deepcopy(_objects(json.dumps(values, sort_keys=True), release))


@cache
def _objects(values_json: str, release: str) -> list[dict[str, Any]]:
    found = []
    for path, text in render(json.loads(values_json), release).items():
        if path.endswith("NOTES.txt"):
            continue
        found += [doc for doc in yaml.safe_load_all(text) if doc]
    return found


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(what, pod spec, pod labels) of every pod template in ``obj``."""
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet"):
        template = obj["spec"]["template"]
        yield kind, template["spec"], template["metadata"]["labels"]
    elif kind == "Pod":
        yield kind, obj["spec"], obj["metadata"]["labels"]
    elif kind == "DaskCluster":
        for part in ("scheduler", "worker"):
            yield f"DaskCluster {part}", obj["spec"][part]["spec"], {}


def containers(objs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, container) of every container."""
    for obj in objs:
        for _, spec, _ in pod_specs(obj):
            for container in spec["containers"]:
                yield obj, container


def container(objs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [c for _, c in containers(objs) if c["name"] == name]
    assert len(found) == 1, [c["name"] for _, c in containers(objs)]
    return found[0]
