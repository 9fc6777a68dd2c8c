"""The input contract on its own: every format, and errors that name the column."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scaleml.gateway._codecs import parse_v2, v2_outputs
from scaleml.gateway._contract import Column, InputSchema, RequestError

SCHEMA = InputSchema(
    [Column("a", "double"), Column("b", "long"), Column("c", "string"), Column("d", "boolean")]
)
ROWS = [[1.5, 2, "x", True], [-0.5, 7, "y", False]]


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def check(rows) -> None:
    assert rows.n == 2
    assert rows.columns["a"].dtype == np.float64 and rows.columns["a"].tolist() == [1.5, -0.5]
    assert rows.columns["b"].dtype == np.int64 and rows.columns["b"].tolist() == [2, 7]
    assert rows.columns["c"].tolist() == ["x", "y"]
    assert rows.columns["d"].tolist() == [True, False]


def test_the_four_mlflow_json_formats_and_csv_give_the_same_columns() -> None:
    records = [dict(zip("abcd", row, strict=True)) for row in ROWS]
    columnar = {k: [r[k] for r in records] for k in "abcd"}
    check(
        SCHEMA.from_mlflow_json(body({"dataframe_split": {"columns": list("abcd"), "data": ROWS}}))
    )
    check(SCHEMA.from_mlflow_json(body({"dataframe_records": records})))
    check(SCHEMA.from_mlflow_json(body({"instances": records})))
    check(SCHEMA.from_mlflow_json(body({"inputs": columnar})))
    check(SCHEMA.from_mlflow_json(body({"instances": ROWS})))
    check(SCHEMA.from_csv(b"a,b,c,d\n1.5,2,x,True\n-0.5,7,y,False\n"))


@pytest.mark.parametrize(
    ("payload", "column", "words"),
    [
        ({"dataframe_records": [{"a": 1.0, "b": 1, "c": "x"}]}, "d", "missing"),
        (
            {"dataframe_records": [{"a": 1.0, "b": 1, "c": "x", "d": True, "e": 0}]},
            "e",
            "not an input",
        ),
        (
            {"dataframe_records": [{"a": "1.0", "b": 1, "c": "x", "d": True}]},
            "a",
            "expected double",
        ),
        ({"dataframe_records": [{"a": 1.0, "b": 1.5, "c": "x", "d": True}]}, "b", "expected long"),
        ({"dataframe_records": [{"a": 1.0, "b": 1, "c": 3, "d": True}]}, "c", "expected string"),
        ({"dataframe_records": [{"a": 1.0, "b": 1, "c": "x", "d": 1}]}, "d", "expected boolean"),
        (
            {"dataframe_records": [{"a": [1.0], "b": 1, "c": "x", "d": True}]},
            "a",
            "one number per row",
        ),
        ({"dataframe_records": [{"a": None, "b": 1, "c": "x", "d": True}]}, "a", "null"),
        ({"inputs": {"a": [float("inf")], "b": [1], "c": ["x"], "d": [True]}}, "a", "non-finite"),
        ({"inputs": {"a": [float("nan")], "b": [1], "c": ["x"], "d": [True]}}, "a", "non-finite"),
    ],
)
def test_schema_errors_name_the_column_and_the_problem(payload, column, words) -> None:
    with pytest.raises(RequestError) as error:
        SCHEMA.from_mlflow_json(body(payload))
    assert error.value.field == column
    assert f"'{column}'" in error.value.message and words in error.value.message


def test_models_that_take_missing_values_accept_nan_but_not_infinity() -> None:
    schema = InputSchema([Column("a", "double")], allow_nan=True)
    assert np.isnan(schema.from_mlflow_json(b'{"inputs": {"a": [NaN]}}').columns["a"][0])
    with pytest.raises(RequestError, match="'a': non-finite value inf"):
        schema.from_mlflow_json(b'{"inputs": {"a": [Infinity]}}')


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[]", b'{"dataframe_split": {}, "instances": []}', b'{"foo": 1}'],
)
def test_malformed_bodies_say_what_is_expected(payload: bytes) -> None:
    with pytest.raises(RequestError, match=r"JSON|exactly one of"):
        SCHEMA.from_mlflow_json(payload)


def test_rows_of_the_wrong_length_are_refused_with_the_row_number() -> None:
    with pytest.raises(RequestError, match="row 1 has 3 values for 4 columns"):
        SCHEMA.from_mlflow_json(
            body({"dataframe_split": {"columns": list("abcd"), "data": [ROWS[0], [1, 2, "x"]]}})
        )


def test_v2_tensors_per_column_or_one_matrix() -> None:
    floats = InputSchema([Column("x", "double"), Column("y", "double")])
    per_column = {
        "id": "r1",
        "inputs": [
            {"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2]},
            {"name": "y", "shape": [2, 1], "datatype": "FP32", "data": [[3], [4]]},
        ],
    }
    rows, request_id = parse_v2(body(per_column), floats)
    assert request_id == "r1" and rows.columns["y"].tolist() == [3.0, 4.0]
    matrix = {"inputs": [{"name": "in", "shape": [2, 2], "datatype": "FP64", "data": [1, 3, 2, 4]}]}
    rows, request_id = parse_v2(body(matrix), floats)
    assert request_id is None and rows.columns["x"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("tensor", "words"),
    [
        ({"name": "z", "shape": [1], "datatype": "FP64", "data": [1]}, "'z' is not an input"),
        ({"name": "x", "shape": [3], "datatype": "FP64", "data": [1, 2]}, "holds 3 values"),
        ({"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a"]}, "datatype BYTES"),
        ({"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}, "shape must be"),
    ],
)
def test_v2_errors_name_the_input(tensor: dict, words: str) -> None:
    schema = InputSchema([Column("x", "double"), Column("y", "double")])
    other = {"name": "y", "shape": [1], "datatype": "FP64", "data": [0.0]}
    with pytest.raises(RequestError, match=words):
        parse_v2(body({"inputs": [tensor, other]}), schema)


def test_v2_outputs_carry_shape_and_datatype() -> None:
    (tensor,) = v2_outputs(np.array([1, 0, 1]))
    assert tensor == {"name": "predictions", "datatype": "INT64", "shape": [3], "data": [1, 0, 1]}
