"""A ``csv`` source's rows read as columns by Arrow's multi-threaded CSV reader, in whatever
process trains on them (see :class:`service.sdk.columns.Scan`).

It reads the very file version the source parsed (device, inode, size and modification time
are checked on the open file) and gives up, so that the records are read instead, wherever
Arrow would read a row differently from the record view: a row with more or fewer cells than
the header, a header naming a wanted column twice, a key repeated (the record view keeps one
record per key).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.kernel import safefs
from service.sdk.columns import ColumnType, Scan, StaleScan, with_keys

if TYPE_CHECKING:
    import pyarrow as pa


@dataclasses.dataclass(frozen=True)
class CSVScan(Scan):
    path: Path
    identity: tuple[int, int, int, int]
    delimiter: str
    # What the source found in the file: its key column (None: rows are numbered) and, when
    # the file has a label column, that column and the label whose rows are the records.
    key_column: str | None
    labelcol: str | None
    label: str

    def value(self, cell: Any) -> Any:
        from service.plugins.sources.csvfile import typed

        return typed(cell) if isinstance(cell, str) else cell

    def table(self, columns: dict[str, ColumnType], *, keys: bool = True) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv

        with safefs.open_read(self.path) as raw:
            if safefs.identity(os.fstat(raw.fileno())) != self.identity:
                raise StaleScan
            header = _header(raw, self.delimiter)
            raw.seek(0)
            names = [name.strip() for name in header]
            types: dict[str, pa.DataType] = {}
            at: dict[str, str] = {}
            wanted = dict(columns)
            for name in (self.key_column, self.labelcol):
                if name is not None:
                    wanted.setdefault(name, "text")
            for name, kind in wanted.items():
                if names.count(name) != 1:
                    raise StaleScan
                at[name] = f"c{names.index(name)}"
                types[at[name]] = pa.float64() if kind == "float" else pa.string()
            try:
                table = pacsv.read_csv(
                    raw,
                    read_options=pacsv.ReadOptions(
                        column_names=[f"c{i}" for i in range(len(names))], skip_rows=1
                    ),
                    parse_options=pacsv.ParseOptions(
                        delimiter=self.delimiter, newlines_in_values=True
                    ),
                    convert_options=pacsv.ConvertOptions(
                        column_types=types, include_columns=list(types)
                    ),
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
                raise StaleScan from None
        if self.labelcol is not None:
            table = table.filter(pc.equal(table.column(at[self.labelcol]), self.label))
        key_values = None if self.key_column is None else table.column(at[self.key_column])
        found = [table.column(at[name]) for name in columns]
        return with_keys(found, list(columns), table.num_rows, key_values, keys)


def _header(raw: Any, delimiter: str) -> list[str]:
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
        header = next(csv.reader(text, delimiter=delimiter), None)
    except (csv.Error, UnicodeDecodeError):
        raise StaleScan from None
    finally:
        text.detach()
    if header is None:
        raise StaleScan
    return header
