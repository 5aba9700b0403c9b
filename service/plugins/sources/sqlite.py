"""``sqlite``: records from a table of an SQLite database file (stdlib sqlite3).

One row is one record: the key column gives its key, every other column a feature, a NULL no
feature. Every database call runs on a thread of one pool that all sqlite sources share
(``SQLITE_THREADS``; a label costs no thread of its own), one call at a time per source's
connection, never on the event loop. Pages are read by keyset (``rowid > last``), so a
cursor holds no database cursor open between requests; chunks are encoded on the worker too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import orjson

from service.kernel.errors import BadRequest, NotFound, PathTraversal, Unavailable
from service.plugins.sources.sqlitefile import check_file, descriptors, inode, opened
from service.sdk.base import Source, SourceContext
from service.sdk.config import field
from service.sdk.readers import POSITION_BYTES, Reader
from service.sdk.records import EncodedRecords, Record, RecordChunk

T = TypeVar("T")
# Rows fetched per step when a consumer iterates records() (models, scorers).
FETCH_BATCH = 1024
SQLITE_MAX_INT = 2**63 - 1
# SQLite's three names for a table's rowid. A user column of one of these names hides that
# name's rowid meaning, so paging uses the first name no column has taken, and updates may not
# add a column of any of them (paging would otherwise restart from the beginning forever).
ROWID_ALIASES = ("rowid", "_rowid_", "oid")


@dataclasses.dataclass(frozen=True)
class SQLiteSourceConfig:
    filename: Path = field("SQLite database file; inside the upload dir when a client names it")
    table: str = field("the table holding the records", default="records")
    key: str = field("the column holding each record's key", default="key")
    readwrite: bool = field(
        "accept updates (committed at once; new features become new columns); a missing"
        " file or table is created",
        default=False,
    )
    timeout: float = field(
        "seconds to wait while another connection holds the database locked; then 503",
        default=5.0,
    )

    def __post_init__(self) -> None:
        if self.timeout < 0:
            raise ValueError(f"'timeout' must be at least 0, got {self.timeout}")


# Threads shared by every sqlite source of the process: a thousand labels, four threads.
SQLITE_THREADS = 4
_shared: concurrent.futures.ThreadPoolExecutor | None = None


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _shared
    if _shared is None:
        _shared = concurrent.futures.ThreadPoolExecutor(SQLITE_THREADS, thread_name_prefix="sqlite")
    return _shared


def quote(name: str) -> str:
    """An SQL identifier, quoted, so any table or column name is safe in a statement."""
    return '"' + name.replace('"', '""') + '"'


def _feature(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _stored(value: Any) -> Any:
    """A feature value as SQLite stores it: lists and objects as JSON text."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    return orjson.dumps(value).decode()


class SQLiteSource(Source[SQLiteSourceConfig]):
    CONFIG = SQLiteSourceConfig

    def __init__(self, config: SQLiteSourceConfig) -> None:
        super().__init__(config)
        # One call at a time on this source's connection, whichever pool thread runs it.
        self._serial = asyncio.Lock()
        self._db: sqlite3.Connection | None = None
        self.columns: list[str] = []
        # rowid gives insertion (source) order; WITHOUT ROWID tables are ordered by key.
        self._order = "rowid"
        self._closed = False

    async def _call(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` on the source's worker thread, the only one using the connection."""
        async with self._serial:
            if self._closed:
                raise NotFound("Source not loaded")
            future = asyncio.get_running_loop().run_in_executor(_pool(), call, *args)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                # The call runs on in its thread: the connection stays this caller's until
                # it returns, so no other call can interleave with it.
                await asyncio.wait({future})
                raise

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """``_call`` for an open source: a database that is locked or failing (another
        writer, a full disk) is the server's trouble, not the client's, and may pass."""
        try:
            return await self._call(call, *args)
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"{self.config.filename.name}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            # Found only now that a page is read (a corrupted file passes configure).
            raise BadRequest(f"{self.config.filename.name} cannot be read: {exc}") from None

    async def __aenter__(self) -> SQLiteSource:
        try:
            await self._call(self._open)
        except sqlite3.Error as exc:
            await self._shutdown()
            raise BadRequest(f"{self.config.filename.name}: {exc}") from None
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        await self.run(self._close)
        self._closed = True

    def context(self) -> SQLiteSourceContext:
        return SQLiteSourceContext(self)

    # --- worker thread ---------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "used after close"
        return self._db

    def _open(self) -> None:
        config = self.config
        before = check_file(config.filename)
        open_before = descriptors()
        self._connect()
        # SQLite opens the file at the first statement: make that happen now, then make sure
        # the file it opened is the one checked (no link swapped in between).
        self.db.execute("SELECT 1 FROM sqlite_master").fetchone()
        after = check_file(config.filename)
        if before is not None and (after is None or inode(after) != inode(before)):
            raise BadRequest(f"{config.filename.name} was replaced while it was being opened")
        if after is not None and not opened(open_before, inode(after)):
            raise PathTraversal(
                f"{config.filename.name!r} was reached through a symbolic link while it was"
                " being opened"
            )
        self._check_table()

    def _connect(self) -> None:
        config = self.config
        if config.readwrite:
            self._db = sqlite3.connect(
                config.filename,
                isolation_level=None,
                timeout=config.timeout,
                check_same_thread=False,
            )
        else:
            uri = "file:" + urllib.parse.quote(str(config.filename)) + "?mode=ro"
            self._db = sqlite3.connect(
                uri,
                uri=True,
                isolation_level=None,
                timeout=config.timeout,
                check_same_thread=False,
            )

    def _check_table(self) -> None:
        config = self.config
        table = quote(config.table)
        exists = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (config.table,)
        ).fetchone()
        if not exists:
            if not config.readwrite:
                tables = [
                    r[0]
                    for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                ]
                raise BadRequest(
                    f"{config.filename.name} has no table {config.table!r}"
                    f" (tables: {', '.join(tables) or 'none'})"
                )
            self.db.execute(f"CREATE TABLE {table} ({quote(config.key)} TEXT PRIMARY KEY)")
        self.columns = [row[1] for row in self.db.execute(f"PRAGMA table_info({table})")]
        if config.key not in self.columns:
            raise BadRequest(
                f"table {config.table!r} has no key column {config.key!r}"
                f" (columns: {', '.join(self.columns)})"
            )
        taken = {name.lower() for name in self.columns}
        alias = next((a for a in ROWID_ALIASES if a not in taken), None)
        try:
            if alias is None:
                raise sqlite3.OperationalError("every rowid alias is a column")
            self.db.execute(f"SELECT {alias} FROM {table} LIMIT 0")
            self._order = alias
        except sqlite3.OperationalError:
            # WITHOUT ROWID, or a table whose columns shadow every alias: page by the key.
            self._order = quote(config.key)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _record(self, row: sqlite3.Row | tuple[Any, ...], names: list[str]) -> Record:
        features = {}
        key = ""
        for name, value in zip(names, row, strict=True):
            if name == self.config.key:
                key = str(value)
            if value is not None:
                features[name] = _feature(value)
        return Record(key, features)

    def _select(self, where: str = "", params: tuple[Any, ...] = (), limit: int = -1) -> Any:
        # SQLite integers are 64-bit; a larger chunk size than that means "all of them".
        limit = min(limit, SQLITE_MAX_INT)
        return self.db.execute(
            f"SELECT {self._order}, * FROM {quote(self.config.table)} {where}"
            f" ORDER BY {self._order} LIMIT ?",
            (*params, limit),
        )

    def get(self, key: str) -> Record | None:
        cursor = self._select(f"WHERE {quote(self.config.key)} = ?", (key,), 1)
        row = cursor.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cursor.description][1:]
        return self._record(row[1:], names)

    def page(self, after: Any, size: int) -> tuple[list[Record], list[Any]]:
        """Up to ``size`` records after position ``after`` (None: from the start), and the
        position of each."""
        if after is None:
            cursor = self._select(limit=size)
        else:
            cursor = self._select(f"WHERE {self._order} > ?", (after,), size)
        rows = cursor.fetchall()
        names = [d[0] for d in cursor.description][1:]
        return [self._record(row[1:], names) for row in rows], [row[0] for row in rows]

    def encoded_page(self, after: Any, size: int) -> tuple[EncodedRecords, Any, bool]:
        # One more row than asked for says whether the table goes on.
        records, positions = self.page(after, size + 1)
        more = len(records) > size
        del records[size:]
        last = positions[len(records) - 1] if records else after
        rows = b"".join(EncodedRecords.encode_row(record) for record in records)
        return EncodedRecords(rows, len(records)), last, more

    def put(self, record: Record) -> None:
        config = self.config
        table = quote(config.table)
        values = {name: _stored(value) for name, value in record.features.items()}
        values[config.key] = record.key
        existing = {name.lower() for name in self.columns}
        reserved = [
            name
            for name in values
            if name.lower() in ROWID_ALIASES and name.lower() not in existing
        ]
        if reserved:
            raise BadRequest(
                f"feature name {reserved[0]!r} is reserved by the sqlite source"
                f" ({', '.join(ROWID_ALIASES)} name the table's row id)"
            )
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for name in values:
                if name not in self.columns:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {quote(name)}")
                    self.columns.append(name)
            # An update replaces the record: features it does not name become NULL.
            row = {name: values.get(name) for name in self.columns}
            assignments = ", ".join(f"{quote(name)} = ?" for name in row)
            updated = self.db.execute(
                f"UPDATE {table} SET {assignments} WHERE {quote(config.key)} = ?",
                (*row.values(), record.key),
            )
            if updated.rowcount == 0:
                names = ", ".join(quote(name) for name in row)
                marks = ", ".join("?" for _ in row)
                self.db.execute(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values())
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise


class SQLiteReader:
    def __init__(self, source: SQLiteSource) -> None:
        self._source = source
        self._after: Any = None

    async def read(self, size: int) -> tuple[EncodedRecords, bool]:
        chunk, self._after, more = await self._source.run(
            self._source.encoded_page, self._after, size
        )
        return chunk, more

    def held_bytes(self) -> int:
        return POSITION_BYTES

    async def aclose(self) -> None:
        return None


class SQLiteSourceContext(SourceContext):
    def __init__(self, parent: SQLiteSource) -> None:
        self.parent = parent

    async def record(self, key: str) -> Record:
        return await self.parent.run(self.parent.get, key) or Record(key)

    async def records(self) -> AsyncIterator[Record]:
        after: Any = None
        while True:
            batch, positions = await self.parent.run(self.parent.page, after, FETCH_BATCH)
            for record in batch:
                yield record
            if len(batch) < FETCH_BATCH:
                return
            after = positions[-1]

    def reader(self) -> Reader[RecordChunk]:
        return SQLiteReader(self.parent)

    async def update(self, record: Record) -> None:
        if not self.parent.config.readwrite:
            raise BadRequest(
                "sqlite source is read-only: configure it with readwrite to update records"
            )
        try:
            await self.parent.run(self.parent.put, record)
        except sqlite3.Error as exc:
            raise BadRequest(f"update of {record.key!r} failed: {exc}") from None
