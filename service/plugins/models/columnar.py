"""The built-in models' data as NumPy arrays: features and targets read from column batches,
converted by the declared dtype exactly as the record path converts each record's values.

Where a conversion might differ from the record path (a missing value, text that is no finite
number, a class label the dtype refuses), :class:`Unfit` is raised and the caller reads the
records instead: they give the same model, or the error naming the record at fault. So the
columnar path is only ever faster, never different.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from service.kernel.errors import ServiceError
from service.sdk.columns import ClassPairs, ColumnType, ErrorSums, Scan, StaleScan
from service.sdk.feature import Feature
from service.sdk.progress import progress

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from service.plugins.models.trainable import TrainableModel

StateT = TypeVar("StateT")


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

    from service.plugins.models.values import label

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


def arrays(
    model: TrainableModel[Any, Any], scans: Sequence[Scan], columns: dict[str, ColumnType]
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and targets read from ``scans`` (in the worker); Unfit when they must
    be read as records instead."""
    import numpy as np

    config = model.config
    names = [feature.name for feature in config.features]
    xs, ys = [], []
    for scan, table in read(scans, columns):
        xs.append(features(table, names))
        target_column = table.column(config.predict.name)
        if model.CLASSIFIER:
            ys.append(labels(target_column, config.predict, scan.value))
        else:
            ys.append(floats(target_column))
        progress(sum(len(x) for x in xs), None, "reading columns")
    x, y = np.concatenate(xs), np.concatenate(ys)
    if not len(x):
        raise Unfit  # the record path says there is nothing to train on
    return x, y


def error_sums(
    model: TrainableModel[Any, StateT],
    state: StateT,
    scans: Sequence[Scan],
    columns: dict[str, ColumnType],
) -> ErrorSums | None:
    """A regressor's errors over the rows of ``scans`` (in the worker), as the record path
    sums them; None where it must run (a value it would refuse, a non-finite prediction)."""
    import numpy as np

    try:
        x, truths = arrays(model, scans, columns)
    except Unfit:
        return None
    values, _ = model.predict_array(state, x)
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        return None
    if model.config.predict.dtype == "int":
        values = np.round(values)  # as_dtype: what the record path compares
    # Overflow gives inf, as Python floats do; the score is then refused as not finite.
    with np.errstate(all="ignore"):
        errors = truths - values
        mean = float(truths.mean())
        deviations = truths - mean
        return ErrorSums(
            count=len(truths),
            squared=float(errors @ errors),
            absolute=float(np.abs(errors).sum()),
            mean=mean,
            spread=float(deviations @ deviations),
        )


def class_pairs(
    model: TrainableModel[Any, StateT],
    state: StateT,
    scans: Sequence[Scan],
    columns: dict[str, ColumnType],
) -> ClassPairs | None:
    """A classifier's (truth as the record holds it, predicted label, count) over the rows of
    ``scans`` (in the worker); None where the record path must run."""
    import numpy as np

    names = [feature.name for feature in model.config.features]
    counts: dict[tuple[Any, Any], int] = {}
    try:
        for scan, table in read(scans, columns):
            column = table.column(model.config.predict.name)
            if column.null_count:
                return None  # the scorer names the record without a value to compare
            encoded = column.combine_chunks().dictionary_encode()
            truths = [scan.value(cell) for cell in encoded.dictionary.to_pylist()]
            values, _ = model.predict_array(state, features(table, names))
            predicted, predicted_at = np.unique(values, return_inverse=True)
            labels = predicted.tolist()
            truth_at = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
            pairs, found = np.unique(
                truth_at.astype(np.int64) * len(labels) + predicted_at, return_counts=True
            )
            for pair, count in zip(pairs.tolist(), found.tolist(), strict=True):
                key = (truths[pair // len(labels)], labels[pair % len(labels)])
                counts[key] = counts.get(key, 0) + count
    except (Unfit, TypeError):  # TypeError: a truth that is no label (a list)
        return None
    return [(truth, label, count) for (truth, label), count in counts.items()] or None
