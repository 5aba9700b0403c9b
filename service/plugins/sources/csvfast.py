"""The ``csv`` source's parse through Arrow's CSV reader: the same spool bytes as the
row-by-row parse, built a column at a time.

Every cell is read as text; each distinct text of a column is typed and JSON-encoded once in
Python (``typed`` then orjson, exactly what the row-by-row parse does to every cell) and the
encodings are spread over the rows by Arrow, which also joins each row's members into the
spool row ``"KEY":{"key":KEY,"features":{...},"extra":{}}``. A record's bytes are therefore the
very bytes the row-by-row parse writes, in the same order.

Whatever Arrow reads differently from Python's ``csv`` module, or cannot read (a row with more
or fewer cells than the header, text that is not UTF-8), raises :class:`RowByRow`: the caller
empties the spool and parses row by row, so clients see the record view they always saw.
"""

from __future__ import annotations

import contextlib
import csv
import io
from typing import TYPE_CHECKING, Any

import orjson

from service.kernel import safefs
from service.plugins.sources.spool import RecordSpool

if TYPE_CHECKING:
    import pyarrow as pa

    from service.plugins.sources.csvfile import CSVSource

# Bytes of the file Arrow parses per batch (in parallel within it): bounds what one batch
# holds in memory, a few times this.
BLOCK_BYTES = 2 * 1024 * 1024
LEGACY_LABEL = "untagged"


class RowByRow(Exception):
    """Arrow would not read this file as the row-by-row parse does: parse it that way."""


def parse(source: CSVSource, spool: RecordSpool) -> int:
    """Spool ``source``'s rows as ``CSVSource._parse`` does; the same return value."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    config = source.config
    with safefs.open_read(source.filename) as raw:
        header = _header(raw, config.delimiter)
        if header is None:
            return 0
        key_at, label_at, feature_names = source.layout([name.strip() for name in header])
        if len(set(feature_names)) != len(feature_names):
            raise RowByRow  # a name twice: its record holds it once, at the first place
        raw.seek(0)
        try:
            reader = pacsv.open_csv(
                raw,
                read_options=pacsv.ReadOptions(
                    column_names=[f"c{i}" for i in range(len(header))],
                    skip_rows=1,
                    block_size=BLOCK_BYTES,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=config.delimiter, newlines_in_values=True
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={f"c{i}": pa.string() for i in range(len(header))},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
            raise RowByRow from None
        # Closed before the file: its read-ahead thread must not outlive what it reads.
        try:
            with contextlib.closing(reader):
                return _batches(source, spool, reader, key_at, label_at, feature_names)
        finally:
            # What the batches took goes back to the system, not kept by Arrow's allocator.
            pa.default_memory_pool().release_unused()


def _batches(
    source: CSVSource,
    spool: RecordSpool,
    reader: Any,
    key_at: int | None,
    label_at: int | None,
    feature_names: list[str],
) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    config = source.config
    try:
        legacy_rows = 0
        number = 0
        maybe_legacy = source.label == "unlabeled"  # DFFML 0.5's default label
        members = [orjson.dumps(name) + b":" for name in feature_names]
        longest = csv.field_size_limit()
        for batch in reader:
            for column in batch.columns:
                # Python's csv refuses longer cells (the file is then not valid CSV).
                if (pc.max(pc.binary_length(column)).as_py() or 0) > longest:
                    raise RowByRow
            if label_at is not None:
                labels = batch.column(label_at)
                mine = pc.equal(labels, source.label)
                kept = pc.sum(mine).as_py() or 0
                source._other_label_rows += batch.num_rows - kept
                if maybe_legacy:
                    legacy_rows += pc.sum(pc.equal(labels, LEGACY_LABEL)).as_py() or 0
                batch = batch.filter(mine)
            if not batch.num_rows:
                continue
            cells = [batch.column(i) for i in range(batch.num_columns) if i != label_at]
            _spool(spool, batch, key_at, cells, members, config.allowempty, number)
            number += batch.num_rows
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, TypeError):
        # TypeError: orjson refuses a value (an integer beyond 64 bits); the row-by-row
        # parse then fails as it always has.
        raise RowByRow from None
    return legacy_rows


def _spool(
    spool: RecordSpool,
    batch: pa.RecordBatch,
    key_at: int | None,
    cells: list[pa.Array],
    members: list[bytes],
    allowempty: bool,
    number: int,
) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = batch.num_rows
    if key_at is None:
        keys: list[str] | None = None
        numbers = pc.cast(pa.array(np.arange(number, number + rows)), pa.string())
        quoted = pc.binary_join_element_wise('"', numbers, '"', "")
    else:
        key_column = batch.column(key_at)
        keys = key_column.to_pylist()
        quoted = _encoded(key_column, lambda text: text)
    parts = []
    for column, member in zip(cells, members, strict=True):
        part = pc.binary_join_element_wise(member.decode(), _encoded(column, _typed()), "")
        if not allowempty:  # an empty cell is no feature: a null member is skipped below
            part = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), part)
        parts.append(part)
    if parts:
        features = pc.binary_join_element_wise(*parts, ",", null_handling="skip")
    else:
        features = pa.array([""] * rows, pa.string())
    joined = pc.binary_join_element_wise(
        quoted, ':{"key":', quoted, ',"features":{', features, '},"extra":{}}\n', ""
    )
    joined = pc.cast(joined, pa.large_string())
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[
        joined.offset : joined.offset + rows + 1
    ]
    data = joined.buffers()[2]
    spool.extend_block_sync(memoryview(data)[offsets[0] : offsets[-1]], np.diff(offsets), keys)


def _typed() -> Any:
    from service.plugins.sources.csvfile import typed

    return typed


def _encoded(column: pa.Array, value: Any) -> pa.Array:
    """Each cell's JSON encoding, computed once per distinct cell."""
    import pyarrow as pa

    encoded = column.dictionary_encode()
    texts = [orjson.dumps(value(text)).decode() for text in encoded.dictionary.to_pylist()]
    return pa.array(texts, pa.string()).take(encoded.indices)


def _header(raw: Any, delimiter: str) -> list[str] | None:
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
        return next(csv.reader(text, delimiter=delimiter), None)
    except (csv.Error, UnicodeDecodeError):
        raise RowByRow from None
    finally:
        text.detach()
