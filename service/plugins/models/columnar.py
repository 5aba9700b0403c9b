"""The built-in models' data as NumPy arrays: features and targets read from column batches,
converted by the declared dtype exactly as the record path converts each record's values.

Where a conversion might differ from the record path (a missing value, text that is no finite
number, a class label the dtype refuses), :class:`Unfit` is raised and the caller reads the
records instead: they give the same model, or the error naming the record at fault. So the
columnar path is only ever faster, never different.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from service.kernel.errors import ServiceError
from service.sdk.columns import ColumnType, Scan, StaleScan
from service.sdk.feature import Feature

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


class Unfit(Exception):
    """The columns cannot be converted as the records would be: read the records instead."""


def wanted(
    features: Sequence[Feature], predict: Feature | None, *, classifier: bool
) -> dict[str, ColumnType] | None:
    """The columns to read and how, or None when a feature spans several values (a list per
    record, which no column of scalars holds)."""
    if any(feature.length != 1 for feature in features):
        return None
    columns: dict[str, ColumnType] = {feature.name: "float" for feature in features}
    if predict is not None:
        columns[predict.name] = "text" if classifier else "float"
    return columns


def read(scans: Sequence[Scan], columns: dict[str, ColumnType]) -> Iterator[tuple[Scan, pa.Table]]:
    """Each scan with its rows (in the worker); Unfit when one is stale."""
    for scan in scans:
        try:
            table = scan.table(columns, keys=False)
        except StaleScan:
            raise Unfit from None
        yield scan, table


def features(table: pa.Table, names: Sequence[str]) -> np.ndarray:
    """The named float columns as one (rows by features) float64 array."""
    import numpy as np

    x = np.empty((table.num_rows, len(names)), dtype=np.float64)
    for at, name in enumerate(names):
        x[:, at] = floats(table.column(name))
    return x


def floats(column: pa.ChunkedArray) -> np.ndarray:
    """A float column as float64; Unfit when a value is missing or not finite (the record path
    then names the record)."""
    import numpy as np
    import pyarrow as pa

    if column.null_count:
        raise Unfit
    values = np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False))
    if not np.isfinite(values).all():
        raise Unfit
    return values


def labels(column: pa.ChunkedArray, predict: Feature, value: Callable[[Any], Any]) -> np.ndarray:
    """Class labels as the record path makes them from each record's value (``value`` turns a
    cell into it: :meth:`Scan.value`), then by dtype; each distinct value converted once."""
    import numpy as np

    from service.plugins.models.trainable import label

    if column.null_count:
        raise Unfit
    encoded = column.combine_chunks().dictionary_encode()
    try:
        converted = [
            label(value(cell), predict.dtype, "", predict.name)
            for cell in encoded.dictionary.to_pylist()
        ]
    except ServiceError:
        raise Unfit from None
    indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
    out: np.ndarray = np.asarray(converted)[indices]
    return out
