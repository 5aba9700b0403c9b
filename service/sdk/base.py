"""The plugin contracts: what every plugin is, and the source, model and scorer contracts.

Every plugin is a class with a ``CONFIG`` dataclass (see :mod:`service.sdk.config`) and an
async ``context()``: the server configures a plugin under a label (``Plugin(config)``, entered
with ``async with``) and then opens contexts of it under context labels. Plugins never see
aiohttp; they raise :class:`service.kernel.errors.ServiceError` subclasses for bad input.
Records are :mod:`service.sdk.records`; modules (named functions over files)
:mod:`service.sdk.modules`.
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from service.kernel import jsoncodec
from service.kernel.errors import BadRequest
from service.sdk import columns
from service.sdk.config import EmptyConfig
from service.sdk.feature import Signature
from service.sdk.readers import IteratorReader, Reader
from service.sdk.records import EncodedRecords, Record, RecordChunk

if TYPE_CHECKING:
    import pyarrow as pa

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

    async def flush(self, *, discard: bool = False) -> None:
        """Write what is not saved yet, raising a ServiceError the client is told when that
        fails (the server calls it before releasing or replacing the label, which is kept
        then); ``discard``: drop what is unsaved instead. Nothing to do by default."""

    def claims(self) -> Path | None:
        """A file this plugin alone may write (a read-write csv or json source's): the server
        refuses a second label claiming the same file. None by default."""
        return None

    @classmethod
    def listing_extra(cls) -> dict[str, Any]:
        """Sections added beside the DFFML config shape in ``/list`` (modules add functions)."""
        return {}


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

    def batches(self, names: Sequence[str]) -> AsyncIterator[pa.RecordBatch]:
        """The records as Arrow record batches of the features ``names`` plus
        :data:`~service.sdk.columns.KEY` (see :mod:`service.sdk.columns`). The default builds
        them from ``records()``; a columnar source yields its own."""
        return columns.batches_from_records(self.records(), names)

    def scan(self) -> columns.Scan | None:
        """Where a worker can read this source's rows itself, or None (the default): then the
        data reaches models through ``records()`` or ``batches()`` in the server."""
        return None

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

    async def train_from(self, sources: Sequence[SourceContext]) -> None:
        """Learn from every record of ``sources``, in order. The default hands ``train`` their
        records; a model that reads columns overrides it (``batches()``, ``scan()``)."""
        records = _records_of(sources)
        try:
            await self.train(records)
        finally:
            await records.aclose()

    async def predict_batch(self, records: list[Record]) -> list[Record]:
        """Predictions for records already in memory (a request body), in order. The default
        goes through ``predict``; models may answer directly, sparing the hot path the
        async-iterator machinery."""
        return [record async for record in self.predict(_iterate(records))]

    async def error_sums(self, sources: Sequence[SourceContext]) -> columns.ErrorSums | None:
        """A regressor's errors over every record of ``sources``, summed without handing out
        the records (where they are read), or None: scorers then compare prediction by
        prediction (the default)."""
        return None

    async def class_pairs(self, sources: Sequence[SourceContext]) -> columns.ClassPairs | None:
        """A classifier's (true value, predicted label, count) over every record of
        ``sources``, counted without handing out the records, or None (the default)."""
        return None

    async def predict_lines(self, chunk: RecordChunk) -> bytes:
        """Predictions for a chunk of a source's records (as its reader hands them out), as
        newline-delimited JSON, one exported record a line: what a predict over a whole source
        writes. The default goes through ``predict_batch``; a model may splice its
        predictions into the encoded records instead."""
        records = chunk.decode() if isinstance(chunk, EncodedRecords) else chunk
        predicted = await self.predict_batch(records)
        return b"".join(jsoncodec.dumps(record.export()) + b"\n" for record in predicted)

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

    @property
    def signature(self) -> Signature | None:
        """The features the model reads and the one it predicts, when its config declares
        them (the Open Inference Protocol's metadata, docs/inference.md); None: the model
        takes whatever features it is given, and its tensors are named by the client."""
        return None

    @property
    def batch_limits(self) -> tuple[int | None, float | None]:
        """This model's own ``max_batch_size`` and ``max_batch_time`` when its config sets them
        (0: no batching for it); None: the server's ``-max-batch-size`` / ``-max-batch-time``."""
        return None, None

    @functools.cached_property
    def training_lock(self) -> asyncio.Lock:
        """Held by the server around ``train`` so trainings of one context run one at a time."""
        return asyncio.Lock()


async def _iterate(records: list[Record]) -> AsyncIterator[Record]:
    for record in records:
        yield record


async def _records_of(sources: Sequence[SourceContext]) -> AsyncGenerator[Record, None]:
    for source in sources:
        records = source.records()
        try:
            async for record in records:
                yield record
        finally:
            aclose = getattr(records, "aclose", None)
            if aclose is not None:
                await aclose()


class Model(Plugin[ConfigT]):
    KIND: ClassVar[Kind] = "model"

    @abstractmethod
    def context(self) -> ModelContext: ...


# --- scorers -------------------------------------------------------------------------------


class ScorerContext(AsyncResource, ABC):
    @abstractmethod
    async def score(self, model: ModelContext, records: AsyncIterator[Record]) -> float:
        """How well ``model`` predicts ``records``."""

    async def score_from(self, model: ModelContext, sources: Sequence[SourceContext]) -> float:
        """How well ``model`` predicts every record of ``sources``. The default hands
        ``score`` their records; a scorer that compares columns overrides it."""
        records = _records_of(sources)
        try:
            return await self.score(model, records)
        finally:
            await records.aclose()


class Scorer(Plugin[ConfigT]):
    KIND: ClassVar[Kind] = "scorer"

    @abstractmethod
    def context(self) -> ScorerContext: ...


# --- modules -------------------------------------------------------------------------------
#
# A module (MLsploit's idea) is a set of named functions. A function runs with typed options over
# files in the upload dir and writes new files, each tagged with values it reports, plus logs.
# The server validates everything a client sends against the declarations below before any
# function code runs, and runs the code in a worker process it can stop.
