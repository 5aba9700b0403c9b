"""What the file-backed sources (csv, json) share: a spool, paging over it, saving.

A subclass says how to parse its file into spool rows and how to write records back. The
file is parsed once, in a worker thread, when the plugin is configured; contexts read the
spool. A ``readwrite`` source saves its records when a context or the plugin closes (and so at
shutdown) if anything changed: written to a temporary file beside the original, flushed to
disk, then renamed over it, so the file is always either the old or the new version whatever
happens, and concurrent updates (which only touch the spool) can never interleave in it.

No update is lost without the client hearing of it (docs/plugins.md, "Read-write rules"): a
read-write source must be able to save (its directory exists and takes a new file: checked at
configure), its file must be its only name (no hard links), one label at a time may hold it
read-write (``claims``), and a file changed on disk since it was read is never overwritten. A
save that fails keeps the updates, answers the releasing request with the reason, and makes
every later update retry the save first (and answer the reason while it still fails).
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Protocol, TypeVar

from service.kernel import safefs
from service.kernel.errors import BadRequest, Conflict, InsufficientStorage, ServiceError
from service.kernel.sandbox import save_temp_name
from service.plugins.sources.spool import RecordSpool
from service.sdk.base import Source, SourceContext
from service.sdk.columns import Scan
from service.sdk.readers import POSITION_BYTES, Reader
from service.sdk.records import EncodedRecords, Record, RecordChunk


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
        # The file's version as read or last saved (None: there was none); a save refuses to
        # overwrite any other version.
        self._identity: tuple[int, int, int, int] | None = None
        # Why the last save failed, until one succeeds: updates retry the save first.
        self._save_error: ServiceError | None = None
        # Whether any update reached the spool: then the file alone no longer has the records.
        self.updated = False

    def claims(self) -> Path | None:
        return self.filename if self.readwrite else None

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

    async def flush(self, *, discard: bool = False) -> None:
        if discard:
            self._dirty = False
            self._save_error = None
            return
        await self.save()

    def context(self) -> SpoolContext:
        return SpoolContext(self)

    def _load(self) -> RecordSpool:
        """Parse the file into a new spool (worker thread); a missing file is empty if writable
        or ``allowempty``."""
        info = self._check_file()
        spool = RecordSpool(keys_are_row_numbers=self.keys_are_row_numbers())
        # DFFML's meaning of allowempty: a file that does not exist (yet) is an empty source.
        missing_is_empty = self.readwrite or getattr(self.config, "allowempty", False)
        if missing_is_empty and info is None:
            return spool
        try:
            self.parse(spool)
            if safefs.identity(safefs.lstat(self.filename)) != self._identity:
                # Replaced while being read: which version the spool holds is unknown.
                raise Conflict(f"{self.filename.name} changed while it was being read; try again")
        except BaseException:
            spool.close()
            raise
        return spool

    def _check_file(self) -> os.stat_result | None:
        """What the file is now (None: missing); refuses a read-write source that could not
        save, or whose saves would not reach every name of the file."""
        name = self.filename.name
        if self.readwrite:
            try:
                safefs.probe_writable(self.filename.parent, save_temp_name(name))
            except (FileNotFoundError, NotADirectoryError):
                raise BadRequest(
                    f"{name} cannot be saved: its directory {self.filename.parent.name!r} does"
                    " not exist (a readwrite source writes its file back there; the server"
                    " creates no directories)"
                ) from None
            except ServiceError as exc:
                raise BadRequest(f"{name} cannot be saved: {exc.message}") from None
            except OSError as exc:
                raise BadRequest(
                    f"{name} cannot be saved in {self.filename.parent.name!r}:"
                    f" {exc.strerror or exc} (a readwrite source writes its file back there)"
                ) from None
        info = safefs.lstat(self.filename)
        hard_linked = info is not None and stat.S_ISREG(info.st_mode) and info.st_nlink > 1
        if self.readwrite and info is not None and hard_linked:
            raise BadRequest(
                f"{name} has {info.st_nlink} hard links: a readwrite source must be its"
                " file's only name (a save replaces this name only, and a link could"
                " lead out of the upload directory)"
            )
        self._identity = safefs.identity(info)
        return info

    def keys_are_row_numbers(self) -> bool:
        return False

    def scan(self) -> Scan | None:
        """Where a worker reads the rows as columns (while the file alone has the records)."""
        return None

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
        ``readwrite`` source writes them back to its file (``save``). While the last save has
        failed, an update first saves again, and answers the reason if that fails too."""
        if self._save_error is not None:
            await self.save()
        self.note_update(record)
        self.updated = True
        row = EncodedRecords.encode_row(record)
        try:
            await asyncio.to_thread(self.spool.put_sync, record.key, row)
        except OSError as exc:  # the spool's disk is full or failing
            raise InsufficientStorage(
                f"Storing the update failed: {exc.strerror or exc}; nothing was changed"
            ) from None
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
            except BaseException as exc:
                self._dirty = True
                if isinstance(exc, OSError):
                    self._save_error = _save_failed(self.filename.name, exc)
                    raise self._save_error from None
                if isinstance(exc, ServiceError):
                    self._save_error = exc
                raise
            self._save_error = None

    def _save_sync(self, count: int) -> None:
        written = safefs.write_atomically(
            self.filename,
            lambda out: self.write(out, self.batches(count)),
            save_temp_name(self.filename.name),
            before_replace=self._unchanged,
        )
        self._identity = safefs.identity(written)

    def _unchanged(self, dir_fd: int, name: str) -> None:
        """Refuse to overwrite a version of the file this source did not read (an upload or
        another writer replaced it, or it was removed): that version would be lost."""
        try:
            now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            now = None
        if safefs.identity(now) != self._identity:
            raise Conflict(
                f"{name} was changed on disk after this source read it (replaced, uploaded"
                " again or removed): it is not overwritten. Release the label with"
                " ?discard=true to drop the unsaved updates, then configure it again"
            )

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

    def scan(self) -> Scan | None:
        return self.parent.scan()

    async def update(self, record: Record) -> None:
        await self.parent.update(record)


def _save_failed(name: str, exc: OSError) -> ServiceError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "the disk is full"
    return InsufficientStorage(
        f"Saving {name} failed: {reason}. The updates are kept: the next update, context"
        " release or label release saves again"
    )
