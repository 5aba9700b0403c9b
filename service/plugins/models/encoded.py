"""Predictions over a chunk of encoded records (a file source's spool bytes), as the NDJSON
lines a predict over a whole source writes, without building a Record per line.

Each record's bytes are what ``Record.export()`` encodes (``{"key","features","extra"}``), so
its prediction line is those bytes with ``"prediction"`` and ``"last_updated"`` spliced in
before the closing brace: byte for byte what encoding the predicted Record would give.
"""

from __future__ import annotations

import asyncio
import re
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
    found = _plain_numbers(chunk, features)
    if found is not None:
        return bodies, found
    values: list[dict[str, Any]] = orjson.loads(b"[" + b",".join(bodies) + b"]")
    numbers = array("d")
    for at, value in enumerate(values):
        numbers.extend(feature_row(Record(value["key"], value["features"]), features))
        if tuple(value) != EXPORTED:
            plain = Record(value["key"], value.get("features", {}), value.get("extra", {}))
            bodies[at] = dumps(plain.export())
    return bodies, np.frombuffer(numbers, dtype=np.float64).reshape(len(values), -1)


# A JSON number, as the record view writes a feature's number.
NUMBER = rb"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)[,}]"


def _plain_numbers(chunk: EncodedRecords, features: Sequence[Feature]) -> np.ndarray | None:
    """The features read straight from the bytes where that is unambiguous, else None (then
    the records are decoded): every record is flat (three objects: itself, its features and
    an empty ``extra``, and no prediction), and holds each feature once, as a plain number."""
    import numpy as np

    data, count = chunk.rows, chunk.count
    if (
        any(feature.length != 1 for feature in features)
        or data.count(b"{") != 3 * count
        or data.count(b'"extra":{}}') != count
        or b'"prediction":' in data
        or b'"last_updated":' in data
    ):
        return None
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0x0A)
    out = np.empty((count, len(features)), dtype=np.float64)
    for at, feature in enumerate(features):
        name = orjson.dumps(feature.name) + b":"
        if data.count(name) != count:
            return None
        starts, texts = [], []
        for match in re.finditer(re.escape(name) + NUMBER, data):
            starts.append(match.start())
            texts.append(match.group(1))
        # One match a record, in its own record (a record lacking it would shift the rest).
        if len(texts) != count or not np.array_equal(
            np.searchsorted(ends, starts), np.arange(count)
        ):
            return None
        out[:, at] = np.array(texts).astype(np.float64)
    if not np.isfinite(out).all():
        return None  # the record path names the record whose number overflows
    return out


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
    texts = _each(found) if not classifier else [dumps(value) for value in found]
    sure = confidences.tolist()
    if sure and all(c == sure[0] for c in sure):  # a regressor's R², the same for every row
        middle = [b',"confidence":' + dumps(sure[0]) + tail] * len(sure)
    else:
        middle = [b',"confidence":' + text + tail for text in _each(sure)]
    out = []
    for body, value, rest in zip(bodies, texts, middle, strict=True):
        out.append(body[:-1] + head + value + rest)
    return b"".join(out)


def _each(numbers: list[Any]) -> list[bytes]:
    """Each number's JSON text, encoded in one call (numbers hold no commas)."""
    return dumps(numbers)[1:-1].split(b",") if numbers else []


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
