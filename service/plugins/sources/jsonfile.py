"""``json``: records from a JSON file, in DFFML's labelled layout or as a plain list or object."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from service.kernel import safefs
from service.kernel.errors import BadRequest
from service.plugins.sources.filebacked import SpoolSource
from service.plugins.sources.spool import RecordSpool
from service.sdk.config import field
from service.sdk.records import EncodedRecords, Record

# Records encoded between two writes to the spool.
ENCODE_BATCH = 4096

Layout = Literal["labelled", "object", "list"]
# DFFML's default label, and DFFML 0.4's.
DEFAULT_LABEL = "unlabeled"
LEGACY_LABEL = "untagged"


@dataclasses.dataclass(frozen=True)
class JSONSourceConfig:
    filename: Path = field("JSON file of records; inside the upload dir when a client names it")
    readwrite: bool = field(
        "accept updates and write them back to the file when the source closes", default=False
    )
    label: str = field(
        'the records under this top-level key ({"LABEL": {"KEY": {...}}}, as DFFML writes;'
        " by default also 'untagged', DFFML 0.4's label, when the file has no 'unlabeled');"
        " also accepted as 'tag'",
        default=DEFAULT_LABEL,
        aliases=("tag",),
    )
    allowempty: bool = field("a missing file is an empty source", default=False)


class JSONSource(SpoolSource[JSONSourceConfig]):
    """Reads one of three layouts and saves in the layout it read.

    - DFFML's: ``{"LABEL": {"KEY": {"features": {...}}}, "OTHER": {...}}``; other labels are
      kept when saving. A new file is written this way.
    - An object of records by key: ``{"KEY": {"features": {...}}, ...}``.
    - A list of records with their keys: ``[{"key": "KEY", "features": {...}}, ...]``.
    """

    CONFIG = JSONSourceConfig
    FORMAT = "json"

    def __init__(self, config: JSONSourceConfig) -> None:
        super().__init__(config)
        self.layout: Layout = "labelled"
        self.label = config.label

    def parse(self, spool: RecordSpool) -> None:
        try:
            data = orjson.loads(safefs.read_bytes(self.filename))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"{self.filename.name} is not valid JSON: {exc}") from None
        batch: list[tuple[str, bytes]] = []
        for key, value in self._records(data):
            batch.append((key, EncodedRecords.encode_row(_record(key, value))))
            if len(batch) == ENCODE_BATCH:
                spool.extend_sync(batch)
                batch = []
        spool.extend_sync(batch)

    def _records(self, data: Any) -> Iterable[tuple[str, Any]]:
        if isinstance(data, list):
            self.layout = "list"
            return (_keyed(i, item) for i, item in enumerate(data))
        if not isinstance(data, dict):
            raise BadRequest(f"{self.filename.name} must hold a JSON object or list of records")
        legacy = self.label == DEFAULT_LABEL and isinstance(data.get(LEGACY_LABEL), dict)
        if legacy and DEFAULT_LABEL not in data:  # saved by DFFML 0.4
            self.label = LEGACY_LABEL
        labelled = data.get(self.label)
        if isinstance(labelled, dict):
            return labelled.items()
        if any(isinstance(value, dict) and "features" in value for value in data.values()):
            self.layout = "object"
            return data.items()
        return ()  # only other labels: none of this source's

    def write(self, out: IO[bytes], batches: Iterator[list[Record]]) -> None:
        if self.layout == "list":
            out.write(b"[")
            _write_joined(out, (orjson.dumps(r.export()) for b in batches for r in b))
            out.write(b"]")
            return
        if self.layout == "labelled":
            out.write(b"{" + orjson.dumps(self.label) + b":")
        out.write(b"{")
        _write_joined(
            out,
            (orjson.dumps(r.key) + b":" + orjson.dumps(r.export()) for b in batches for r in b),
        )
        out.write(b"}")
        if self.layout == "labelled":
            for name, value in self._other_labels().items():
                out.write(b"," + orjson.dumps(name) + b":" + orjson.dumps(value))
            out.write(b"}")

    def _other_labels(self) -> dict[str, Any]:
        try:
            data = orjson.loads(safefs.read_bytes(self.filename))
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {name: value for name, value in data.items() if name != self.label}


def _write_joined(out: IO[bytes], pieces: Iterable[bytes]) -> None:
    separator = b""
    for piece in pieces:
        out.write(separator + piece)
        separator = b","


def _keyed(position: int, item: Any) -> tuple[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("key"), (str, int)):
        raise BadRequest(f"record {position} of the list has no 'key' (a string or number)")
    return str(item["key"]), item


def _record(key: str, value: Any) -> Record:
    record = Record.from_json(key, value)
    if isinstance(value.get("prediction"), dict):
        record.prediction = value["prediction"]
    if isinstance(value.get("last_updated"), str):
        record.last_updated = value["last_updated"]
    return record
