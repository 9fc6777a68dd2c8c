"""JSON documents kept next to a model (its contract, its provenance), found from a model URI.

A model URI (``models:/name/3``, ``models:/name@champion``, ``models:/m-<id>`` as MLflow 3
returns from ``log_model``, or ``runs:/<run>/model``) leads to the run that logged the
model; the documents are that run's artifacts.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from scaleml.config import Settings
from scaleml.errors import TrackingError
from scaleml.tracking._runs import configure

_REGISTERED = re.compile(r"^models:/(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))$")


def model_run_id(model_uri: str, *, settings: Settings | None = None) -> str:
    """The id of the run that logged the model at ``model_uri``."""
    client = configure(settings)
    try:
        return _run_id(client, model_uri)
    except MlflowException as exc:
        raise TrackingError(f"cannot find the model {model_uri}: {exc.message}") from exc


def _run_id(client: MlflowClient, uri: str) -> str:
    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/", 1)[0]
    match = _REGISTERED.match(uri)
    if match and not match["name"].startswith("m-"):
        if match["alias"]:
            version = client.get_model_version_by_alias(match["name"], match["alias"])
        else:
            version = client.get_model_version(match["name"], match["version"])
        if not version.run_id:
            raise TrackingError(f"{uri} was registered from outside a run; it has no run")
        return version.run_id
    if uri.startswith("models:/"):
        logged = client.get_logged_model(uri.removeprefix("models:/").split("/", 1)[0])
        if not logged.source_run_id:
            raise TrackingError(f"{uri} was logged outside a run")
        return logged.source_run_id
    if "/" not in uri and len(uri) >= 32:
        return uri
    raise TrackingError(f"not a model URI: {uri!r} (models:/NAME/VERSION, models:/NAME@ALIAS)")


def read_json_artifact(
    run_id: str, path: str, *, settings: Settings | None = None
) -> dict[str, Any] | None:
    """The JSON artifact ``path`` of run ``run_id``; None when the run has no such file."""
    client = configure(settings)
    parent = str(Path(path).parent) if "/" in path else None
    try:
        listed = {info.path for info in client.list_artifacts(run_id, parent)}
    except MlflowException as exc:
        raise TrackingError(f"cannot list the artifacts of run {run_id}: {exc.message}") from exc
    if path not in listed:
        return None
    with tempfile.TemporaryDirectory() as directory:
        try:
            local = client.download_artifacts(run_id, path, directory)
        except MlflowException as exc:
            raise TrackingError(f"cannot read {path} of run {run_id}: {exc.message}") from exc
        try:
            return json.loads(Path(local).read_text())
        except ValueError as exc:
            raise TrackingError(f"{path} of run {run_id} is not valid JSON: {exc}") from None
