"""Predictions over a chunk of encoded records (a file source's spool bytes), as the NDJSON
lines a predict over a whole source writes, without building a Record per line.

Each record's bytes are what ``Record.export()`` encodes (``{"key","features","extra"}``), so
its prediction line is those bytes with ``"prediction"`` and ``"last_updated"`` spliced in
before the closing brace: byte for byte what encoding the predicted Record would give.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from service.kernel.errors import BadRequest
from service.kernel.jsoncodec import dumps
from service.plugins.models import worker_side
from service.plugins.models.values import as_dtype, feature_row, timestamp
from service.sdk import offload
from service.sdk.feature import Feature
from service.sdk.records import EncodedRecords, Record

if TYPE_CHECKING:
    import numpy as np

    from service.plugins.models.trainable import TrainableModel

StateT = TypeVar("StateT")

EXPORTED = ("key", "features", "extra")


def rows(chunk: EncodedRecords, features: Sequence[Feature]) -> tuple[list[bytes], np.ndarray]:
    """Each record's bytes (re-encoded where a stored record holds more than an export of it
    without prediction would) and the features as a rows by columns array (worker thread)."""
    import numpy as np

    bodies = chunk.records()
    values: list[dict[str, Any]] = orjson.loads(b"[" + b",".join(bodies) + b"]")
    numbers = array("d")
    for at, value in enumerate(values):
        numbers.extend(feature_row(Record(value["key"], value["features"]), features))
        if tuple(value) != EXPORTED:
            plain = Record(value["key"], value.get("features", {}), value.get("extra", {}))
            bodies[at] = dumps(plain.export())
    return bodies, np.frombuffer(numbers, dtype=np.float64).reshape(len(values), -1)


def lines(
    bodies: list[bytes],
    values: np.ndarray,
    confidences: np.ndarray,
    predict: Feature,
    *,
    classifier: bool,
    stamp: str,
) -> bytes:
    """The NDJSON lines of the predicted records (worker thread)."""
    import numpy as np

    if values.dtype.kind == "f" and not np.isfinite(values).all():
        at = int(np.flatnonzero(~np.isfinite(values))[0])
        key = orjson.loads(bodies[at])["key"]
        raise BadRequest(
            f"Prediction failed: the prediction for record {key!r} is beyond float range"
        )
    found = values.tolist()
    if not classifier:  # class labels already have the predicted feature's type
        found = [as_dtype(value, predict.dtype) for value in found]
    head = b',"prediction":{' + dumps(predict.name) + b':{"value":'
    tail = b'}},"last_updated":' + dumps(stamp) + b"}\n"
    out = []
    for body, value, confidence in zip(bodies, found, confidences.tolist(), strict=True):
        out.append(body[:-1] + head + dumps(value) + b',"confidence":' + dumps(confidence) + tail)
    return b"".join(out)


async def predict_lines(
    model: TrainableModel[Any, StateT], state: StateT, chunk: EncodedRecords
) -> bytes:
    """The chunk's prediction lines: decoded in a thread, predicted as one array (in a worker
    process where the server lends one), spliced in a thread."""
    config = model.config
    bodies, x = await asyncio.to_thread(rows, chunk, config.features)
    try:
        if offload.available():
            values, confidences = await offload.in_worker(
                worker_side.predict_array, type(model), config, state, x
            )
        else:
            values, confidences = await asyncio.to_thread(model.predict_array, state, x)
    except ValueError as exc:
        raise BadRequest(f"Prediction failed: {exc}") from None
    except ArithmeticError as exc:
        raise BadRequest(f"Prediction failed: beyond float range ({exc})") from None
    return await asyncio.to_thread(
        lines,
        bodies,
        values,
        confidences,
        config.predict,
        classifier=model.CLASSIFIER,
        stamp=timestamp(),
    )
