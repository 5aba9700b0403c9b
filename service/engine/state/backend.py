"""What every state backend gives the store, and what a transaction function may use.

A repository's transaction function is handed a :class:`Connection`: ``execute`` and
``executemany`` of SQL in SQLite's dialect with ``?`` placeholders (the PostgreSQL backend
translates it, service/engine/state/dialect.py), returning a :class:`Cursor` whose rows read by
position or by column name. A unique or foreign-key violation is :class:`ConstraintError`
whichever database raised it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from service.kernel.errors import Unavailable

# -state values the PostgreSQL backend serves (libpq's URI schemes).
SCHEMES = ("postgresql://", "postgres://")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*")


def is_url(state: str) -> bool:
    return state.startswith(SCHEMES)


def redact(url: str) -> str:
    """``url`` with its password hidden: for messages and logs."""
    return _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", url))


class StateError(Exception):
    """The state store cannot be used (unreadable, not a database, unreachable, newer)."""


class StateUnavailable(Unavailable):
    """The database cannot answer now (unreachable, another writer holds the lock past the
    busy timeout): 503, the client may retry."""

    def __init__(self) -> None:
        super().__init__("State store unavailable: try again later")


class ConstraintError(Exception):
    """A write broke a unique, primary-key or foreign-key constraint."""


class Row(Protocol):
    """A result row: ``row[0]`` or ``row["column"]``; unpacks like a tuple."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The connection a transaction function or a migration function is given."""

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``: for the rare migration that must differ."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Cursor: ...
