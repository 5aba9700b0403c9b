"""Durable server state: one embedded SQLite file (``-state FILE``), written off the event loop.

:class:`StateStore` is the only thing here that knows SQL runs in a thread; each component keeps
its own tables through a repository module of its own and registers their schema with
:meth:`StateStore.register_schema`.
"""

from service.engine.state.store import MEMORY, StateError, StateStore

__all__ = ["MEMORY", "StateError", "StateStore"]
