"""The binary tensor data extension of the Open Inference Protocol (Triton, KServe).

A request may carry a JSON header of ``Inference-Header-Content-Length`` bytes followed by
the raw little-endian bytes of the inputs whose ``parameters`` hold a ``binary_data_size``,
in the order of ``inputs``. A response carries the outputs asked for in binary
(``parameters.binary_data`` of a requested output, or ``binary_data_output`` for all) the
same way, with the header length in the response's ``Inference-Header-Content-Length``.
``BYTES`` elements are each a 4-byte little-endian length and the UTF-8 bytes.

Every malformed request is a :class:`RequestError` naming the header or the input.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from scaleml.gateway._contract import RequestError, load_json

HEADER = "Inference-Header-Content-Length"
_DTYPES = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}


def header_length(value: str | None, body_size: int) -> int | None:
    """The JSON header's length from ``Inference-Header-Content-Length`` (None: all JSON)."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        raise RequestError(
            f"{HEADER} must be a non-negative integer (the JSON header's length in bytes), "
            f"got {value[:40]!r}",
            HEADER,
        )
    length = int(text)
    if length > body_size:
        raise RequestError(
            f"{HEADER} is {length:,} but the body has only {body_size:,} bytes", HEADER
        )
    return length


def load_request(body: bytes, length: int | None) -> Any:
    """The request's JSON with every binary input decoded into its ``data`` list."""
    header = body if length is None else body[:length]
    try:
        payload = load_json(header)  # the same JSON reader as every other request body
    except RequestError as exc:
        if length is None:
            raise
        raise RequestError(
            f"the JSON header (the first {length} bytes, {HEADER}): {exc.message}", HEADER
        ) from None
    tail = memoryview(body)[len(header) :]
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    offset = 0
    for index, tensor in enumerate(inputs if isinstance(inputs, list) else []):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        name = tensor.get("name") if isinstance(tensor.get("name"), str) else f"inputs[{index}]"
        size = parameters["binary_data_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RequestError(
                f"input {name!r}: binary_data_size must be a non-negative integer, got {size!r}",
                name,
            )
        if "data" in tensor:
            raise RequestError(f"input {name!r}: give data or binary_data_size, not both", name)
        if offset + size > len(tail):
            raise RequestError(
                f"input {name!r}: binary_data_size {size:,} goes past the end of the body "
                f"({len(tail) - offset:,} binary bytes left)",
                name,
            )
        tensor["data"] = _decode(name, tensor, tail[offset : offset + size])
        offset += size
    if offset != len(tail):
        raise RequestError(
            f"the body has {len(tail) - offset:,} bytes after the JSON header that no input's "
            f"binary_data_size accounts for; check {HEADER}",
            HEADER,
        )
    return payload


def _decode(name: str, tensor: dict[str, Any], raw: memoryview) -> list[Any]:
    datatype = str(tensor.get("datatype", "")).upper()
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise RequestError(f"input {name!r}: shape must be a list of sizes", name)
    count = int(np.prod(shape)) if shape else 1
    if datatype == "BYTES":
        values = _decode_bytes(name, raw)
        if len(values) != count:
            raise RequestError(
                f"input {name!r}: shape {shape} holds {count} values, the binary data has "
                f"{len(values)}",
                name,
            )
        return values
    dtype = _DTYPES.get(datatype)
    if dtype is None:
        raise RequestError(
            f"input {name!r}: datatype {datatype or '(none)'} cannot be sent as binary data "
            f"here; use one of {', '.join([*_DTYPES, 'BYTES'])}",
            name,
        )
    if len(raw) != count * dtype.itemsize:
        raise RequestError(
            f"input {name!r}: binary_data_size {len(raw):,} does not match shape {shape} of "
            f"{datatype} ({count} x {dtype.itemsize} = {count * dtype.itemsize:,} bytes)",
            name,
        )
    return np.frombuffer(raw, dtype=dtype).tolist()


def _decode_bytes(name: str, raw: memoryview) -> list[str]:
    values: list[str] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise RequestError(f"input {name!r}: BYTES data ends inside a length prefix", name)
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise RequestError(f"input {name!r}: a BYTES element runs past its data", name)
        try:
            values.append(bytes(raw[offset : offset + size]).decode())
        except UnicodeDecodeError:
            raise RequestError(f"input {name!r}: a BYTES element is not UTF-8", name) from None
        offset += size
    return values


def encode(array: np.ndarray, datatype: str) -> bytes:
    """An output tensor's raw bytes (little-endian; BYTES length-prefixed)."""
    if datatype == "BYTES":
        parts = []
        for value in array.ravel():
            data = value if isinstance(value, bytes) else str(value).encode()
            parts.append(struct.pack("<I", len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=_DTYPES[datatype]).tobytes()
