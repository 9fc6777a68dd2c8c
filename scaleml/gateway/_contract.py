"""The input contract: turn a request body into validated columns, or an error naming the column.

Every request is checked against the model signature before it is batched: missing or extra
columns, values of the wrong type or shape, and non-finite numbers (unless the model takes
missing values) are refused with a message that says how to fix the request.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_DTYPES = {
    "double": np.float64,
    "float": np.float32,
    "long": np.int64,
    "integer": np.int32,
    "boolean": np.bool_,
    "string": object,
    "binary": object,
    "datetime": "datetime64[ns]",
}
V2_TYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class RequestError(ValueError):
    """A request the model cannot take; ``field`` names the column or key at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Column:
    """One input column of a model signature."""

    name: str
    type: str
    required: bool = True

    @property
    def v2_datatype(self) -> str:
        """The Open Inference Protocol datatype of this column."""
        return V2_TYPES.get(self.type, "BYTES")


@dataclass(slots=True)
class Rows:
    """Validated input: one NumPy array per signature column, all ``n`` long."""

    columns: dict[str, np.ndarray]
    n: int


class InputSchema:
    """A model's input columns and whether it takes NaN (missing values) in numeric columns."""

    def __init__(self, columns: Sequence[Column], *, allow_nan: bool = False) -> None:
        if not columns:
            raise ValueError("a model needs at least one input column to be served")
        self.columns = tuple(columns)
        self.names = tuple(c.name for c in self.columns)
        self.allow_nan = allow_nan
        self._by_name = {c.name: c for c in self.columns}

    @classmethod
    def from_signature(cls, inputs: list[dict[str, Any]], flavors: Sequence[str]) -> InputSchema:
        """Build from MLflow's ``signature.inputs.to_dict()`` (column-based signatures)."""
        columns = [
            Column(str(spec["name"]), str(spec["type"]), bool(spec.get("required", True)))
            for spec in inputs
        ]
        return cls(columns, allow_nan=bool({"xgboost", "lightgbm"} & set(flavors)))

    # -- request formats ---------------------------------------------------------------------
    def from_mlflow_json(self, body: bytes) -> Rows:
        """Parse MLflow's scoring JSON: exactly one of ``dataframe_split``,
        ``dataframe_records``, ``instances``, ``inputs``."""
        return self.from_mlflow_payload(load_json(body))

    def from_mlflow_payload(self, payload: Any) -> Rows:
        """:meth:`from_mlflow_json` of an already decoded body (its ``params`` are read by
        the caller)."""
        if not isinstance(payload, dict):
            raise RequestError(f"the body must be a JSON object with one of {MLFLOW_FORMATS}")
        keys = [k for k in MLFLOW_FORMATS if k in payload]
        if len(keys) != 1:
            raise RequestError(
                f"the body must hold exactly one of {', '.join(MLFLOW_FORMATS)}; got "
                f"{keys if keys else sorted(payload)}"
            )
        key = keys[0]
        data = payload[key]
        if key == "dataframe_split":
            if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                raise RequestError(
                    "dataframe_split must be {'columns': [...], 'data': [[...], ...]}", key
                )
            return self.from_table(data.get("columns", list(self.names)), data["data"])
        if key == "dataframe_records":
            return self.from_records(data)
        return self.from_any(data, key)

    def from_csv(self, body: bytes) -> Rows:
        """Parse CSV with a header row of column names.

        The header is checked against the signature before any row is parsed: a header of
        more columns than the model takes is refused at once, whatever its length.
        """
        self._check_names(self.csv_header(body))
        try:
            frame = pd.read_csv(io.BytesIO(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(f"the body is not valid CSV: {exc}") from None
        data = {str(name): frame[name].tolist() for name in frame.columns}
        return self.from_mapping(data)

    def csv_header(self, body: bytes) -> list[str]:
        """The column names of the CSV ``body``'s first record (at most as many as the model
        takes, else a :class:`RequestError`)."""
        text = io.TextIOWrapper(io.BytesIO(body), encoding="utf-8", newline="")
        try:
            header = next(csv.reader(text), [])
        except (csv.Error, UnicodeDecodeError) as exc:
            raise RequestError(f"the body is not valid CSV: the header row: {exc}") from None
        if len(header) > len(self.names):
            raise RequestError(
                f"the CSV header has {len(header):,} columns, more than the {len(self.names)} "
                f"the model takes: {list(self.names)}"
            )
        return header

    def from_any(self, data: Any, key: str) -> Rows:
        """``instances`` / ``inputs``: columns as a mapping, records, or rows in column order."""
        if isinstance(data, dict):
            return self.from_mapping(
                {k: v if isinstance(v, list) else [v] for k, v in data.items()}
            )
        if not isinstance(data, list) or not data:
            raise RequestError(f"{key} must be a non-empty list or a mapping of columns", key)
        if all(isinstance(row, dict) for row in data):
            return self.from_records(data)
        if all(isinstance(row, list) for row in data):
            return self.from_table(list(self.names), data)
        if len(self.columns) == 1:
            return self.from_mapping({self.names[0]: data})
        raise RequestError(
            f"{key} must be a list of records, a list of rows of {len(self.names)} values in "
            f"the order {list(self.names)}, or a mapping of column to values",
            key,
        )

    def from_records(self, records: Any) -> Rows:
        """A list of ``{column: value}`` mappings, one per row."""
        if not isinstance(records, list) or not records:
            raise RequestError("dataframe_records must be a non-empty list of objects")
        names: set[str] = set()
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise RequestError(f"record {index} is not a JSON object")
            names.update(record)
        self._check_names(names)
        columns: dict[str, list[Any]] = {}
        for name in self.names:
            if name in names:
                values = [record.get(name, _MISSING) for record in records]
                if _MISSING in values:
                    row = values.index(_MISSING)
                    raise RequestError(f"column {name!r}: missing in record {row}", name)
                columns[name] = values
        return self.from_mapping(columns)

    def from_table(self, names: Any, data: Any) -> Rows:
        """Rows of values in the order of ``names``."""
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RequestError("columns must be a list of column names")
        if not isinstance(data, list) or not data:
            raise RequestError("data must be a non-empty list of rows")
        width = len(names)
        for index, row in enumerate(data):
            if not isinstance(row, list) or len(row) != width:
                got = len(row) if isinstance(row, list) else type(row).__name__
                raise RequestError(f"row {index} has {got} values for {width} columns")
        transposed = map(list, zip(*data, strict=True))  # row lengths checked above
        return self.from_mapping(dict(zip(names, transposed, strict=True)))

    def from_mapping(self, data: dict[str, list[Any]]) -> Rows:
        """Columns of values; every check of the contract ends here."""
        self._check_names(data.keys())
        lengths = {len(values) for values in data.values()}
        if len(lengths) != 1:
            raise RequestError(f"columns have different lengths: {sorted(lengths)}")
        n = lengths.pop()
        if n == 0:
            raise RequestError("the request holds no rows")
        columns = {
            name: self.convert(self._by_name[name], data[name])
            for name in self.names
            if name in data
        }
        return Rows(columns, n)

    def convert(self, column: Column, values: list[Any]) -> np.ndarray:
        """``values`` as an array of the column's type, or a :class:`RequestError`."""
        name, kind = column.name, column.type
        if kind in ("double", "float", "long", "integer"):
            try:
                array = np.asarray(values)
            except ValueError:
                raise RequestError(f"column {name!r}: expected one number per row", name) from None
            if array.ndim != 1:
                raise RequestError(f"column {name!r}: expected one number per row", name)
            if array.dtype.kind not in "iuf":
                _raise_bad_value(name, kind, values, _is_number)
            if kind in ("long", "integer") and array.dtype.kind == "f":
                _raise_bad_value(name, kind, values, lambda v: isinstance(v, int))
            if array.dtype.kind == "f":
                finite = np.isfinite(array)
                if not finite.all():
                    bad = int(np.flatnonzero(~finite)[0])
                    if not (self.allow_nan and math.isnan(array[bad])):
                        raise RequestError(
                            f"column {name!r}: non-finite value {float(array[bad])!r} "
                            f"at row {bad}; "
                            + (
                                "send finite numbers (NaN marks a missing value)"
                                if self.allow_nan
                                else "this model needs finite numbers"
                            ),
                            name,
                        )
            try:
                return array.astype(
                    _DTYPES[kind], casting="same_kind" if kind != "integer" else "unsafe"
                )
            except (TypeError, OverflowError) as exc:
                raise RequestError(f"column {name!r}: {exc}", name) from None
        if kind == "boolean":
            _check_all(name, kind, values, lambda v: isinstance(v, bool))
            return np.asarray(values, dtype=np.bool_)
        if kind == "datetime":
            try:
                return pd.to_datetime(pd.Series(values)).to_numpy()
            except (ValueError, TypeError) as exc:
                raise RequestError(f"column {name!r}: expected datetimes, {exc}", name) from None
        _check_all(name, kind, values, lambda v: isinstance(v, str))
        return np.asarray(values, dtype=object)

    def _check_names(self, names: Any) -> None:
        given = set(names)
        extra = sorted(given - set(self.names))
        if extra:
            raise RequestError(
                f"column {extra[0]!r} is not an input of this model; expected {list(self.names)}",
                extra[0],
            )
        missing = [c.name for c in self.columns if c.required and c.name not in given]
        if missing:
            raise RequestError(
                f"column {missing[0]!r} is missing; the model needs {list(self.names)}",
                missing[0],
            )


_MISSING = object()
_FLOAT = Column("", "double")


def rows_to_frame(parts: Sequence[Rows], names: Sequence[str]) -> pd.DataFrame:
    """Concatenate validated requests into one DataFrame with the signature's column order."""
    if len(parts) == 1:
        return pd.DataFrame(parts[0].columns, columns=[n for n in names if n in parts[0].columns])
    present = [n for n in names if all(n in p.columns for p in parts)]
    return pd.DataFrame(
        {name: np.concatenate([p.columns[name] for p in parts]) for name in present},
        columns=present,
    )


def load_json(body: bytes) -> Any:
    """The JSON document in ``body``, or a :class:`RequestError` (also for nesting too deep
    for the parser)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError("the body is not valid JSON: it is nested too deeply") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return f"a {'list' if isinstance(value, list) else 'object'} (one value per row expected)"
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return f"{type(value).__name__} {text[:40]}"


def _check_all(name: str, kind: str, values: list[Any], ok: Any) -> None:
    if not all(ok(v) for v in values):
        _raise_bad_value(name, kind, values, ok)


def _raise_bad_value(name: str, kind: str, values: list[Any], ok: Any) -> None:
    for row, value in enumerate(values):
        if not ok(value):
            raise RequestError(
                f"column {name!r}: expected {kind}, got {_describe(value)} at row {row}", name
            )
    raise RequestError(f"column {name!r}: expected {kind} values", name)
