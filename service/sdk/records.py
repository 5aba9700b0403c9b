"""Records: a key, its features and extra values, and chunks of them already encoded as JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from service.kernel.errors import BadRequest


@dataclasses.dataclass(slots=True)
class Record:
    """A keyed set of features, as DFFML's HTTP API writes it."""

    key: str
    features: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    prediction: dict[str, Any] | None = None
    last_updated: str | None = None

    def export(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "features": self.features, "extra": self.extra}
        if self.prediction is not None:
            out["prediction"] = self.prediction
        if self.last_updated is not None:
            out["last_updated"] = self.last_updated
        return out

    @classmethod
    def from_export(cls, value: dict[str, Any]) -> Record:
        """A record as ``export()`` wrote it (trusted: the server encoded it)."""
        return cls(
            key=value["key"],
            features=value.get("features", {}),
            extra=value.get("extra", {}),
            prediction=value.get("prediction"),
            last_updated=value.get("last_updated"),
        )

    @classmethod
    def from_json(cls, key: str, body: Any) -> Record:
        """A record from a client's JSON; the key in the URL wins over one in the body."""
        if not isinstance(body, dict):
            raise BadRequest(f"Record {key!r} must be a JSON object")
        features = body.get("features", {})
        extra = body.get("extra", {})
        if not isinstance(features, dict):
            raise BadRequest(f"Record {key!r} 'features' must be an object")
        if not isinstance(extra, dict):
            raise BadRequest(f"Record {key!r} 'extra' must be an object")
        for name, part in (("features", features), ("extra", extra)):
            if too_deep(part, MAX_NESTING):
                raise BadRequest(
                    f"Record {key!r} {name!r} nests lists and objects deeper than"
                    f" {MAX_NESTING} levels"
                )
        return cls(key=key, features=features, extra=extra)


# Deepest nesting of lists and objects a stored record may hold: the JSON encoder refuses
# deeper (orjson's limit is 254), so a deeper record could be stored but never served again.
MAX_NESTING = 200


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and dicts more than ``limit`` levels (iteratively: no
    recursion limit of Python's to hit either)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


# --- sources -------------------------------------------------------------------------------


_ENCODE_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class EncodedRecords:
    """Records a source has already encoded for the wire, so serving them is copying bytes.

    ``rows`` holds one line per record, ``"KEY":{record}`` (orjson escapes every newline
    inside strings, so the newline ends a record unambiguously).
    """

    __slots__ = ("count", "rows")

    def __init__(self, rows: bytes, count: int) -> None:
        self.rows = rows
        self.count = count

    @staticmethod
    def encode_row(record: Record) -> bytes:
        return (
            orjson.dumps(record.key)
            + b":"
            + orjson.dumps(record.export(), option=_ENCODE_OPTIONS)
            + b"\n"
        )

    def members(self) -> bytes:
        """The records as the members of a JSON object: ``"k1":{...},"k2":{...}``."""
        return self.rows[:-1].replace(b"\n", b",")

    def lines(self) -> bytes:
        """The records as newline-delimited JSON, one record object a line."""
        return b"".join(row[key_end(row) + 1 :] for row in self.rows.splitlines(True))

    def records(self) -> list[bytes]:
        """Each record's JSON object, without its key, in order."""
        return [row[key_end(row) + 1 : -1] for row in self.rows.splitlines(True)]

    def decode(self) -> list[Record]:
        """The records themselves, in order (a JSON list: rows are never merged by key)."""
        values: list[dict[str, Any]] = orjson.loads(b"[" + b",".join(self.records()) + b"]")
        return [Record.from_export(value) for value in values]


def key_end(row: bytes) -> int:
    """Where the JSON string key that starts ``row`` ends (the index after its closing quote).

    Found by the string's own syntax, never by searching for what follows it: a key may hold
    any text, ``:{"`` included. Inside a JSON string a quote is always escaped, so the closing
    one is the first quote preceded by an even number of backslashes.
    """
    at = 1
    while True:
        quote = row.index(b'"', at)
        backslashes = 0
        while row[quote - 1 - backslashes] == 0x5C:  # a backslash
            backslashes += 1
        if backslashes % 2 == 0:
            return quote + 1
        at = quote + 1


RecordChunk = list[Record] | EncodedRecords
