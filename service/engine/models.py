"""Train, predict and score: the core behind the model and scorer routes, free of HTTP."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, cast

from service.contexts import ContextStore
from service.kernel import scope
from service.kernel.errors import BadRequest, NotFound
from service.plugins.registry import Registry
from service.sdk import config as plugin_config
from service.sdk import offload, readers
from service.sdk.base import ModelContext, Scorer, ScorerContext, SourceContext
from service.sdk.readers import Reader
from service.sdk.records import EncodedRecords, Record, RecordChunk

T = TypeVar("T")


@contextlib.asynccontextmanager
async def closing(iterator: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close an async generator when done with it, even if it was not exhausted (an error,
    a failed training): its ``finally`` blocks then run now, not whenever it is collected."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def source_labels(body: list[Any]) -> list[str]:
    """The source context labels of a train or score body."""
    if not body:
        raise BadRequest("No source context labels given")
    for label in body:
        if not isinstance(label, str):
            raise BadRequest(f"Source context labels must be strings, got {label!r}")
    return body


def sources(store: ContextStore, labels: list[str]) -> list[SourceContext]:
    """Every named source context, or 404 ``Source not loaded`` (403 when the caller's rules
    hide it: reading all its records is ``source/LABEL/records``) before anything runs."""
    for label in labels:
        scope.require("source", label, "records")
    return [store.source(label) for label in labels]


async def records_of(contexts: Iterable[SourceContext]) -> AsyncIterator[Record]:
    for context in contexts:
        async with closing(context.records()) as records:
            async for record in records:
                yield record


async def records_from(items: Iterable[Record]) -> AsyncIterator[Record]:
    for record in items:
        yield record


def records_in_body(body: dict[str, Any]) -> list[Record]:
    """``{key: {"features": {...}}}`` as clients send records to predict."""
    return [Record.from_json(str(key), value) for key, value in body.items()]


def require_trained(model: ModelContext) -> None:
    if not model.trained:
        raise BadRequest("Model not trained")


async def train_from(
    model: ModelContext,
    sources: Sequence[SourceContext],
    runner: offload.Runner | None = None,
    trained: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Train ``model`` on every record of ``sources``, reading them as the model likes best
    (columns for the built-in models: ``ModelContext.train_from``); a second training of the
    same context waits for the first. ``runner`` lends the model the server's worker processes
    (:mod:`service.sdk.offload`); ``trained`` runs after a training that succeeded, still
    before the next one starts (the model's version is kept then)."""
    async with model.training_lock:
        with offload.using(runner):
            await model.train_from(sources)
        if trained is not None:
            await trained()


def predict(model: ModelContext, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
    """The model's predictions for ``records``; closing the result closes ``records`` too."""
    require_trained(model)
    return _predictions(model, records)


async def _predictions(
    model: ModelContext, records: AsyncIterator[Record]
) -> AsyncIterator[Record]:
    async with closing(records), closing(model.predict(records)) as predicted:
        async for record in predicted:
            yield record


async def predict_all(model: ModelContext, records: AsyncIterator[Record]) -> list[Record]:
    """Every prediction for a stream of records at once (``chunk_size`` 0)."""
    async with closing(predict(model, records)) as predicted:
        return [record async for record in predicted]


async def predict_list(model: ModelContext, records: list[Record]) -> list[Record]:
    """Predictions for records in memory (a request body): the hot path, no iterators."""
    require_trained(model)
    return await model.predict_batch(records)


class SourcePredictReader:
    """Predictions of a source's records, read through the source's own chunked reader.

    Between two requests the cursor holds what that reader holds (for the built-in sources, a
    position), never a decoded batch of records waiting to be predicted."""

    def __init__(self, model: ModelContext, reader: Reader[RecordChunk]) -> None:
        require_trained(model)
        self._model = model
        self._reader = reader

    async def read(self, size: int) -> tuple[list[Record], bool]:
        chunk, more = await self._reader.read(size)
        records = chunk.decode() if isinstance(chunk, EncodedRecords) else chunk
        return await predict_list(self._model, records), more

    def held_bytes(self) -> int:
        return readers.held_bytes(self._reader)

    async def aclose(self) -> None:
        await self._reader.aclose()


class BodyPredictReader:
    """Predictions of the records of a request body, paged: the records wait encoded (their
    JSON bytes, counted exactly), and are decoded a chunk at a time."""

    def __init__(self, model: ModelContext, records: list[Record]) -> None:
        require_trained(model)
        self._model = model
        self._rows = [EncodedRecords.encode_row(record) for record in records]
        self._next = 0
        self._bytes = sum(len(row) for row in self._rows)

    async def read(self, size: int) -> tuple[list[Record], bool]:
        rows = self._rows[self._next : self._next + size]
        # Let go of what was handed out: a half-read body shrinks as it is read.
        self._rows[self._next : self._next + len(rows)] = [b""] * len(rows)
        self._next += len(rows)
        self._bytes -= sum(len(row) for row in rows)
        records = EncodedRecords(b"".join(rows), len(rows)).decode()
        return await predict_list(self._model, records), self._next < len(self._rows)

    def held_bytes(self) -> int:
        # Each waiting row is a bytes object (33 bytes of header) in a list slot (8).
        return readers.POSITION_BYTES + self._bytes + 41 * (len(self._rows) - self._next)

    async def aclose(self) -> None:
        self._rows, self._next, self._bytes = [], 0, 0


class SourceBoundReader(Generic[T]):
    """A cursor reader over records of a source context that stops with a 404 once that
    context is closed or replaced, instead of reading on from a closed source."""

    def __init__(
        self, reader: Reader[T], store: ContextStore, label: str, source: SourceContext
    ) -> None:
        self._reader = reader
        self._store = store
        self._label = label
        self._source = source

    async def read(self, size: int) -> tuple[T, bool]:
        if self._store.source(self._label) is not self._source:
            raise NotFound("Source not loaded")
        return await self._reader.read(size)

    def held_bytes(self) -> int:
        return readers.held_bytes(self._reader)

    async def aclose(self) -> None:
        await self._reader.aclose()


def _finite(value: Any) -> float:
    # inf and nan have no JSON spelling: the client would read {"accuracy": null}.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(
            f"Score {value!r} is not a finite number: the errors are beyond float range"
        )
    return cast(float, value)


async def score_from(
    scorer: ScorerContext,
    model: ModelContext,
    sources: Sequence[SourceContext],
    runner: offload.Runner | None = None,
) -> float:
    """``score`` over every record of ``sources``, read as the scorer likes best (columns for
    the built-in scorers with a built-in model: ``ScorerContext.score_from``)."""
    require_trained(model)
    with offload.using(runner):
        return _finite(await scorer.score_from(model, sources))


async def natural_score(
    registry: Registry,
    model: ModelContext,
    sources: Sequence[SourceContext],
    runner: offload.Runner | None = None,
) -> float:
    """Score with the model's own scorer (``r2`` for regressors, ``clf`` for classifiers)."""
    name = model.natural_scorer
    if name is None:
        raise BadRequest(
            "This model names no scorer: use POST /scorer/{scorer_ctx}/{model_ctx}/score"
        )
    require_trained(model)
    cls = cast(type[Scorer[Any]], registry.get("scorer", name))
    config = plugin_config.build(
        cls.CONFIG,
        {},
        where=plugin_config.Where(cls.__name__, "scorer", name),
        resolve_path=_no_paths,
    )
    async with cls(config) as plugin, plugin.context() as scorer:
        return await score_from(scorer, model, sources, runner)


def _no_paths(path: str) -> Any:
    raise BadRequest("A model's own scorer takes no paths")
