"""The state store: one SQLite database, one thread that talks to it, versioned schemas.

Why SQLite: the server is one process on one machine, and its state (labels, tasks, pipelines,
users) is small and relational; an embedded database needs no service to run and gives
transactions and crash safety for free. Why one thread: an sqlite3 connection belongs to the
thread that uses it, SQLite admits one writer at a time anyway, and the event loop must never
wait on a disk sync. Every call is queued to that thread and awaited.

Durability: WAL journal with ``synchronous=NORMAL``. A killed server (SIGKILL, a crash) loses no
committed transaction and always leaves a database that opens; only a power failure may lose the
last transactions, never consistency. Every write runs in a transaction.

Schemas: each component (``"labels"``, ``"tasks"``, ``"pipelines"``, ``"auth"``) registers its
own ordered list of migrations; ``schema_versions`` records how many of each have been applied,
so components never edit a shared list and a database made by an older release is upgraded in
place on start. A database that has more migrations of a component than this release knows was
written by a newer release and is refused rather than misread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

MEMORY = ":memory:"
# How long a statement waits for another process's write lock (two servers on one file).
BUSY_TIMEOUT_MS = 5000

Migration = str | Callable[[sqlite3.Connection], None]
Params = Sequence[Any] | dict[str, Any]

_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)
"""


class StateError(Exception):
    """The state file cannot be used (unreadable, not a database, from a newer release)."""


class StateStore:
    """The server's database. ``register_schema`` every component, then ``await open()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._schemas: dict[str, list[Migration]] = {}
        self._thread: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._opened = False
        self._closed = False

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

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

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return await self._run(lambda conn: conn.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = await self._run(lambda conn: conn.execute(sql, params).fetchone())
        return row

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` in the store's thread inside ``BEGIN IMMEDIATE … COMMIT``; rolled back
        if it raises. ``fn`` must not block on anything but the database."""
        return await self._run(lambda conn: _in_transaction(conn, fn))

    async def size(self) -> int:
        """Bytes on disk: the database plus its WAL (0 in memory)."""
        if self.in_memory:
            return 0
        return await asyncio.to_thread(_disk_size, Path(self.path))

    # --- the store's thread -------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._thread is None or self._closed:
            raise RuntimeError("the state store is not open")
        loop = asyncio.get_running_loop()
        # Shielded: a cancelled caller (a client that went away) must not leave a transaction
        # half-observed; the call finishes in the thread either way.
        future = loop.run_in_executor(self._thread, self._call, fn)
        return await asyncio.shield(future)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RuntimeError("the state store is not open")
        return fn(self._conn)

    def _open(self) -> None:
        if not self.in_memory:
            parent = Path(self.path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(f"cannot create {parent}: {exc.strerror or exc}") from None
        try:
            # isolation_level=None: no implicit transactions; _in_transaction opens them.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open {self.path}: {exc}") from None
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not self.in_memory:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StateError(f"{self.path}: cannot use a write-ahead log ({mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            _in_transaction(conn, lambda c: c.execute(_VERSIONS))
            for component, migrations in self._schemas.items():
                _migrate(conn, component, migrations)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StateError(f"{self.path} is not a usable state database: {exc}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if not self.in_memory:
                    # Fold the WAL back into the database so the file is whole on its own.
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                log.warning("state store: checkpoint at close failed", exc_info=True)
            conn.close()


def _in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[Migration]) -> None:
    row = conn.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    applied = 0 if row is None else int(row[0])
    if applied > len(migrations):
        raise StateError(
            f"the state file has version {applied} of the {component!r} schema, this release"
            f" knows {len(migrations)}: it was written by a newer release"
        )
    for version in range(applied + 1, len(migrations) + 1):
        migration = migrations[version - 1]

        def apply(
            c: sqlite3.Connection, migration: Migration = migration, v: int = version
        ) -> None:
            if isinstance(migration, str):
                for statement in _statements(migration):
                    c.execute(statement)
            else:
                migration(c)
            c.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, v),
            )

        _in_transaction(conn, apply)
        log.debug("state store: %s schema at version %d", component, version)


def _statements(script: str) -> list[str]:
    """A script split into complete statements (``executescript`` would commit on its own)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current)
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {current.strip()!r}")
    return out


def _disk_size(path: Path) -> int:
    total = 0
    for candidate in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += candidate.stat().st_size
    return total
