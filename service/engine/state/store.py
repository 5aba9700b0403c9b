"""The state store: one database, one thread that talks to it, versioned schemas.

Two backends behind one interface: an embedded SQLite file, the default (the state is small and
relational; an embedded database needs no service to run and gives transactions and crash
safety), and PostgreSQL (``-state postgresql://…``) for several hosts sharing one state
(service/engine/state/postgres.py, docs/scaling.md). Components write their SQL once, in
SQLite's dialect; the few differences are translated in service/engine/state/dialect.py.

Why one thread: an sqlite3 connection belongs to the thread that uses it, SQLite admits one
writer at a time anyway, psycopg's synchronous connection runs one statement at a time too, and
the event loop must never wait on the disk or the network. Every call is queued to that thread
and awaited.

Schemas: each component (``"labels"``, ``"tasks"``, ``"pipelines"``, ``"auth"``) registers its
own ordered list of migrations; ``schema_versions`` records how many of each have been applied,
so components never edit a shared list and a database made by an older release is upgraded in
place on start. A database that has more migrations of a component than this release knows was
written by a newer release and is refused rather than misread. Each migration runs in a write
transaction that first re-reads the version, so hosts starting together apply it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from service.engine.state.backend import (
    Connection,
    Cursor,
    Row,
    StateError,
    StateUnavailable,
    is_url,
)
from service.engine.state.sqlite import MEMORY, SqliteBackend

log = logging.getLogger(__name__)

T = TypeVar("T")

Migration = str | Callable[[Connection], None]
Params = Sequence[Any]

_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)
"""


class _Backend(Protocol):
    dialect: str
    errors: tuple[type[Exception], ...]
    in_memory: bool

    def describe(self) -> str: ...

    def connect(self) -> None: ...

    def connection(self) -> Connection: ...

    def read(self, sql: str, params: Sequence[Any]) -> Cursor: ...

    def transaction(self, fn: Callable[[Connection], T]) -> T: ...

    def close(self) -> None: ...

    def size(self) -> int: ...

    def unavailable(self, exc: BaseException) -> bool: ...

    def complete(self, statement: str) -> bool: ...


def _backend(location: str) -> _Backend:
    if is_url(location):
        # Imported here: psycopg loads only for a server that uses PostgreSQL.
        from service.engine.state.postgres import PostgresBackend

        return PostgresBackend(location)
    return SqliteBackend(location)


class StateStore:
    """The server's database. ``register_schema`` every component, then ``await open()``.

    ``path`` is a SQLite file, ``:memory:``, or a ``postgresql://`` URL."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._backend = _backend(self.path)
        self._schemas: dict[str, list[Migration]] = {}
        self._thread: ThreadPoolExecutor | None = None
        self._connected = False
        self._opened = False
        self._closed = False

    @property
    def in_memory(self) -> bool:
        return self._backend.in_memory

    @property
    def dialect(self) -> str:
        return self._backend.dialect

    def describe(self) -> str:
        """The location for messages (a URL's password hidden)."""
        return self._backend.describe()

    def register_schema(self, component: str, migrations: Sequence[Migration]) -> None:
        """Declare ``component``'s tables as ordered migrations (SQL scripts or functions of a
        connection). Append to the list in later releases; never edit an applied migration."""
        if self._opened:
            raise RuntimeError(
                f"schema {component!r} registered after the state store opened: register"
                " schemas in create_app, before the app starts"
            )
        if component in self._schemas:
            raise ValueError(f"schema {component!r} is registered twice")
        if not migrations:
            raise ValueError(f"schema {component!r} needs at least one migration")
        self._schemas[component] = list(migrations)

    async def open(self) -> None:
        """Open (creating) the database and bring every registered schema up to date."""
        if self._opened:
            raise RuntimeError("state store opened twice")
        self._opened = True
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._open)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the database after every queued call has run (idempotent)."""
        if self._closed or self._thread is None:
            self._closed = True
            return
        self._closed = True
        thread, self._thread = self._thread, None
        try:
            await asyncio.get_running_loop().run_in_executor(thread, self._close)
        finally:
            await asyncio.to_thread(thread.shutdown, wait=True)

    # --- the async API ------------------------------------------------------------------

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in its own transaction; the number of rows it changed."""
        return await self.transaction(lambda conn: conn.execute(sql, params).rowcount)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> int:
        return await self.transaction(lambda conn: conn.executemany(sql, rows).rowcount)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = await self._run(lambda: self._read(sql, params).fetchall())
        return rows

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self._run(lambda: self._read(sql, params).fetchone())
        return row

    async def transaction(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` in the store's thread inside one write transaction (SQLite's ``BEGIN
        IMMEDIATE``; on PostgreSQL, one holding the writers' lock); rolled back if it raises.
        ``fn`` must not block on anything but the database."""
        return await self._run(lambda: self._backend.transaction(fn))

    async def size(self) -> int:
        """Bytes the database takes (0 in memory)."""
        if self.in_memory:
            return 0
        return await self._run(self._backend.size)

    # --- the store's thread -------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._thread is None or self._closed or not self._connected:
            raise RuntimeError("the state store is not open")
        loop = asyncio.get_running_loop()
        # Shielded: a cancelled caller (a client that went away) must not leave a transaction
        # half-observed; the call finishes in the thread either way.
        future = loop.run_in_executor(self._thread, fn)
        try:
            return await asyncio.shield(future)
        except Exception as exc:
            if self._backend.unavailable(exc):
                log.warning("state store %s unavailable: %s", self.describe(), _first_line(exc))
                raise StateUnavailable from exc
            raise

    def _read(self, sql: str, params: Params) -> Cursor:
        return self._backend.read(sql, params)

    def _open(self) -> None:
        try:
            self._backend.connect()
            self._backend.transaction(lambda c: c.execute(_VERSIONS))
            for component, migrations in self._schemas.items():
                self._migrate(component, migrations)
        except StateError:
            self._backend.close()
            raise
        except self._backend.errors as exc:
            self._backend.close()
            raise StateError(
                f"{self.describe()} is not a usable state database: {_first_line(exc)}"
            ) from None
        except BaseException:
            self._backend.close()
            raise
        self._connected = True

    def _close(self) -> None:
        self._connected = False
        self._backend.close()

    def _migrate(self, component: str, migrations: Sequence[Migration]) -> None:
        for version in range(1, len(migrations) + 1):
            migration = migrations[version - 1]

            def apply(c: Connection, migration: Migration = migration, v: int = version) -> bool:
                applied = _version(c, component)
                if applied > len(migrations):
                    raise StateError(
                        f"the state store has version {applied} of the {component!r} schema,"
                        f" this release knows {len(migrations)}: it was written by a newer"
                        " release"
                    )
                if applied >= v:
                    return False
                if isinstance(migration, str):
                    for statement in self._statements(migration):
                        c.execute(statement)
                else:
                    migration(c)
                c.execute(
                    "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                    " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (component, v),
                )
                return True

            if self._backend.transaction(apply):
                log.debug("state store: %s schema at version %d", component, version)

    def _statements(self, script: str) -> list[str]:
        """A script split into complete statements (``executescript`` would commit on its
        own)."""
        out: list[str] = []
        current = ""
        for line in script.splitlines(keepends=True):
            current += line
            if self._backend.complete(current):
                if current.strip():
                    out.append(current)
                current = ""
        if current.strip():
            raise ValueError(f"incomplete SQL statement in a migration: {current.strip()!r}")
        return out


def _version(conn: Connection, component: str) -> int:
    row = conn.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


__all__ = ["MEMORY", "Connection", "Migration", "Params", "Row", "StateError", "StateStore"]
