"""What the file-backed sources (csv, json) share: a spool, paging over it, saving.

A subclass says how to parse its file into spool rows and how to write records back. The
file is parsed once, in a worker thread, when the plugin is configured; contexts read the
spool. A ``readwrite`` source saves its records when a context or the plugin closes (and so at
shutdown) if anything changed: written to a temporary file beside the original, flushed to
disk, then renamed over it, so the file is always either the old or the new version whatever
happens, and concurrent updates (which only touch the spool) can never interleave in it.
"""

from __future__ import annotations

import asyncio
import os
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Protocol, TypeVar

from service.plugins.base import EncodedRecords, Record, RecordChunk, Source, SourceContext
from service.plugins.sources.spool import RecordSpool
from service.sandbox import save_temp_name
from service.streaming import POSITION_BYTES, Reader


class FileSourceConfig(Protocol):
    """What every file-backed source's config has."""

    @property
    def filename(self) -> Path: ...

    @property
    def readwrite(self) -> bool: ...


ConfigT = TypeVar("ConfigT", bound=FileSourceConfig)

# A chunk whose bytes fit in this is read on the event loop: a positional read of at most this
# much from a file the spool just wrote (so in the page cache) costs less than a hop to a
# worker thread. Larger chunks are read in a worker.
INLINE_READ_BYTES = 512 * 1024
# Records decoded per step when a consumer iterates records() (models, scorers, saving).
DECODE_BATCH = 1024


class SpoolSource(Source[ConfigT]):
    """A file parsed once into a spool; ``filename`` and ``readwrite`` come from the config."""

    FORMAT: ClassVar[str]

    spool: RecordSpool

    def __init__(self, config: ConfigT) -> None:
        super().__init__(config)
        self.filename = config.filename
        self.readwrite = config.readwrite
        self._dirty = False
        self._save_lock = asyncio.Lock()

    async def __aenter__(self) -> SpoolSource[ConfigT]:
        self.spool = await asyncio.to_thread(self._load)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.save()
        finally:
            self.spool.close()

    def context(self) -> SpoolContext:
        return SpoolContext(self)

    def _load(self) -> RecordSpool:
        """Parse the file into a new spool (worker thread); a missing file is empty if writable
        or ``allowempty``."""
        spool = RecordSpool(keys_are_row_numbers=self.keys_are_row_numbers())
        # DFFML's meaning of allowempty: a file that does not exist (yet) is an empty source.
        missing_is_empty = self.readwrite or getattr(self.config, "allowempty", False)
        if missing_is_empty and not self.filename.exists():
            return spool
        try:
            self.parse(spool)
        except BaseException:
            spool.close()
            raise
        return spool

    def keys_are_row_numbers(self) -> bool:
        return False

    @abstractmethod
    def parse(self, spool: RecordSpool) -> None:
        """Read ``self.filename`` into ``spool`` (worker thread)."""

    @abstractmethod
    def write(self, out: IO[bytes], batches: Iterator[list[Record]]) -> None:
        """Write every record, in order, in this format (worker thread)."""

    def note_update(self, record: Record) -> None:
        """Called on the event loop for each update before it is spooled (new columns …)."""

    async def update(self, record: Record) -> None:
        """Updates always land in the spool, so later reads see them, as in DFFML; only a
        ``readwrite`` source writes them back to its file (``save``)."""
        self.note_update(record)
        await asyncio.to_thread(self.spool.put_sync, record.key, EncodedRecords.encode_row(record))
        self._dirty = True

    async def save(self) -> None:
        """Write the records back if this source is read-write and anything changed."""
        if not self.readwrite:
            return
        async with self._save_lock:
            if not self._dirty:
                return
            # Updates from here on mark it dirty again, and are saved by the next save.
            self._dirty = False
            try:
                await asyncio.to_thread(self._save_sync, len(self.spool))
            except BaseException:
                self._dirty = True
                raise

    def _save_sync(self, count: int) -> None:
        tmp = self.filename.with_name(save_temp_name(self.filename.name))
        try:
            with open(tmp, "xb") as out:
                self.write(out, self.batches(count))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.filename)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def batches(self, count: int) -> Iterator[list[Record]]:
        for first in range(0, count, DECODE_BATCH):
            yield self.spool.decode_sync(first, min(first + DECODE_BATCH, count))


class SpoolReader:
    """Pages through a spool: each chunk is bytes already encoded, read in one piece."""

    def __init__(self, spool: RecordSpool) -> None:
        self._spool = spool
        self._next = 0

    async def read(self, size: int) -> tuple[EncodedRecords, bool]:
        first = self._next
        stop = min(first + size, len(self._spool))
        if self._spool.span_bytes(first, stop) <= INLINE_READ_BYTES:
            chunk = self._spool.read_sync(first, stop)
        else:
            chunk = await asyncio.to_thread(self._spool.read_sync, first, stop)
        self._next = first + chunk.count
        return chunk, self._next < len(self._spool)

    def held_bytes(self) -> int:
        return POSITION_BYTES

    async def aclose(self) -> None:
        self._next = len(self._spool)


class SpoolContext(SourceContext):
    def __init__(self, parent: SpoolSource[Any]) -> None:
        self.parent = parent

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.parent.save()

    async def record(self, key: str) -> Record:
        return self.parent.spool.get_sync(key) or Record(key)

    async def records(self) -> AsyncIterator[Record]:
        spool = self.parent.spool
        first = 0
        while first < len(spool):
            stop = first + DECODE_BATCH
            batch = await asyncio.to_thread(spool.decode_sync, first, stop)
            for record in batch:
                yield record
            first += len(batch)

    def reader(self) -> Reader[RecordChunk]:
        return SpoolReader(self.parent.spool)

    async def update(self, record: Record) -> None:
        await self.parent.update(record)
