"""What a request asks the model for, and the answer in each protocol's form.

Both protocols can ask for class probabilities (``predict_proba``) besides the labels:

* MLflow scoring protocol: ``"params": {"predict_method": "predict_proba"}`` next to the data
  (MLflow's scoring server passes ``params`` to the model the same way);
* Open Inference Protocol v2: an output named ``probabilities`` in ``outputs`` (shape
  ``[n, n_classes]``, the classes in the tensor's ``parameters.classes``), with or without
  ``predictions`` (the labels).

v2 outputs are JSON or binary (the binary tensor data extension, ``_binary``), per output
(``parameters.binary_data``) or for all (``parameters.binary_data_output``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scaleml.gateway import _binary
from scaleml.gateway._codecs import dumps, mlflow_predictions, v2_outputs
from scaleml.gateway._contract import RequestError

PREDICTIONS = "predictions"
PROBABILITIES = "probabilities"
PREDICT_METHODS = ("predict", "predict_proba")


def mlflow_wants_probabilities(params: Any, classes: list[Any] | None) -> bool:
    """Whether MLflow's ``params`` ask for ``predict_proba`` (checked against the model)."""
    if params is None:
        return False
    if not isinstance(params, dict):
        raise RequestError("params must be an object, e.g. {'predict_method': 'predict_proba'}")
    for key in params:
        if key != "predict_method":
            raise RequestError(
                f"params.{key} is not a parameter of this gateway; the one accepted is "
                "predict_method ('predict' or 'predict_proba')",
                f"params.{key}",
            )
    method = params.get("predict_method", "predict")
    if method not in PREDICT_METHODS:
        raise RequestError(
            f"params.predict_method must be 'predict' or 'predict_proba', got {method!r}",
            "params.predict_method",
        )
    if method == "predict_proba" and classes is None:
        raise RequestError(
            "params.predict_method: this model has no predict_proba (it is not a classifier); "
            "ask for 'predict'",
            "params.predict_method",
        )
    return method == "predict_proba"


def mlflow_answer(output: Any, version: str) -> bytes:
    """MLflow's ``{"predictions": ...}`` (probabilities with their ``classes`` when asked)."""
    if isinstance(output, tuple):
        _, probabilities, classes = output
        return dumps(
            {"predictions": probabilities.tolist(), "classes": classes, "model_version": version}
        )
    return dumps({"predictions": mlflow_predictions(output), "model_version": version})


@dataclass(frozen=True, slots=True)
class Requested:
    """The outputs a v2 request names (``None``: the default, ``predictions``) and which of
    them go back as binary data."""

    names: tuple[str, ...] | None
    binary: dict[str, bool]
    binary_default: bool

    @property
    def probabilities(self) -> bool:
        return self.names is not None and PROBABILITIES in self.names


def v2_requested(payload: dict[str, Any], classes: list[Any] | None) -> Requested:
    """Read ``outputs`` and ``parameters.binary_data_output`` of a v2 request."""
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError("parameters must be an object", "parameters")
    binary_default = _flag(parameters, "binary_data_output", "parameters")
    outputs = payload.get("outputs")
    if outputs is None:
        return Requested(None, {}, binary_default)
    if not isinstance(outputs, list):
        raise RequestError("outputs must be a list of {name, parameters}", "outputs")
    names: list[str] = []
    binary: dict[str, bool] = {}
    for index, output in enumerate(outputs):
        name = output.get("name") if isinstance(output, dict) else None
        if not isinstance(name, str):
            raise RequestError(f"outputs[{index}] must be an object with a name", "outputs")
        params = output.get("parameters") or {}
        if not isinstance(params, dict):
            raise RequestError(f"output {name!r}: parameters must be an object", name)
        if "classification" in params:
            raise RequestError(
                f"output {name!r}: the classification extension is not supported; ask for "
                f"the {PROBABILITIES!r} output (each class's probability) instead",
                name,
            )
        if "binary_data" in params:
            binary[name] = _flag(params, "binary_data", f"output {name!r}")
        names.append(name)
    if PROBABILITIES in names and classes is None:
        raise RequestError(
            f"output {PROBABILITIES!r}: this model has no predict_proba (it is not a "
            f"classifier); ask for {PREDICTIONS!r}",
            PROBABILITIES,
        )
    return Requested(tuple(names), binary, binary_default)


def v2_answer(head: dict[str, Any], output: Any, requested: Requested) -> tuple[bytes, int | None]:
    """The response body and, with binary outputs, the JSON header's length. ``output`` is
    the labels, or ``(labels, probabilities, classes)``."""
    if isinstance(output, tuple):
        labels, probabilities, classes = output
        tensors = v2_outputs(labels)
        (probas,) = v2_outputs(probabilities, PROBABILITIES)
        probas["parameters"] = {"classes": classes}
        tensors.append(probas)
    else:
        tensors = v2_outputs(output)
    if requested.names is not None:
        by_name = {t["name"]: t for t in tensors}
        for name in requested.names:
            if name not in by_name:
                raise RequestError(
                    f"output {name!r} is not an output of this model; it has "
                    f"{[*by_name, *([] if PROBABILITIES in by_name else [PROBABILITIES])]}",
                    name,
                )
        tensors = [by_name[name] for name in requested.names]
    return encode_answer(head, tensors, requested)


def encode_answer(
    head: dict[str, Any], tensors: list[dict[str, Any]], requested: Requested
) -> tuple[bytes, int | None]:
    """``head`` with ``tensors`` as its outputs, those asked for in binary moved after the JSON
    header; returns the body and the header's length (None when all is JSON)."""
    tails: list[bytes] = []
    for tensor in tensors:
        if requested.binary.get(tensor["name"], requested.binary_default):
            data = np.asarray(tensor.pop("data"))
            raw = _binary.encode(data, tensor["datatype"])
            tensor["parameters"] = {**tensor.get("parameters", {}), "binary_data_size": len(raw)}
            tails.append(raw)
    header = dumps({**head, "outputs": tensors})
    if not tails:
        return header, None
    return b"".join([header, *tails]), len(header)


def _flag(parameters: dict[str, Any], key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise RequestError(f"{where}: {key} must be true or false, got {value!r}", key)
    return value
