"""The Open Inference Protocol (KServe V2 REST) over opened model contexts, free of HTTP.

A model context's label is the protocol's model name. How tensors become records and
predictions become tensors (docs/inference.md):

- inputs: one tensor per feature, named as the feature, of shape ``[N]`` or ``[N, length]``;
  or a single tensor of shape ``[N, columns]`` whose columns are the features in the order the
  model declares them (a feature of length n takes n columns). Row i is the record keyed ``i``.
  ``BYTES`` elements are UTF-8 text (``str`` features).
- outputs: the predicted feature, named as the feature, shape ``[N]``, and its ``confidence``
  (``FP64``, shape ``[N]``); ``outputs`` in the request picks among them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from service import __version__
from service.engine import models
from service.engine.inference.tensors import Tensor, datatype_for, datatype_of, read_inputs
from service.kernel.errors import BadRequest, Unavailable
from service.kernel.jsoncodec import dumps, type_name
from service.sdk.base import ModelContext
from service.sdk.feature import Feature, Signature
from service.sdk.records import Record

SERVER_NAME = "dffml-service-http"
EXTENSIONS = ("binary_tensor_data",)
CONFIDENCE = "confidence"
# The request header that says how many bytes of the body are its JSON part.
HEADER_LENGTH = "Inference-Header-Content-Length"


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}


def model_metadata(name: str, model: ModelContext, versions: list[str]) -> dict[str, Any]:
    """``versions``: those kept of the model (docs/inference.md#versions)."""
    signature = model.signature
    out: dict[str, Any] = {"name": name, "versions": versions, "platform": SERVER_NAME}
    if signature is None:
        # Tensors are named by the client; the model answers whatever it predicts.
        out["inputs"], out["outputs"] = [], []
        return out
    out["inputs"] = [
        {"name": f.name, "datatype": datatype_of(f.dtype), "shape": _shape(f.length)}
        for f in signature.inputs
    ]
    out["outputs"] = [
        {"name": name, "datatype": datatype, "shape": [-1]}
        for name, datatype in _declared_outputs(signature).items()
    ]
    return out


def model_ready(name: str, model: ModelContext) -> dict[str, Any]:
    if not model.trained:
        raise Unavailable(f"Model {name!r} is not ready: it is not trained")
    return {"name": name, "ready": True}


@dataclasses.dataclass(frozen=True)
class Answer:
    """An inference response: its JSON header and the binary outputs' bytes that follow it."""

    header: bytes
    binary: bytes

    @property
    def header_length(self) -> int | None:
        """None: the answer is plain JSON (no output was asked for as binary)."""
        return len(self.header) if self.binary else None


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON header of a request body and the binary tensor data after it."""
    size = len(body)
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            size = -1
        if not 0 <= size <= len(body):
            raise BadRequest(
                f"{HEADER_LENGTH} must be a size within the body, got {header_length!r}"
            )
    if not body[:size].strip():
        raise BadRequest("Request body must be a JSON inference request, got an empty body")
    try:
        header = orjson.loads(body[:size])
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON inference request: {exc}") from None
    if not isinstance(header, dict):
        raise BadRequest(f"An inference request must be a JSON object, got {type_name(header)}")
    return header, body[size:]


Predict = Callable[[ModelContext, list[Record]], Awaitable[list[Record]]]


async def infer(
    name: str,
    model: ModelContext,
    header: dict[str, Any],
    binary: bytes,
    predict: Predict = models.predict_list,
    version: str | None = None,
) -> Answer:
    """``predict``: how the records are predicted (the batching queue's, when it is on);
    ``version``: the one the path named, echoed."""
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    tensors = read_inputs(header, binary)
    wanted = _requested(header)
    records = to_records(tensors, model.signature)
    predicted = await predict(model, records)
    outputs = to_outputs(predicted, model.signature)
    if wanted is not None:
        unknown = sorted(set(wanted) - set(outputs))
        if unknown:
            raise BadRequest(
                f"Model {name!r} has no output {unknown[0]!r} (it has {sorted(outputs)})"
            )
        chosen = [dataclasses.replace(outputs[n], binary=b) for n, b in wanted.items()]
    else:
        binary_default = _parameter(header, "binary_data_output")
        chosen = [dataclasses.replace(t, binary=binary_default) for t in outputs.values()]
    raw = b"".join(t.raw() for t in chosen if t.binary)
    body: dict[str, Any] = {"model_name": name}
    if version is not None:
        body["model_version"] = version
    if request_id is not None:
        body["id"] = request_id
    body["outputs"] = [t.header() for t in chosen]
    return Answer(dumps(body), raw)


def _requested(header: dict[str, Any]) -> dict[str, bool] | None:
    """Output name -> whether it is wanted as binary; None: every output."""
    outputs = header.get("outputs")
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise BadRequest("'outputs' must be a list")
    default = _parameter(header, "binary_data_output")
    wanted: dict[str, bool] = {}
    for item in outputs:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest("Each requested output must be an object with a string 'name'")
        wanted[item["name"]] = _parameter(item, "binary_data", default)
    return wanted


def _parameter(item: dict[str, Any], key: str, default: bool = False) -> bool:
    parameters = item.get("parameters")
    if parameters is None:
        return default
    if not isinstance(parameters, dict):
        raise BadRequest("'parameters' must be an object")
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"Parameter {key!r} must be true or false")
    return value


def to_records(tensors: list[Tensor], signature: Signature | None) -> list[Record]:
    """One record per row, keyed by its index (the module docstring gives the mapping)."""
    names = {t.name for t in tensors}
    if signature is None:
        columns = {t.name: _by_feature(t, None) for t in tensors}
    elif len(tensors) == 1 and tensors[0].name not in {f.name for f in signature.inputs}:
        columns = _by_column(tensors[0], signature.inputs)
    else:
        wanted = [f.name for f in signature.inputs]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise BadRequest(
                f"No input tensor for feature {missing[0]!r}: send one tensor per feature"
                f" ({wanted}), or one [N, columns] tensor of them all"
            )
        by_name = {f.name: f for f in signature.inputs}
        columns = {t.name: _by_feature(t, by_name.get(t.name)) for t in tensors}
    rows = {len(values) for values in columns.values()}
    if len(rows) > 1:
        raise BadRequest(f"Input tensors disagree on the number of rows: {sorted(rows)}")
    count = rows.pop() if rows else 0
    return [
        Record(str(i), {name: values[i] for name, values in columns.items()}) for i in range(count)
    ]


def _by_feature(tensor: Tensor, feature: Feature | None) -> list[Any]:
    """A tensor of one feature: ``[N]`` or ``[N, length]`` -> N values (lists when length > 1)."""
    shape = tensor.shape
    if len(shape) == 1:
        width = 1
    elif len(shape) == 2:
        width = shape[1]
    else:
        raise BadRequest(f"Input {tensor.name!r}: shape {list(shape)} is not [N] or [N, length]")
    if width < 1:
        raise BadRequest(f"Input {tensor.name!r}: shape {list(shape)} has no columns")
    if feature is not None and width != feature.length:
        raise BadRequest(
            f"Input {tensor.name!r}: feature {feature.name!r} has length {feature.length},"
            f" the tensor has {width} columns"
        )
    data = [_value(tensor, v) for v in tensor.data]
    if len(shape) == 1 or (width == 1 and (feature is None or feature.length == 1)):
        return data
    return [data[i : i + width] for i in range(0, len(data), width)]


def _by_column(tensor: Tensor, features: tuple[Feature, ...]) -> dict[str, list[Any]]:
    """A single ``[N, columns]`` tensor whose columns are the features in declared order."""
    width = sum(f.length for f in features)
    if len(tensor.shape) != 2 or tensor.shape[1] != width:
        raise BadRequest(
            f"Input {tensor.name!r} is not a feature: as the one tensor of all features it must"
            f" have shape [N, {width}], got {list(tensor.shape)}"
        )
    data = [_value(tensor, v) for v in tensor.data]
    rows = [data[i : i + width] for i in range(0, len(data), width)]
    columns: dict[str, list[Any]] = {}
    at = 0
    for f in features:
        if f.length == 1:
            columns[f.name] = [row[at] for row in rows]
        else:
            columns[f.name] = [row[at : at + f.length] for row in rows]
        at += f.length
    return columns


def _value(tensor: Tensor, value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise BadRequest(f"Input {tensor.name!r}: BYTES elements must be UTF-8 text") from None
    return value


def to_outputs(records: list[Record], signature: Signature | None) -> dict[str, Tensor]:
    """The predicted feature and its confidence, as tensors of shape ``[N]``."""
    declared = _declared_outputs(signature) if signature is not None else {}
    names: list[str] = []
    for record in records:
        for predicted in record.prediction or {}:
            if predicted not in names:
                names.append(predicted)
    if signature is not None and not names:
        names = [signature.output.name]
    out: dict[str, Tensor] = {}
    for predicted in names:
        values = [_prediction(r, predicted, "value") for r in records]
        confidence = [_prediction(r, predicted, "confidence") for r in records]
        out[predicted] = Tensor(
            predicted, declared.get(predicted) or datatype_for(values), (len(values),), values
        )
        conf_name = _confidence_name(predicted) if len(names) == 1 else f"{predicted}.confidence"
        out[conf_name] = Tensor(conf_name, "FP64", (len(confidence),), confidence)
    return out


def _prediction(record: Record, name: str, part: str) -> Any:
    entry = (record.prediction or {}).get(name)
    if not isinstance(entry, dict):
        raise BadRequest(f"Record {record.key!r} has no prediction for {name!r}")
    return entry.get(part)


def _declared_outputs(signature: Signature) -> dict[str, str]:
    predicted = signature.output
    return {
        predicted.name: datatype_of(predicted.dtype),
        _confidence_name(predicted.name): "FP64",
    }


def _confidence_name(predicted: str) -> str:
    # The predicted feature could itself be called "confidence": its confidence then differs.
    return CONFIDENCE if predicted != CONFIDENCE else f"{predicted}.confidence"


def _shape(length: int) -> list[int]:
    return [-1] if length == 1 else [-1, length]
