"""The contracts plugin authors implement.

Every plugin is a class with a ``CONFIG`` dataclass (see :mod:`service.plugins.config`) and an
async ``context()``: the server configures a plugin under a label (``Plugin(config)``, entered
with ``async with``) and then opens contexts of it under context labels. Plugins never see
aiohttp; they raise :class:`service.errors.ServiceError` subclasses for bad input.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, TypeVar

import orjson

from service.errors import BadRequest
from service.plugins.config import EmptyConfig
from service.streaming import IteratorReader, Reader

Kind = Literal["source", "model", "scorer", "module"]
KINDS: tuple[Kind, ...] = ("source", "model", "scorer", "module")

ConfigT = TypeVar("ConfigT")
SelfT = TypeVar("SelfT", bound="AsyncResource")


class AsyncResource:
    """Something opened with ``async with`` and closed exactly once by the server."""

    async def __aenter__(self: SelfT) -> SelfT:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class Plugin(AsyncResource, Generic[ConfigT]):
    """A configured plugin. ``KIND`` is set by each kind's base class below."""

    KIND: ClassVar[Kind]
    CONFIG: ClassVar[type] = EmptyConfig

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    @abstractmethod
    def context(self) -> AsyncResource:
        """A new context of this plugin; the server enters and exits it."""

    @classmethod
    def listing_extra(cls) -> dict[str, Any]:
        """Sections added beside the DFFML config shape in ``/list`` (modules add functions)."""
        return {}


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
        return cls(key=key, features=features, extra=extra)


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
        # The key is a JSON string, inside which every quote is escaped, so the first
        # ':{"' of a row is where the record object starts.
        return b"".join(row[row.index(b':{"') + 1 :] for row in self.rows.splitlines(True))


RecordChunk = list[Record] | EncodedRecords


class SourceContext(AsyncResource, ABC):
    """Reads (and for read-write sources, writes) records."""

    @abstractmethod
    async def record(self, key: str) -> Record:
        """The record with ``key``; an unknown key gives ``Record(key)`` (DFFML semantics)."""

    @abstractmethod
    def records(self) -> AsyncIterator[Record]:
        """Every record in source order, streamed: never the whole source in memory at once."""

    def reader(self) -> Reader[RecordChunk]:
        """Reads ``records()`` chunk by chunk for iterkey paging and streaming.

        Sources that can serve chunks faster (an index, pre-encoded rows) override this.
        """
        return IteratorReader(self.records())

    async def update(self, record: Record) -> None:
        raise BadRequest("Source is read-only")


class Source(Plugin[ConfigT]):
    KIND: ClassVar[Kind] = "source"

    @abstractmethod
    def context(self) -> SourceContext: ...


# --- models --------------------------------------------------------------------------------


class ModelContext(AsyncResource, ABC):
    @abstractmethod
    async def train(self, records: AsyncIterator[Record]) -> None:
        """Learn from ``records``; blocking work goes to a worker, never the event loop.

        The server never runs two trainings of one context at once (see ``training_lock``).
        """

    @abstractmethod
    def predict(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        """Yield each record with ``prediction`` filled in, as a new Record (never mutate
        the records given: they may belong to a source)."""

    @property
    def trained(self) -> bool:
        """False while there is nothing to predict with: the server then refuses predict and
        score with 400 ``Model not trained``. Models without learned state keep the default."""
        return True

    @property
    def natural_scorer(self) -> str | None:
        """The scorer plugin ``POST /model/{ctx}/accuracy`` uses for this model (``r2`` for
        regressors, ``clf`` for classifiers), or None when the model has none."""
        return None

    @functools.cached_property
    def training_lock(self) -> asyncio.Lock:
        """Held by the server around ``train`` so trainings of one context run one at a time."""
        return asyncio.Lock()


class Model(Plugin[ConfigT]):
    KIND: ClassVar[Kind] = "model"

    @abstractmethod
    def context(self) -> ModelContext: ...


# --- scorers -------------------------------------------------------------------------------


class ScorerContext(AsyncResource, ABC):
    @abstractmethod
    async def score(self, model: ModelContext, records: AsyncIterator[Record]) -> float:
        """How well ``model`` predicts ``records``."""


class Scorer(Plugin[ConfigT]):
    KIND: ClassVar[Kind] = "scorer"

    @abstractmethod
    def context(self) -> ScorerContext: ...


# --- modules -------------------------------------------------------------------------------


class ModuleContext(AsyncResource, ABC):
    """A configured module ready to run its functions."""


class Module(Plugin[ConfigT]):
    KIND: ClassVar[Kind] = "module"

    @abstractmethod
    def context(self) -> ModuleContext: ...


BASES: dict[Kind, Any] = {
    "source": Source,
    "model": Model,
    "scorer": Scorer,
    "module": Module,
}
