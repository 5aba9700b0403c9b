"""``parquet``: records from an Apache Parquet file, one a row, columns as features (read-only).

Values keep the file's types (integers, floats, text, booleans); a null is no feature, as an
empty CSV cell is. Dates and times are ISO 8601 text, other types (decimals, binary) their text
form. Models read the file's columns directly (:class:`ParquetScan`).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from service.kernel import safefs
from service.kernel.errors import BadRequest
from service.plugins.sources.filebacked import SpoolSource
from service.plugins.sources.spool import RecordSpool, encode_row
from service.sdk.columns import ColumnType, Scan, StaleScan, with_keys
from service.sdk.config import field
from service.sdk.records import Record

if TYPE_CHECKING:
    import pyarrow as pa

# Rows decoded between two writes to the spool.
PARSE_BATCH = 8192


@dataclasses.dataclass(frozen=True)
class ParquetSourceConfig:
    filename: Path = field("Parquet file; inside the upload dir when a client names it")
    key: str | None = field(
        "column holding each record's key; without it the column named 'key' if the file has"
        " one, else a record's key is its row number from 0",
        default=None,
    )

    @property
    def readwrite(self) -> bool:
        return False


class ParquetSource(SpoolSource[ParquetSourceConfig]):
    CONFIG = ParquetSourceConfig
    FORMAT = "parquet"

    def __init__(self, config: ParquetSourceConfig) -> None:
        super().__init__(config)
        self.key_column = config.key

    def keys_are_row_numbers(self) -> bool:
        return self.config.key is None

    def parse(self, spool: RecordSpool) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            with safefs.open_read(self.filename) as raw:
                file = pq.ParquetFile(raw)
                names = file.schema_arrow.names
                if self.key_column is None and "key" in names:
                    self.key_column = "key"
                if self.key_column is not None and self.key_column not in names:
                    raise BadRequest(
                        f"ParquetSource key column {self.key_column!r} is not in"
                        f" {self.filename.name} (columns: {', '.join(names)})"
                    )
                number = 0
                for batch in file.iter_batches(batch_size=PARSE_BATCH):
                    rows: list[tuple[str, bytes]] = []
                    for values in batch.to_pylist():
                        features = {k: _plain(v) for k, v in values.items() if v is not None}
                        if self.key_column is None:
                            key = str(number)
                        else:
                            key = str(_plain(values[self.key_column]))
                        number += 1
                        rows.append((key, encode_row(key, features)))
                    spool.extend_sync(rows)
        except (pa.ArrowInvalid, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException):
                raise
            raise BadRequest(f"{self.filename.name} is not a Parquet file: {exc}") from None

    def write(self, out: IO[bytes], batches: Iterator[list[Record]]) -> None:
        raise BadRequest("The parquet source is read-only")

    def scan(self) -> ParquetScan | None:
        if self.updated or self._identity is None:
            return None
        return ParquetScan(self.filename, self._identity, self.key_column)


def _plain(value: Any) -> Any:
    """A value as the record view holds it: JSON's types, dates as ISO 8601 text."""
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


@dataclasses.dataclass(frozen=True)
class ParquetScan(Scan):
    path: Path
    identity: tuple[int, int, int, int]
    key_column: str | None

    def table(self, columns: dict[str, ColumnType], *, keys: bool = True) -> pa.Table:
        import pyarrow as pa
        import pyarrow.parquet as pq

        wanted = list(columns)
        if self.key_column is not None and self.key_column not in wanted:
            wanted.append(self.key_column)
        with safefs.open_read(self.path) as raw:
            if safefs.identity(os.fstat(raw.fileno())) != self.identity:
                raise StaleScan
            try:
                table = pq.read_table(raw, columns=wanted)
                out = [
                    table.column(name).cast(pa.float64()) if kind == "float" else table.column(name)
                    for name, kind in columns.items()
                ]
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError):
                raise StaleScan from None
        key_values = None if self.key_column is None else table.column(self.key_column)
        return with_keys(out, list(columns), table.num_rows, key_values, keys)
