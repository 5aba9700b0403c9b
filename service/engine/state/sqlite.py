"""The embedded backend: one SQLite file (or ``:memory:``), the default state store.

Durability: WAL journal with ``synchronous=NORMAL``. A killed server (SIGKILL, a crash) loses no
committed transaction and always leaves a database that opens; only a power failure may lose the
last transactions, never consistency. Every write runs in ``BEGIN IMMEDIATE … COMMIT``, which
takes SQLite's one write lock at once, so two writers never interleave.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from service.engine.state.backend import Connection, ConstraintError, Cursor, StateError

log = logging.getLogger(__name__)

T = TypeVar("T")

MEMORY = ":memory:"
# How long a statement waits for another process's write lock (two servers on one file).
BUSY_TIMEOUT_MS = 5000


class SqliteConnection:
    """What a transaction function is given: sqlite3's connection, its errors made neutral."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.raw.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise ConstraintError(str(exc)) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Cursor:
        try:
            return self.raw.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise ConstraintError(str(exc)) from exc


class SqliteBackend:
    dialect = "sqlite"
    errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)

    def __init__(self, path: str) -> None:
        self.path = path
        self.in_memory = path == MEMORY
        self._conn: SqliteConnection | None = None

    def describe(self) -> str:
        return self.path

    def connect(self) -> None:
        if not self.in_memory:
            parent = Path(self.path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(f"cannot create {parent}: {exc.strerror or exc}") from None
        try:
            # isolation_level=None: no implicit transactions; transaction() opens them.
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
        except BaseException:
            conn.close()
            raise
        self._conn = SqliteConnection(conn)

    def connection(self) -> SqliteConnection:
        if self._conn is None:
            raise RuntimeError("the state store is not open")
        return self._conn

    def transaction(self, fn: Callable[[Connection], T]) -> T:
        conn = self.connection()
        conn.raw.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.raw.execute("ROLLBACK")
            raise
        conn.raw.execute("COMMIT")
        return result

    @staticmethod
    def unavailable(exc: BaseException) -> bool:
        """Another process held the write lock past the busy timeout."""
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def read(self, sql: str, params: Sequence[Any]) -> Cursor:
        return self.connection().execute(sql, params)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not self.in_memory:
                # Fold the WAL back into the database so the file is whole on its own.
                conn.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            log.warning("state store: checkpoint at close failed", exc_info=True)
        conn.raw.close()

    def size(self) -> int:
        """Bytes on disk: the database plus its WAL (0 in memory)."""
        if self.in_memory:
            return 0
        total = 0
        path = Path(self.path)
        for candidate in (path, path.with_name(path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                total += candidate.stat().st_size
        return total

    @staticmethod
    def complete(statement: str) -> bool:
        return sqlite3.complete_statement(statement)
