"""The model registry: register logged models, move aliases, load models back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow.exceptions import MlflowException

from scaleml.config import Settings
from scaleml.errors import TrackingError
from scaleml.tracking._runs import Tracker, configure

if TYPE_CHECKING:
    from scaleml.tracking._training import TrackedTraining


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered model version and the alias that points at it."""

    name: str
    version: str
    alias: str

    @property
    def uri(self) -> str:
        """``models:/name@alias``."""
        return f"models:/{self.name}@{self.alias}"


def register(
    model: str | TrackedTraining,
    name: str,
    *,
    alias: str = "champion",
    tracker: Tracker | None = None,
) -> RegisteredVersion:
    """Register a logged model (its URI, a run id, or a ``TrackedTraining``) as a new version of
    ``name`` and move ``alias`` to it."""
    client = tracker.client if tracker else configure()
    if not isinstance(model, str):
        uri = model.model_uri
    elif model.startswith(("models:/", "runs:/")) or "://" in model:
        uri = model
    else:
        uri = f"runs:/{model}/model"
    try:
        version = mlflow.register_model(uri, name)
        client.set_registered_model_alias(name, alias, version.version)
    except MlflowException as exc:
        raise TrackingError(f"cannot register {uri} as {name!r}: {exc.message}") from exc
    from scaleml.tracking._monitoring import tag_version_provenance

    tag_version_provenance(client, name, str(version.version), uri)
    return RegisteredVersion(name, str(version.version), alias)


def load_model(uri: str, *, settings: Settings | None = None) -> Any:
    """Load a model as an MLflow pyfunc (``models:/name@alias``, ``models:/name/1``, ...)."""
    configure(settings)
    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise TrackingError(f"cannot load model {uri}: {exc.message}") from exc


def alias_version(name: str, alias: str, *, settings: Settings | None = None) -> str:
    """The version number that ``name@alias`` points at."""
    client = configure(settings)
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        raise TrackingError(f"no model version {name}@{alias}: {exc.message}") from exc


@dataclass(frozen=True)
class ModelVersionInfo:
    """What a server needs to know about one registered model version, as plain data."""

    name: str
    version: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    input_kind: str
    flavors: tuple[str, ...]

    @property
    def uri(self) -> str:
        """``models:/name/version``."""
        return f"models:/{self.name}/{self.version}"


def model_version_info(
    name: str, version: str, *, settings: Settings | None = None
) -> ModelVersionInfo:
    """The signature (input/output columns or tensors) and flavors of ``name`` version
    ``version``; ``input_kind`` is ``"columns"``, ``"tensor"`` or ``"none"``."""
    configure(settings)
    uri = f"models:/{name}/{version}"
    try:
        info = mlflow.models.get_model_info(uri)
    except MlflowException as exc:
        raise TrackingError(f"cannot read model {uri}: {exc.message}") from exc
    signature = info.signature
    if signature is None:
        return ModelVersionInfo(name, str(version), [], [], "none", tuple(info.flavors))
    inputs = signature.inputs
    kind = "tensor" if inputs.is_tensor_spec() else "columns"
    outputs = signature.outputs.to_dict() if signature.outputs is not None else []
    return ModelVersionInfo(
        name, str(version), inputs.to_dict(), outputs, kind, tuple(info.flavors)
    )


def version_exists(name: str, version: str, *, settings: Settings | None = None) -> bool:
    """Whether ``name`` has a registered version ``version``."""
    client = configure(settings)
    try:
        client.get_model_version(name, version)
    except MlflowException:
        return False
    return True


def registered_model_exists(name: str, *, settings: Settings | None = None) -> bool:
    """Whether a registered model called ``name`` exists (with or without versions)."""
    client = configure(settings)
    try:
        client.get_registered_model(name)
    except MlflowException:
        return False
    return True
