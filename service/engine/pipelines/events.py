"""Who follows which run: bounded queues of (event, data) for ``GET /runs/{id}/events``.

A follower that reads slower than the run writes is not allowed to make the server buffer
without end: past ``QUEUE_EVENTS`` unread events its stream is ended (it can reconnect and gets
the run as it is then).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from service.kernel.errors import Unavailable

QUEUE_EVENTS = 1000
MAX_FOLLOWERS = 1000

Event = tuple[str, Any]


class Follower:
    def __init__(self) -> None:
        self._events: collections.deque[Event] = collections.deque()
        self._ready = asyncio.Event()
        self.lagged = False

    def put(self, event: Event) -> None:
        if self.lagged:
            return
        if len(self._events) >= QUEUE_EVENTS:
            self.lagged = True
        else:
            self._events.append(event)
        self._ready.set()

    async def get(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds without one (or when lagged)."""
        if not self._events and not self.lagged:
            self._ready.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        if self._events:
            return self._events.popleft()
        return None


class Followers:
    def __init__(self) -> None:
        self._by_run: dict[str, set[Follower]] = {}
        self._count = 0

    @contextlib.asynccontextmanager
    async def follow(self, run_id: str) -> AsyncIterator[Follower]:
        if self._count >= MAX_FOLLOWERS:
            raise Unavailable(f"{MAX_FOLLOWERS} event streams are open already; try again later")
        follower = Follower()
        self._by_run.setdefault(run_id, set()).add(follower)
        self._count += 1
        try:
            yield follower
        finally:
            self._count -= 1
            followers = self._by_run.get(run_id, set())
            followers.discard(follower)
            if not followers:
                self._by_run.pop(run_id, None)

    def emit(self, run_id: str, event: str, data: Any) -> None:
        for follower in self._by_run.get(run_id, ()):
            follower.put((event, data))
