"""Wire formats: MLflow ``predictions`` and Open Inference Protocol v2 tensors."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from scaleml.gateway._contract import InputSchema, RequestError, Rows, load_json

_NUMERIC_V2 = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64"}
_NUMERIC_V2 |= {"UINT8", "UINT16", "UINT32", "UINT64"}
_V2_OF_KIND = {"f": "FP64", "i": "INT64", "u": "UINT64", "b": "BOOL"}
_MAX_DEPTH = 32  # nested data lists: a tensor has far fewer dimensions


def mlflow_predictions(output: Any) -> Any:
    """A prediction as MLflow's scoring server renders it (records for DataFrames)."""
    if isinstance(output, pd.DataFrame):
        return output.to_dict(orient="records")
    return output.tolist()


def dumps(payload: Any) -> bytes:
    """Compact JSON (NaN/Infinity kept as MLflow does)."""
    return json.dumps(payload, separators=(",", ":"), default=_default).encode()


def v2_outputs(output: Any, name: str = "predictions") -> list[dict[str, Any]]:
    """Output tensors: one named ``name`` for an array, one per column for a DataFrame."""
    if isinstance(output, pd.DataFrame):
        return [_tensor(str(col), output[col].to_numpy()) for col in output.columns]
    return [_tensor(name, np.asarray(output))]


def _tensor(name: str, array: np.ndarray) -> dict[str, Any]:
    datatype = _V2_OF_KIND.get(array.dtype.kind, "BYTES")
    if array.dtype.kind == "f" and array.dtype.itemsize == 4:
        datatype = "FP32"
    data = array.ravel().tolist() if datatype != "BYTES" else [str(v) for v in array.ravel()]
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def parse_v2(body: bytes, schema: InputSchema) -> tuple[Rows, str | None]:
    """Validate a v2 inference request; return its rows and its ``id``.

    Inputs are one tensor per column (shape ``[n]`` or ``[n, 1]``), or a single 2-D tensor
    ``[n, n_columns]`` holding the columns in signature order.
    """
    return parse_v2_payload(load_json(body), schema)


def parse_v2_payload(payload: Any, schema: InputSchema) -> tuple[Rows, str | None]:
    """:func:`parse_v2` of an already decoded request (e.g. with binary inputs decoded)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise RequestError("the body must be {'inputs': [{name, shape, datatype, data}, ...]}")
    request_id = payload.get("id")
    tensors = [_check_tensor(t, i) for i, t in enumerate(payload["inputs"])]
    if not tensors:
        raise RequestError("inputs is empty", "inputs")
    if len(tensors) == 1 and tensors[0][0] not in schema.names and len(tensors[0][1]) == 2:
        name, shape, datatype, data = tensors[0]
        if shape[1] != len(schema.names):
            raise RequestError(
                f"input {name!r}: shape {shape} has {shape[1]} columns, the model takes "
                f"{len(schema.names)}: {list(schema.names)}",
                name,
            )
        columns = {col: data[j :: shape[1]] for j, col in enumerate(schema.names)}
        for col in schema.columns:
            _check_datatype(col.name, col.v2_datatype, datatype)
        return schema.from_mapping(columns), _id(request_id)
    columns: dict[str, list[Any]] = {}
    for name, shape, datatype, data in tensors:
        column = next((c for c in schema.columns if c.name == name), None)
        if column is None:
            raise RequestError(
                f"input {name!r} is not an input of this model; expected {list(schema.names)}",
                name,
            )
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise RequestError(f"input {name!r}: shape must be [n] or [n, 1], got {shape}", name)
        _check_datatype(name, column.v2_datatype, datatype)
        columns[name] = data
    return schema.from_mapping(columns), _id(request_id)


def _check_tensor(tensor: Any, index: int) -> tuple[str, list[int], str, list[Any]]:
    if not isinstance(tensor, dict):
        raise RequestError(f"inputs[{index}] must be an object {{name, shape, datatype, data}}")
    name = tensor.get("name")
    shape = tensor.get("shape")
    datatype = tensor.get("datatype")
    data = tensor.get("data")
    label = name if isinstance(name, str) else f"inputs[{index}]"
    if not isinstance(name, str):
        raise RequestError(f"inputs[{index}] has no name", label)
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise RequestError(f"input {name!r}: shape must be a list of sizes", name)
    if not isinstance(datatype, str):
        raise RequestError(f"input {name!r}: datatype is missing", name)
    if not isinstance(data, list):
        raise RequestError(f"input {name!r}: data must be a list", name)
    flat = _flatten(data, name)
    if math.prod(shape) != len(flat):
        raise RequestError(
            f"input {name!r}: shape {shape} holds {math.prod(shape)} values, data has {len(flat)}",
            name,
        )
    return name, shape, datatype.upper(), flat


def _check_datatype(name: str, expected: str, given: str) -> None:
    fits = given == expected or (given in _NUMERIC_V2 and expected in _NUMERIC_V2)
    if not fits:
        raise RequestError(
            f"input {name!r}: datatype {given} does not fit the column's type; send {expected}",
            name,
        )


def _flatten(data: list[Any], name: str, depth: int = 1) -> list[Any]:
    if not any(isinstance(v, list) for v in data):
        return data
    if depth >= _MAX_DEPTH:
        raise RequestError(f"input {name!r}: data is nested more than {_MAX_DEPTH} deep", name)
    flat: list[Any] = []
    for value in data:
        flat.extend(_flatten(value, name, depth + 1) if isinstance(value, list) else [value])
    return flat


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
