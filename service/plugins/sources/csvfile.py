"""``csv``: records from a CSV file, one a row, columns as features, values typed."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from service.kernel import safefs
from service.kernel.errors import BadRequest
from service.plugins.sources import csvfast
from service.plugins.sources.csvscan import CSVScan
from service.plugins.sources.filebacked import SpoolSource
from service.plugins.sources.spool import RecordSpool, encode_row
from service.sdk.config import field
from service.sdk.records import Record

# Rows parsed between two writes to the spool.
PARSE_BATCH = 4096
_NUMBER_START = frozenset("-0123456789")
# DFFML's defaults: its key column, and the label names of 0.5 and of 0.4 (tag, tagcol).
DEFAULT_KEY = "key"
DEFAULT_LABEL = "unlabeled"
DEFAULT_LABELCOL = "label"
LEGACY_LABEL = "untagged"
LEGACY_LABELCOL = "tag"


@dataclasses.dataclass(frozen=True)
class CSVSourceConfig:
    filename: Path = field(
        "CSV file with a header row; inside the upload dir when a client names it"
    )
    readwrite: bool = field(
        "accept updates and write them back to the file when the source closes", default=False
    )
    allowempty: bool = field(
        "a missing file is an empty source; empty cells are kept as empty-string features"
        " (else an empty cell is no feature)",
        default=False,
    )
    label: str = field(
        "the rows whose labelcol column holds this label are this source's records"
        " (all rows when the file has no such column; by default also 'untagged', DFFML"
        " 0.4's label, when no row is 'unlabeled'); also accepted as 'tag'",
        default=DEFAULT_LABEL,
        aliases=("tag",),
    )
    labelcol: str = field(
        "the column holding each row's label (by default 'tag', DFFML 0.4's, when the file"
        " has no 'label' column); also accepted as 'tagcol'",
        default=DEFAULT_LABELCOL,
        aliases=("tagcol",),
    )
    key: str | None = field(
        "column holding each record's key; without it the column named 'key' if the file has"
        " one (DFFML's default), else a record's key is its row number from 0",
        default=None,
    )
    delimiter: str = field("the one character separating columns", default=",")

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1 or self.delimiter in '\r\n"':
            raise ValueError(
                "delimiter must be one character other than a quote or newline,"
                f" got {self.delimiter!r}"
            )


def typed(value: str) -> Any:
    """A cell as a number when it is written as a JSON number (``7``, ``-2``, ``0.5``, ``1e3``).

    Anything else stays text, including what only looks numeric: ``007``, ``+5``, ``.5``,
    ``1_000``, ``nan``, ``inf``, dates.
    """
    if not value or value[0] not in _NUMBER_START:
        return value
    try:
        number = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if type(number) is float and value.lstrip("-").isdigit():
        return int(value)  # an integer beyond 64 bits, which orjson reads as a float
    return number


def _text(path: Path) -> io.TextIOWrapper:
    """``path`` opened as CSV text, never through a link below the upload dir (safefs)."""
    return io.TextIOWrapper(safefs.open_read(path), encoding="utf-8-sig", newline="")


def cell(value: Any) -> str:
    """A feature value as a CSV cell that typed() reads back the same."""
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return orjson.dumps(value).decode()


class CSVSource(SpoolSource[CSVSourceConfig]):
    """Parses the file once into a spool; rows of other labels are kept when saving."""

    CONFIG = CSVSourceConfig
    FORMAT = "csv"

    def __init__(self, config: CSVSourceConfig) -> None:
        super().__init__(config)
        # The file's header, then any feature names that updates add.
        self.columns: list[str] = []
        self._has_label_column = False
        self._other_label_rows = 0
        # What the file turned out to use (DFFML's defaults are looked for when not given).
        self.key_column = config.key
        self.label = config.label
        self.labelcol = config.labelcol

    def keys_are_row_numbers(self) -> bool:
        # Safe for any keys: rows keyed 0, 1, 2, … are numbered, any other key is indexed.
        return self.config.key is None

    def scan(self) -> CSVScan | None:
        if self.updated or self._identity is None:
            return None
        return CSVScan(
            path=self.filename,
            identity=self._identity,
            delimiter=self.config.delimiter,
            key_column=self.key_column,
            labelcol=self.labelcol if self._has_label_column else None,
            label=self.label,
        )

    def parse(self, spool: RecordSpool) -> None:
        try:
            legacy_rows = self._parse_fast(spool)
            if legacy_rows and not len(spool):  # a DFFML 0.4 file: its rows are 'untagged'
                self.label = LEGACY_LABEL
                self._other_label_rows = 0
                self._parse_fast(spool)
        except csv.Error as exc:
            raise BadRequest(f"{self.filename.name} is not valid CSV: {exc}") from None

    def _parse_fast(self, spool: RecordSpool) -> int:
        """Through Arrow's CSV reader (csvfast), or row by row where only that reads the file
        as the record view has always read it."""
        other_label_rows = self._other_label_rows
        try:
            return csvfast.parse(self, spool)
        except csvfast.RowByRow:
            spool.reset_sync()
            self._other_label_rows = other_label_rows
            return self._parse(spool)

    def _parse(self, spool: RecordSpool) -> int:
        """Spool this source's rows; how many rows are labelled 'untagged' when the label
        was not given and may still turn out to be that one."""
        config = self.config
        with _text(self.filename) as file:
            reader = csv.reader(file, delimiter=config.delimiter)
            header = next(reader, None)
            if header is None:
                return 0
            key_at, label_at, feature_names = self.layout([name.strip() for name in header])
            allowempty, label = config.allowempty, self.label
            maybe_legacy = label == DEFAULT_LABEL
            legacy_rows = 0
            batch: list[tuple[str, bytes]] = []
            number = 0
            for row in reader:
                if not row:
                    continue
                if label_at is not None:
                    row_label = row[label_at] if label_at < len(row) else ""
                    if row_label != label:
                        self._other_label_rows += 1
                        if maybe_legacy and row_label == LEGACY_LABEL:
                            legacy_rows += 1
                        continue
                if key_at is None:
                    key = str(number)
                elif key_at < len(row):
                    key = row[key_at]
                else:
                    raise BadRequest(
                        f"{self.filename.name} line {reader.line_num} has no"
                        f" {self.key_column!r} column"
                    )
                if label_at is not None and label_at < len(row):
                    del row[label_at]
                if allowempty:
                    features = {
                        name: typed(value) for name, value in zip(feature_names, row, strict=False)
                    }
                else:
                    features = {
                        name: typed(value)
                        for name, value in zip(feature_names, row, strict=False)
                        if value
                    }
                number += 1
                batch.append((key, encode_row(key, features)))
                if len(batch) == PARSE_BATCH:
                    spool.extend_sync(batch)
                    batch = []
            spool.extend_sync(batch)
        return legacy_rows

    def layout(self, names: list[str]) -> tuple[int | None, int | None, list[str]]:
        """From the header's names: where the key and label columns are (None: not there),
        and the names of the features (every other column). Finds DFFML's defaults."""
        self.columns = list(names)
        if self.config.key is None and DEFAULT_KEY in names:
            self.key_column = DEFAULT_KEY
        key_at = self._column(names, self.key_column) if self.key_column is not None else None
        legacy_labelcol = self.labelcol == DEFAULT_LABELCOL and LEGACY_LABELCOL in names
        if legacy_labelcol and DEFAULT_LABELCOL not in names:
            self.labelcol = LEGACY_LABELCOL
        label_at = names.index(self.labelcol) if self.labelcol in names else None
        self._has_label_column = label_at is not None
        feature_names = [name for i, name in enumerate(names) if i != label_at]
        return key_at, label_at, feature_names

    def _column(self, names: list[str], wanted: str) -> int:
        if wanted not in names:
            raise BadRequest(
                f"CSVSource key column {wanted!r} is not in {self.filename.name}"
                f" (columns: {', '.join(names)})"
            )
        return names.index(wanted)

    def note_update(self, record: Record) -> None:
        if self.readwrite:
            self._check_saveable(record)
        for name in record.features:
            if name not in self.columns:
                self.columns.append(name)

    def _check_saveable(self, record: Record) -> None:
        """Refuse a feature the file, read back, would take for something else: the label
        column (every row would then be another label's, and hidden) or the key column with
        another value (the record would come back under another key)."""
        for name in self._label_columns() & record.features.keys():
            raise BadRequest(
                f"Feature {name!r} cannot be saved in {self.filename.name}: reading the file"
                f" back takes a {name!r} column for each row's label (labelcol), so the"
                " records would be hidden. Rename the feature, or configure the source with"
                " another labelcol"
            )
        key_column = self.key_column
        if (
            key_column is not None
            and key_column in record.features
            and cell(record.features[key_column]) != record.key
        ):
            raise BadRequest(
                f"Feature {key_column!r} is the key column of {self.filename.name}: it must"
                f" equal the record's key {record.key!r}, or the record would be read back"
                " under another key"
            )

    def _label_columns(self) -> set[str]:
        """Column names a reload would take for the label column."""
        names = {self.labelcol}
        if self.config.labelcol == DEFAULT_LABELCOL:  # found by name when the file is read
            if self.labelcol == LEGACY_LABELCOL:
                names.add(DEFAULT_LABELCOL)
            elif not self._has_label_column:
                names.add(LEGACY_LABELCOL)
        return names

    def write(self, out: IO[bytes], batches: Iterator[list[Record]]) -> None:
        config = self.config
        key_column, label, labelcol = self.key_column, self.label, self.labelcol
        columns = list(self.columns)
        if key_column is not None and key_column not in columns:
            columns.insert(0, key_column)
        keep_label = self._has_label_column or label != DEFAULT_LABEL
        if keep_label and labelcol not in columns:
            columns.append(labelcol)
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        writer = csv.writer(text, delimiter=config.delimiter, lineterminator="\n")
        writer.writerow(columns)
        if self._other_label_rows:
            self._copy_other_labels(writer, columns)
        for batch in batches:
            for record in batch:
                values = dict(record.features)
                if key_column is not None:
                    values.setdefault(key_column, record.key)
                if keep_label:
                    values[labelcol] = label
                writer.writerow([cell(values.get(name)) for name in columns])
        text.flush()
        text.detach()

    def _copy_other_labels(self, writer: Any, columns: list[str]) -> None:
        """Rows of other labels, from the file as it is, under the (maybe wider) header."""
        config = self.config
        with _text(self.filename) as file:
            reader = csv.reader(file, delimiter=config.delimiter)
            names = [name.strip() for name in next(reader, [])]
            if self.labelcol not in names:
                return
            label_at = names.index(self.labelcol)
            for row in reader:
                if row and (row[label_at] if label_at < len(row) else "") != self.label:
                    values = dict(zip(names, row, strict=False))
                    writer.writerow([values.get(name, "") for name in columns])
