"""A record spool: records encoded once into an unlinked temporary file, found by key.

File-backed sources (csv, json) parse their file once, in a worker thread, into a spool. After
that, serving a chunk of records is one positional read of bytes that are already JSON, and a
record is found through a compact index, so no record is held in memory whatever the file's
size: per record the spool keeps 12 bytes of offset and length and, for keys other than row
numbers, 4 bytes of hash plus 8 to 16 of hash table; the records themselves live in the file
(and the page cache).

The file is append-only and never compacted; what updates append is bounded for all spools
together by ``-spool-max-bytes`` (``SpoolBudget``). An update writes the record's new encoding
at the end and points its row there, so its place in source order does not change and
readers of earlier bytes are never disturbed. Methods ending in ``_sync`` do file I/O and run
in a worker thread (small reads also on the event loop); one lock makes each see the row
tables in a consistent state and keeps them off the descriptor once the spool is closed.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import tempfile
import threading
from array import array
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from service.kernel.errors import InsufficientStorage, NotFound
from service.sdk.records import EncodedRecords, Record, key_end

if TYPE_CHECKING:
    import numpy as np

# -spool-max-bytes' default: what updates may add to all spools of the process together.
DEFAULT_MAX_UPDATE_BYTES = 1024 * 1024 * 1024


class SpoolBudget:
    """The bytes updates may append to the spools of this process, all sources together.

    A spool is append-only (an update writes the record's new version at the end), so without
    a bound a client repeating updates fills the disk. Loading a file is not counted: that is
    bounded by the file itself. A spool's bytes come back when its source closes.
    """

    def __init__(self, limit: int = DEFAULT_MAX_UPDATE_BYTES) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        with self._lock:
            if self.used + size > self.limit:
                raise InsufficientStorage(
                    f"Updates of the open sources already hold {self.used} bytes of spool and"
                    f" at most {self.limit} are allowed (-spool-max-bytes): release a source"
                    " label (DELETE /configure/source/{label}, a readwrite one is saved"
                    " first) to free its spool"
                )
            self.used += size

    def give(self, size: int) -> None:
        with self._lock:
            self.used -= size


# One per process: create_app sets its limit from -spool-max-bytes.
BUDGET = SpoolBudget()


class KeyIndex:
    """Key → row, as an open-addressing hash table over arrays of machine integers.

    A Python dict of a million string keys costs over 100 MiB; this costs 12 to 20 bytes a
    key. Hashes are cut to 32 bits and may collide, so callers confirm a candidate row by its
    stored key.
    """

    def __init__(self) -> None:
        self._hashes = array("I")  # row → low 32 bits of the hash of its key
        self._slots = array("i", bytes(4 * 16))  # row + 1, 0 when empty; at most half full
        self._mask = 15

    def candidates(self, key: str) -> Iterator[int]:
        wanted = hash(key) & 0xFFFFFFFF
        slot = wanted & self._mask
        while entry := self._slots[slot]:
            if self._hashes[entry - 1] == wanted:
                yield entry - 1
            slot = (slot + 1) & self._mask

    def add(self, key: str, row: int) -> None:
        """Index ``key`` at ``row``; rows are added in order 0, 1, 2, …"""
        self._hashes.append(hash(key) & 0xFFFFFFFF)
        if 2 * len(self._hashes) > len(self._slots):
            self._rebuild(2 * len(self._slots))
        else:
            self._place(row)

    def _place(self, row: int) -> None:
        slot = self._hashes[row] & self._mask
        while self._slots[slot]:
            slot = (slot + 1) & self._mask
        self._slots[slot] = row + 1

    def _rebuild(self, size: int) -> None:
        self._slots = array("i", bytes(4 * size))
        self._mask = size - 1
        for row in range(len(self._hashes)):
            self._place(row)


class RecordSpool:
    """Rows of ``"KEY":{record}\\n`` in source order, with key lookup and in-place updates."""

    def __init__(self, *, keys_are_row_numbers: bool) -> None:
        # Unlinked at once, so it vanishes even if the server is killed; closed by close().
        self._file = tempfile.TemporaryFile(prefix="dffml-service-http-spool-")  # noqa: SIM115
        self._fd = self._file.fileno()
        self._size = 0
        self._starts = array("q")
        self._lengths = array("I")
        # Rows whose bytes do not follow on from the previous row's, sorted: a chunk is read in
        # one piece between two of them.
        self._breaks: list[int] = []
        # Keys of rows loaded with no key column are their row numbers: no index needed for
        # those. Keys added later (updates with new keys) always go through the index.
        self._numbered = 0
        self._keys_are_row_numbers = keys_are_row_numbers
        self._index = KeyIndex()
        self._lock = threading.Lock()
        self._closed = False
        # What updates appended, taken from BUDGET and given back at close.
        self._taken = 0

    def __len__(self) -> int:
        return len(self._starts)

    def close(self) -> None:
        # Under the lock: no read or write is using the descriptor, and none can start after,
        # so the number can never be reused under a reader's feet.
        with self._lock:
            if not self._closed:
                BUDGET.give(self._taken)
                self._taken = 0
            self._closed = True
            self._file.close()

    @contextlib.contextmanager
    def _open(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise NotFound("Source not loaded")
            yield

    # --- writing ---------------------------------------------------------------------------

    def extend_sync(self, rows: list[tuple[str, bytes]]) -> None:
        """Add encoded rows in order; a key seen before replaces that row's record in place."""
        with self._open():
            start = self._size
            self._write(b"".join(row for _, row in rows))
            for key, row in rows:
                end = start + len(row)
                self._place_row(key, start, end)
                start = end

    def extend_block_sync(self, data: Any, lengths: np.ndarray, keys: Sequence[str] | None) -> None:
        """Add rows already joined into one buffer, ``lengths`` bytes each, in order. ``keys``
        None: the rows are keyed by their numbers, continuing the rows before; when those are
        all numbered too, the rows are added without touching the index."""
        with self._open():
            start = self._size
            self._write(data)
            count = len(self._starts)
            if keys is None and self._keys_are_row_numbers and self._numbered == count:
                import numpy as np

                if count and self._end(count - 1) != start:
                    self._mark_break(count)
                ends = np.cumsum(lengths, dtype=np.int64)
                self._starts.frombytes((ends - lengths + start).tobytes())
                self._lengths.frombytes(lengths.astype(np.uint32).tobytes())
                self._numbered += len(lengths)
                return
            for at, length in enumerate(lengths.tolist()):
                key = str(count + at) if keys is None else keys[at]
                self._place_row(key, start, start + length)
                start += length

    def reset_sync(self) -> None:
        """Drop every row (a parse that must start again another way)."""
        with self._open():
            os.ftruncate(self._fd, 0)
            self._size = 0
            self._starts = array("q")
            self._lengths = array("I")
            self._breaks = []
            self._numbered = 0
            self._index = KeyIndex()

    def put_sync(self, key: str, row: bytes) -> None:
        """An update: counted against -spool-max-bytes (507 when it would go beyond)."""
        with self._open():
            BUDGET.take(len(row))
            start = self._size
            try:
                self._write(row)
            except BaseException:
                BUDGET.give(len(row))
                self._size = start  # a torn row is overwritten by the next one
                raise
            self._taken += len(row)
            self._place_row(key, start, self._size)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self._size)
            self._size += written
            view = view[written:]

    def _place_row(self, key: str, start: int, end: int) -> None:
        """Make the bytes at start..end the row of ``key``: a new row, or its new version."""
        existing = self._find(key)
        if existing is not None:
            self._starts[existing] = start
            self._lengths[existing] = end - start
            self._mark_break(existing)
            self._mark_break(existing + 1)
            return
        count = len(self._starts)
        if count and self._end(count - 1) != start:
            self._mark_break(count)
        self._starts.append(start)
        self._lengths.append(end - start)
        # Numbering holds only for an unbroken prefix of rows keyed 0, 1, 2, …; every row
        # after it is in the index, as index row (row - _numbered).
        if self._keys_are_row_numbers and self._numbered == count and key == str(count):
            self._numbered += 1
        else:
            self._index.add(key, count - self._numbered)

    def _end(self, row: int) -> int:
        return self._starts[row] + self._lengths[row]

    def _mark_break(self, row: int) -> None:
        where = bisect.bisect_left(self._breaks, row)
        if where == len(self._breaks) or self._breaks[where] != row:
            self._breaks.insert(where, row)

    # --- reading ---------------------------------------------------------------------------

    def _find(self, key: str) -> int | None:
        if key.isascii() and key.isdigit() and (key == "0" or key[0] != "0"):
            row = int(key)
            if row < self._numbered:
                return row
        for candidate in self._index.candidates(key):
            row = candidate + self._numbered
            if self._key_of(row) == key:
                return row
        return None

    def _pread(self, start: int, end: int) -> bytes:
        # One pread returns at most about 2 GiB on Linux: a huge chunk takes several.
        data = os.pread(self._fd, end - start, start)
        if len(data) == end - start:
            return data
        parts = [data]
        start += len(data)
        while start < end:
            part = os.pread(self._fd, end - start, start)
            if not part:
                raise OSError(f"spool ends at byte {start}, before {end}")
            parts.append(part)
            start += len(part)
        return b"".join(parts)

    def _key_of(self, row: int) -> str:
        data = self._pread(self._starts[row], self._end(row))
        key: str = orjson.loads(data[: key_end(data)])
        return key

    def get_sync(self, key: str) -> Record | None:
        with self._open():
            row = self._find(key)
            if row is None:
                return None
            data = self._pread(self._starts[row], self._end(row))
        return Record.from_export(orjson.loads(data[key_end(data) + 1 :]))

    def span_bytes(self, first: int, stop: int) -> int:
        """How many bytes reading rows ``first`` up to ``stop`` takes."""
        with self._open():
            stop = min(stop, len(self._starts))
            return sum(end - start for start, end in self._spans(first, stop))

    def read_sync(self, first: int, stop: int) -> EncodedRecords:
        """Rows ``first`` up to (not including) ``stop`` as encoded records."""
        with self._open():
            stop = min(stop, len(self._starts))
            rows = b"".join(self._pread(start, end) for start, end in self._spans(first, stop))
        return EncodedRecords(rows, max(stop - first, 0))

    def _spans(self, first: int, stop: int) -> Iterator[tuple[int, int]]:
        """Byte ranges covering rows first..stop-1, one per run of contiguous rows."""
        run = first
        while run < stop:
            where = bisect.bisect_right(self._breaks, run)
            end = min(self._breaks[where], stop) if where < len(self._breaks) else stop
            yield self._starts[run], self._end(end - 1)
            run = end

    def decode_sync(self, first: int, stop: int) -> list[Record]:
        return self.read_sync(first, stop).decode()


def encode_row(key: str, features: dict[str, Any]) -> bytes:
    """The spool row of a record that has only features (what a file source reads)."""
    quoted = orjson.dumps(key)
    return b"".join(
        (quoted, b':{"key":', quoted, b',"features":', orjson.dumps(features), b',"extra":{}}\n')
    )
