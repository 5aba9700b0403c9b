"""Column batches: a source's records as Apache Arrow record batches, beside the records.

Models that read whole columns (NumPy arrays) take batches instead of one record at a time:

- :meth:`SourceContext.batches <service.sdk.base.SourceContext.batches>` yields
  ``pyarrow.RecordBatch`` es of the named columns plus :data:`KEY`, the records' keys. A source
  that only yields records gets it for free: :func:`batches_from_records` builds them.
- :meth:`SourceContext.scan <service.sdk.base.SourceContext.scan>` may describe where the rows
  are (a :class:`Scan`: paths and options, never data) so that a worker process sharing the
  upload dir reads them itself and the server's memory stays flat. ``None`` (the default): the
  data goes through the server as batches.

A batch holds what the records hold: values keep the record view's types (a column whose
records mix text and numbers holds each value's JSON text); a record without the feature has a
null. Converting a column to what a model wants (floats, class labels) is the model's
business, by its declared dtype: :mod:`service.plugins.models.columnar` is how the built-in
models do it.

pyarrow is imported on first use: servers that never build a batch do not pay for it.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import orjson

from service.sdk.records import Record

if TYPE_CHECKING:
    import pyarrow as pa

# The column of record keys in every batch (a feature name never starts with a colon: the
# ``NAME:DTYPE:LENGTH`` form splits on it).
KEY = ":key"
# Records per batch built from records.
BATCH_ROWS = 65536

ColumnType = Literal["float", "text"]


@dataclasses.dataclass(frozen=True)
class ErrorSums:
    """A regressor's errors over many records, summed where the records were read: how many,
    the sums of squared and of absolute errors, and the truths' mean and sum of squared
    deviations from it (what mse, mae and r2 need)."""

    count: int
    squared: float
    absolute: float
    mean: float
    spread: float


ClassPairs = list[tuple[Any, Any, int]]
"""A classifier's predictions over many records, counted where the records were read: each
(true value as the record holds it, predicted label, how many records) once."""


class StaleScan(Exception):
    """The file a :class:`Scan` describes is no longer the version the source read (or cannot
    be read as columns as it is): read the source's records instead."""


class Scan(ABC):
    """Where a source's rows are, for a process that reads them itself.

    Pickled to a worker (a local process or a Dask worker), so it holds paths and options
    only. ``table`` runs there and returns the source's records in source order, with the
    columns asked for and :data:`KEY`; ``"float"`` columns as float64 (text that is no number
    is an error), ``"text"`` columns as the file holds them (:meth:`value` gives the record
    view's value of one of their cells). It raises
    :class:`StaleScan` when the file changed since the source read it, or holds something the
    columnar reader would read differently from the record view (then the records are read).
    """

    @abstractmethod
    def table(self, columns: dict[str, ColumnType], *, keys: bool = True) -> pa.Table:
        """The rows, with ``columns`` (name → how to read it) and, if ``keys``, :data:`KEY`
        first (a model that trains needs no keys: leaving them out saves making them)."""

    def value(self, cell: Any) -> Any:
        """The record view's value of a ``"text"`` column's cell (a CSV types its cells)."""
        return cell


def with_keys(
    found: list[pa.ChunkedArray],
    names: list[str],
    rows: int,
    key_values: pa.ChunkedArray | None,
    keys: bool,
) -> pa.Table:
    """What :meth:`Scan.table` returns: the columns found, with :data:`KEY` first if ``keys``
    (``key_values``, or row numbers from 0 when None). Keys repeated raise StaleScan: the
    record view holds one record per key, the file more rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if key_values is not None:
        key_values = pc.cast(key_values, pa.string())
        if key_values.null_count or pc.count_distinct(key_values).as_py() != rows:
            raise StaleScan
    if not keys:
        return pa.table(found, names=names) if found else pa.table({})
    if key_values is None:
        key_values = pc.cast(pa.array(np.arange(rows)), pa.string())
    return pa.table([key_values, *found], names=[KEY, *names])


def batch_from_records(records: Sequence[Record], columns: Sequence[str]) -> pa.RecordBatch:
    """One batch of ``records``: :data:`KEY` and each named feature (null where missing)."""
    import pyarrow as pa

    arrays = [pa.array([record.key for record in records], type=pa.string())]
    for name in columns:
        arrays.append(_column([record.features.get(name) for record in records]))
    return pa.RecordBatch.from_arrays(arrays, names=[KEY, *columns])


def _column(values: list[Any]) -> pa.Array:
    """Arrow infers the type; values it cannot put in one column (text beside numbers, lists
    beside scalars) are kept as their JSON text."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array(
            [None if value is None else _text(value) for value in values], type=pa.string()
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


async def batches_from_records(
    records: AsyncIterator[Record] | Iterable[Record],
    columns: Sequence[str],
    size: int = BATCH_ROWS,
) -> AsyncIterator[pa.RecordBatch]:
    """``records`` as batches of at most ``size`` rows (what the default ``batches`` does)."""
    pending: list[Record] = []
    if isinstance(records, AsyncIterator):
        async for record in records:
            pending.append(record)
            if len(pending) == size:
                yield batch_from_records(pending, columns)
                pending = []
    else:
        for record in records:
            pending.append(record)
            if len(pending) == size:
                yield batch_from_records(pending, columns)
                pending = []
    if pending:
        yield batch_from_records(pending, columns)
