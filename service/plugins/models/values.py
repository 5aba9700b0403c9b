"""Records' values as a built-in model's numbers and labels, and predictions in the declared
type: the record path's conversions, which the columnar path matches exactly."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from service.kernel.errors import BadRequest
from service.sdk.feature import Feature, finite_float
from service.sdk.records import Record

Row = list[float]
Label = str | int | float | bool
Prediction = tuple[Any, float]


def as_dtype(value: Any, dtype: str) -> Any:
    """A regressor's number in the predicted feature's declared type, as DFFML casts it:
    ``Salary:int:1`` predicts the JSON integer 70, not 70.00000000000001 (rounded, so
    69.99999999999999 is 70 too); ``float`` stays a float. Other dtypes keep the number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if dtype == "int":
        return round(value) if math.isfinite(value) else value
    if dtype == "float":
        return float(value)
    return value


_stamp: tuple[int, str] = (-1, "")


def timestamp() -> str:
    """``2019-10-15T08:19:41Z``, the form DFFML writes ``last_updated`` in.

    Formatted once per second: formatting the time took ~5% of a 2-record predict request.
    """
    global _stamp
    second = int(time.time())
    if second != _stamp[0]:
        _stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _stamp[1]


def feature_row(record: Record, features: Sequence[Feature]) -> Row:
    """The record's features as one row of numbers; a feature of length n gives n columns."""
    row: Row = []
    for feature in features:
        value = _value(record, feature.name)
        if feature.length == 1:
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            row.append(number(value, record.key, feature.name))
            continue
        if not (isinstance(value, list) and len(value) == feature.length):
            raise BadRequest(
                f"Record {record.key!r} feature {feature.name!r} must be a list of"
                f" {feature.length} numbers"
            )
        row.extend(number(item, record.key, feature.name) for item in value)
    return row


def target(record: Record, predict: Feature, *, classifier: bool) -> Any:
    """The value to learn: a number for regressors, a class label for classifiers."""
    value = _value(record, predict.name)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not classifier:
        return number(value, record.key, predict.name)
    return label(value, predict.dtype, record.key, predict.name)


def number(value: Any, key: str, name: str) -> float:
    result = finite_float(value)
    if result is None:
        raise _not_numeric(value, key, name)
    return result


def label(value: Any, dtype: str, key: str, name: str) -> Label:
    """A class label in the predicted feature's dtype, so "1" and 1 are one class."""
    if isinstance(value, (list, dict)) or value is None:
        raise BadRequest(f"Record {key!r} feature {name!r} must be a single class label")
    if dtype == "str":
        return str(value)
    if dtype == "bool":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return bool(number(value, key, name))
    result = number(value, key, name)
    if dtype == "int":
        if not result.is_integer():
            raise BadRequest(f"Record {key!r} feature {name!r} must be an integer class")
        return int(result)
    return result


def _value(record: Record, name: str) -> Any:
    try:
        return record.features[name]
    except KeyError:
        raise BadRequest(f"Record {record.key!r} is missing feature {name!r}") from None


def _not_numeric(value: Any, key: str, name: str) -> BadRequest:
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return BadRequest(f"Record {key!r} feature {name!r} must be a number, got {shown}")
