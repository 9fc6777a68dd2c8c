"""The binary tensor data extension without a server: bodies as tritonclient builds them in,
responses read back by tritonclient's own parser."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as triton

from scaleml.gateway._binary import header_length, load_request
from scaleml.gateway._contract import RequestError
from scaleml.gateway._outputs import Requested, v2_answer, v2_requested


def triton_body(inputs: list[triton.InferInput]) -> tuple[bytes, int]:
    header = json.dumps({"inputs": [i._get_tensor() for i in inputs]}).encode()
    return header + b"".join(i._get_binary_data() for i in inputs), len(header)


def test_every_numeric_datatype_and_bytes_decode_as_tritonclient_encodes_them() -> None:
    arrays = {
        "BOOL": np.array([True, False, True]),
        "INT8": np.array([-1, 0, 7], dtype=np.int8),
        "UINT16": np.array([1, 2, 65535], dtype=np.uint16),
        "INT32": np.array([-5, 6, 7], dtype=np.int32),
        "INT64": np.array([2**40, -1, 0], dtype=np.int64),
        "FP16": np.array([0.5, -1.0, 2.0], dtype=np.float16),
        "FP32": np.array([0.25, 1.5, -3.0], dtype=np.float32),
        "FP64": np.array([0.1, 1e300, -2.5]),
        "BYTES": np.array([b"a", "é".encode(), b""], dtype=np.object_),
    }
    inputs = []
    for datatype, array in arrays.items():
        tensor = triton.InferInput(datatype.lower(), [3], datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    body, length = triton_body(inputs)
    payload = load_request(body, header_length(str(length), len(body)))
    decoded = {t["name"]: t["data"] for t in payload["inputs"]}
    for datatype, array in arrays.items():
        if datatype == "BYTES":
            assert decoded["bytes"] == ["a", "é", ""]
        else:
            assert decoded[datatype.lower()] == array.tolist(), datatype


@pytest.mark.parametrize(
    ("header", "words"),
    [("abc", "non-negative integer"), ("-1", "non-negative integer"), ("999999", "only")],
)
def test_bad_header_lengths_name_the_header(header: str, words: str) -> None:
    with pytest.raises(RequestError, match=words) as caught:
        header_length(header, 100)
    assert caught.value.field == "Inference-Header-Content-Length"


def test_binary_outputs_read_back_by_tritonclient_with_string_labels_and_probabilities() -> None:
    labels = np.array(["cat", "dog", "émeu"], dtype=object)
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 0.0, 1.0]])
    classes = ["cat", "dog", "émeu"]
    request = {
        "outputs": [{"name": "predictions"}, {"name": "probabilities"}],
        "parameters": {"binary_data_output": True},
    }
    requested = v2_requested(request, classes)
    assert requested.probabilities
    body, length = v2_answer(
        {"model_name": "m", "model_version": "1"}, (labels, probabilities, classes), requested
    )
    assert length is not None
    result = triton.InferResult.from_response_body(body, header_length=length)
    assert [v.decode() for v in result.as_numpy("predictions")] == labels.tolist()
    np.testing.assert_array_equal(result.as_numpy("probabilities"), probabilities)
    assert result.get_output("probabilities")["parameters"]["classes"] == classes


def test_json_outputs_stay_json_unless_asked_for_binary() -> None:
    labels = np.array([1, 0])
    body, length = v2_answer({"model_name": "m"}, labels, Requested(None, {}, False))
    assert length is None
    assert json.loads(body)["outputs"][0]["data"] == [1, 0]


def test_requested_outputs_are_checked() -> None:
    with pytest.raises(RequestError, match="not a classifier") as caught:
        v2_requested({"outputs": [{"name": "probabilities"}]}, None)
    assert caught.value.field == "probabilities"
    with pytest.raises(RequestError, match="true or false"):
        v2_requested({"outputs": [{"name": "predictions", "parameters": {"binary_data": 1}}]}, [])
    with pytest.raises(RequestError, match="classification extension"):
        v2_requested(
            {"outputs": [{"name": "predictions", "parameters": {"classification": 2}}]}, [0, 1]
        )


def test_a_json_header_cut_short_names_the_header() -> None:
    body = b'{"inputs": []}' + b"\0" * 8
    with pytest.raises(RequestError, match="JSON header") as caught:
        load_request(body, header_length("5", len(body)))
    assert caught.value.field == "Inference-Header-Content-Length"
