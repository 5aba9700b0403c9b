"""The shared backend: a PostgreSQL database (``-state postgresql://…``) several hosts use at once.

Why psycopg 3 in the store's thread rather than an async driver: the store already runs every
statement in one thread of its own (service/engine/state/store.py), and repositories hand it
plain functions of a connection that run inside one transaction; a synchronous connection keeps
that contract, and the same code, for both databases.

Writers from every host take one lock (a transaction-scoped advisory lock) before their first
statement, so a write transaction here behaves like SQLite's ``BEGIN IMMEDIATE``: read-then-
write checks (a pipeline still exists, a user name is free, no run is in progress) are never
interleaved with another host's. State writes are few and small; one at a time costs nothing.

A connection the server dropped (PostgreSQL restarted, an administrator ended it) is replaced
by the next call: a read runs again, a write transaction finds it at its first statement, before
any of the caller's work. Only a transaction the connection is lost in the middle of fails.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.rows import RowMaker

from service.engine.state import dialect
from service.engine.state.backend import Connection, ConstraintError, StateError, redact
from service.engine.state.sqlite import BUSY_TIMEOUT_MS

log = logging.getLogger(__name__)

T = TypeVar("T")

# Any 64-bit number the server's writers agree on: "dffml-st" in ASCII.
WRITE_LOCK = 0x6466_666D_6C2D_7374
CONNECT_TIMEOUT_S = 10
# How long a writer waits for another's lock before its call fails, as SQLite's busy timeout:
# a host stuck in a transaction makes the others answer errors, never hang.
LOCK_TIMEOUT_MS = BUSY_TIMEOUT_MS


class _Row(tuple[Any, ...]):
    """A row read by position or by column name, as sqlite3.Row is."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._index[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[_Row]:
    names = [column.name for column in cursor.description or ()]
    index = {name: position for position, name in enumerate(names)}

    def make(values: Sequence[Any]) -> _Row:
        row = _Row(values)
        row._index = index
        return row

    return make


class PostgresConnection:
    """What a transaction function is given: SQL in SQLite's dialect, translated."""

    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[_Row]) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[_Row]:
        cursor = self.raw.cursor()
        try:
            # Always with a parameter tuple: psycopg then reads %% as the escaped % it is.
            cursor.execute(dialect.postgresql(sql), tuple(params))
        except psycopg.errors.IntegrityError as exc:
            raise ConstraintError(str(exc)) from exc
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor[_Row]:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(dialect.postgresql(sql), [tuple(row) for row in rows])
        except psycopg.errors.IntegrityError as exc:
            raise ConstraintError(str(exc)) from exc
        return cursor


class PostgresBackend:
    dialect = "postgresql"
    errors: tuple[type[Exception], ...] = (psycopg.Error,)
    in_memory = False

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: PostgresConnection | None = None

    def describe(self) -> str:
        return redact(self.url)

    def connect(self) -> None:
        try:
            self._conn = self._new()
        except psycopg.Error as exc:
            raise StateError(f"cannot connect to {self.describe()}: {_first_line(exc)}") from None

    def _new(self) -> PostgresConnection:
        raw = psycopg.connect(
            self.url,
            autocommit=True,
            row_factory=_row_factory,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="dffml-service-http",
        )
        try:
            raw.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS:d}")
        except BaseException:
            raw.close()
            raise
        return PostgresConnection(raw)

    def connection(self) -> PostgresConnection:
        """The open connection; one the server dropped is replaced first. While PostgreSQL
        cannot be reached this raises psycopg's OperationalError (the store answers 503) and
        the next call tries again."""
        if self._conn is None:
            raise RuntimeError("the state store is not open")
        if self._conn.raw.broken or self._conn.raw.closed:
            log.warning("state store: the connection to %s was lost; reconnecting", self.describe())
            self._conn.raw.close()
            self._conn = self._new()
        return self._conn

    def transaction(self, fn: Callable[[Connection], T]) -> T:
        conn = self._begin()
        try:
            result = fn(conn)
        except BaseException:
            if not conn.raw.broken:
                conn.raw.execute("ROLLBACK")
            raise
        conn.raw.execute("COMMIT")
        return result

    @staticmethod
    def unavailable(exc: BaseException) -> bool:
        """Unreachable, dropped mid-transaction, or the writers' lock past lock_timeout."""
        return isinstance(exc, psycopg.OperationalError)

    def read(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor[_Row]:
        """One statement outside a transaction, run again on a new connection if the server
        had dropped the old one (a read changes nothing: running it twice is safe)."""
        try:
            return self.connection().execute(sql, params)
        except psycopg.OperationalError:
            if self._conn is None or not self._conn.raw.broken:
                raise
            return self.connection().execute(sql, params)

    def _begin(self) -> PostgresConnection:
        """A connection in a write transaction holding the writers' lock. A connection the
        server dropped since the last call (PostgreSQL restarted) is found here, before any of
        the caller's work, and replaced."""
        for attempt in (1, 2):
            conn = self.connection()
            try:
                # One round trip: without parameters psycopg sends both statements at once.
                conn.raw.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK:d})")
                return conn
            except psycopg.Error:
                if conn.raw.broken and attempt == 1:
                    continue
                if not conn.raw.broken:
                    conn.raw.execute("ROLLBACK")
                raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.raw.close()

    def size(self) -> int:
        """Bytes the database takes on the server (every host's state, not only this one's)."""
        row = self.connection().execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row is not None else 0

    @staticmethod
    def complete(statement: str) -> bool:
        # The migrations are written in the SQL both databases share: SQLite's tokenizer finds
        # where each statement ends.
        return sqlite3.complete_statement(statement)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])
