"""Tensors of the Open Inference Protocol (KServe V2): read from a request, written to an answer.

A tensor is a name, a datatype, a shape and its elements in row-major order. Elements come as
JSON (``data``, flat or nested) or, with the binary tensor data extension, as raw little-endian
bytes after the JSON header (``parameters.binary_data_size``); ``BYTES`` elements are then each
a 4-byte little-endian length and that many bytes.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Any

import numpy as np

from service.kernel.errors import BadRequest
from service.kernel.jsoncodec import type_name

# The protocol's datatypes and their numpy element types (None: BYTES, length-prefixed).
DATATYPES: dict[str, str | None] = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "BYTES": None,
}
# Tensors of one request: each is a Python list of its elements once read.
MAX_TENSORS = 256
# Nested ``data`` lists deeper than this are refused before they are walked.
MAX_DEPTH = 32
_LENGTH = struct.Struct("<I")


@dataclasses.dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any]  # row-major; BYTES elements are bytes
    binary: bool = False  # (outputs) sent as raw bytes after the JSON header

    def header(self) -> dict[str, Any]:
        """The tensor's JSON: with its elements, or with the size of its raw bytes."""
        out: dict[str, Any] = {"name": self.name, "datatype": self.datatype, "shape": self.shape}
        if self.binary:
            out["parameters"] = {"binary_data_size": len(self.raw())}
        else:
            out["data"] = [_text(v) for v in self.data] if self.datatype == "BYTES" else self.data
        return out

    def raw(self) -> bytes:
        """The elements as the binary extension sends them."""
        dtype = DATATYPES[self.datatype]
        if dtype is None:
            return b"".join(_LENGTH.pack(len(v)) + v for v in (_bytes(x) for x in self.data))
        try:
            return np.asarray(self.data, dtype=dtype).tobytes()
        except (OverflowError, ValueError, TypeError) as exc:
            raise BadRequest(f"Output {self.name!r} is not {self.datatype}: {exc}") from None


def read_inputs(header: dict[str, Any], binary: bytes) -> list[Tensor]:
    """The ``inputs`` of an inference request; ``binary`` is what followed its JSON header."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    if len(inputs) > MAX_TENSORS:
        raise BadRequest(f"At most {MAX_TENSORS} input tensors")
    tensors: list[Tensor] = []
    offset = 0
    for item in inputs:
        tensor, used = _read_input(item, binary, offset)
        offset += used
        if any(t.name == tensor.name for t in tensors):
            raise BadRequest(f"Input tensor {tensor.name!r} is given twice")
        tensors.append(tensor)
    if offset != len(binary):
        raise BadRequest(
            f"{len(binary) - offset} bytes of binary data follow the tensors that claim them"
        )
    return tensors


def _read_input(item: Any, binary: bytes, offset: int) -> tuple[Tensor, int]:
    if not isinstance(item, dict):
        raise BadRequest(f"An input tensor must be an object, got {type_name(item)}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("An input tensor needs a non-empty string 'name'")
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise BadRequest(f"Input {name!r}: unknown datatype {datatype!r}")
    shape = item.get("shape")
    if not (
        isinstance(shape, list)
        and shape
        and all(type(n) is int and n >= 0 for n in shape)
        and len(shape) <= MAX_DEPTH
    ):
        raise BadRequest(f"Input {name!r}: 'shape' must be a list of sizes (integers >= 0)")
    count = math.prod(shape)
    parameters = item.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest(f"Input {name!r}: 'parameters' must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise BadRequest(
                f"Input {name!r}: binary_data_size {size!r} is more than the binary data sent"
            )
        if "data" in item:
            raise BadRequest(f"Input {name!r}: give 'data' or binary data, not both")
        data = _from_bytes(name, datatype, binary[offset : offset + size], count)
        return Tensor(name, datatype, tuple(shape), data), size
    if "data" not in item:
        raise BadRequest(f"Input {name!r} has no 'data' (nor binary_data_size)")
    data = _flatten(name, item["data"])
    if len(data) != count:
        raise BadRequest(f"Input {name!r}: shape {shape} needs {count} elements, got {len(data)}")
    return Tensor(name, datatype, tuple(shape), [_element(name, datatype, v) for v in data]), 0


def _from_bytes(name: str, datatype: str, raw: bytes, count: int) -> list[Any]:
    dtype = DATATYPES[datatype]
    if dtype is None:
        out: list[Any] = []
        at = 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise BadRequest(f"Input {name!r}: BYTES element length cut short")
            (length,) = _LENGTH.unpack_from(raw, at)
            if at + 4 + length > len(raw):
                raise BadRequest(f"Input {name!r}: BYTES element longer than the data sent")
            out.append(raw[at + 4 : at + 4 + length])
            at += 4 + length
    else:
        width = np.dtype(dtype).itemsize
        if len(raw) != count * width:
            raise BadRequest(
                f"Input {name!r}: {count} {datatype} elements are {count * width} bytes,"
                f" got {len(raw)}"
            )
        out = np.frombuffer(raw, dtype=dtype).tolist()
    if len(out) != count:
        raise BadRequest(f"Input {name!r}: the shape needs {count} elements, got {len(out)}")
    return out


def _flatten(name: str, data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise BadRequest(f"Input {name!r}: 'data' must be a list")
    out: list[Any] = []
    # Iterative, so a deeply nested body cannot exhaust the interpreter's stack.
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                if len(stack) >= MAX_DEPTH:
                    raise BadRequest(f"Input {name!r}: 'data' nested over {MAX_DEPTH} deep")
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _element(name: str, datatype: str, value: Any) -> Any:
    if datatype == "BYTES":
        if isinstance(value, str):
            return value.encode()
    elif datatype == "BOOL":
        if isinstance(value, bool):
            return value
    elif datatype.startswith(("INT", "UINT")):
        if type(value) is int:
            return value
    elif type(value) in (int, float):
        return value
    raise BadRequest(f"Input {name!r}: {datatype} elements, got {type_name(value)}")


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else str(value)


def datatype_of(dtype: str) -> str:
    """The tensor datatype of a feature's declared dtype (``int``, ``float``, ``str``, ``bool``)."""
    return {"int": "INT64", "float": "FP64", "str": "BYTES", "bool": "BOOL"}.get(dtype, "FP64")


def datatype_for(values: list[Any]) -> str:
    """The datatype of predicted values a model declares nothing about."""
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(type(v) is int for v in values):
        return "INT64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"
