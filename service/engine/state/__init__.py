"""Durable server state: an embedded SQLite file (``-state FILE``) or a PostgreSQL database
several hosts share (``-state postgresql://…``), written off the event loop.

:class:`StateStore` is the only thing here that knows SQL runs in a thread; each component keeps
its own tables through a repository module of its own and registers their schema with
:meth:`StateStore.register_schema`. Transaction functions are given a :class:`Connection`.
"""

from service.engine.state.backend import (
    Connection,
    ConstraintError,
    Row,
    StateError,
    StateUnavailable,
)
from service.engine.state.store import MEMORY, StateStore

__all__ = [
    "MEMORY",
    "Connection",
    "ConstraintError",
    "Row",
    "StateError",
    "StateStore",
    "StateUnavailable",
]
