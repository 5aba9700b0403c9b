"""Which servers use a shared state store now, so one only fails work whose server is gone.

A server marks the tasks and runs it was doing when it stopped as interrupted. With one server
on a SQLite file, everything unfinished at start is its own. With several hosts on one
PostgreSQL database, the unfinished work of a host that is still running must be left alone:
each server records the tasks and runs it saves with its id and beats (``state_hosts.seen``)
every BEAT_EVERY_S. A host unseen for GONE_AFTER_S, or that left at a clean stop, is gone; the
other hosts then mark its unfinished work interrupted (at their start, and every beat after),
as it would have itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

from service.engine.state.backend import StateUnavailable
from service.engine.state.store import StateStore

log = logging.getLogger(__name__)

COMPONENT = "hosts"
SCHEMA = ["CREATE TABLE state_hosts (id TEXT PRIMARY KEY, seen REAL NOT NULL);"]
BEAT_EVERY_S = 5.0
# Several beats: a host busy for a moment (a long transaction of another host) is not gone.
GONE_AFTER_S = 30.0
# Rows of hosts gone this long are deleted: their work was swept long before.
FORGET_AFTER_S = 3600.0

# Marks a gone host's unfinished work interrupted; how many it marked.
Sweeper = Callable[[], Awaitable[int]]


class Hosts:
    def __init__(self, store: StateStore) -> None:
        self._store = store
        # New at each start: a restarted server's earlier work is swept as a gone host's.
        self.id = f"{socket.gethostname()} pid {os.getpid()} {secrets.token_hex(3)}"
        self.shared = store.dialect == "postgresql"
        self.sweepers: list[Sweeper] = []

    @staticmethod
    def register(store: StateStore) -> None:
        store.register_schema(COMPONENT, SCHEMA)

    async def alive(self) -> list[str] | None:
        """The hosts whose unfinished work is left alone (this one first); None when the store
        is this server's alone, and whatever is unfinished was cut off by its last stop."""
        if not self.shared:
            return None
        rows = await self._store.fetchall(
            "SELECT id FROM state_hosts WHERE seen >= ?", (time.time() - GONE_AFTER_S,)
        )
        return [self.id, *(row[0] for row in rows if row[0] != self.id)]

    async def beat(self) -> None:
        now = time.time()
        await self._store.execute(
            "INSERT INTO state_hosts (id, seen) VALUES (?, ?)"
            " ON CONFLICT (id) DO UPDATE SET seen = excluded.seen",
            (self.id, now),
        )
        await self._store.execute("DELETE FROM state_hosts WHERE seen < ?", (now - FORGET_AFTER_S,))

    async def leave(self) -> None:
        """At a clean stop (after this host marked its own cut-off work): gone at once."""
        await self._store.execute("DELETE FROM state_hosts WHERE id = ?", (self.id,))

    async def keep_beating(self) -> None:
        """Beat, and sweep gone hosts' work, until cancelled."""
        while True:
            await asyncio.sleep(BEAT_EVERY_S)
            try:
                await self.beat()
                for sweep in self.sweepers:
                    swept = await sweep()
                    if swept:
                        log.warning("%d task(s) or run(s) of a server gone: marked failed", swept)
            except StateUnavailable:
                # The database is unreachable for now (the store logged it): beat again later.
                continue
            except Exception:
                log.exception("cannot beat in the shared state store")


def not_alive(alive: list[str] | None) -> tuple[str, tuple[str, ...]]:
    """An SQL condition (and its parameters) on a ``host`` column: the row's host is gone.
    ``alive`` None: every row (the store is this server's alone)."""
    if alive is None:
        return "1 = 1", ()
    marks = ", ".join("?" for _ in alive)
    return f"(host IS NULL OR host NOT IN ({marks}))", tuple(alive)
