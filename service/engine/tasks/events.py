"""Events of running tasks, fanned out to their SSE clients with a bounded buffer each."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

Event = tuple[str, dict[str, Any]]

# Events buffered per SSE client that reads slower than its task reports: beyond this the
# oldest progress and log events are dropped (the client sees the latest; status events are
# never lost, and the final status always ends the stream).
BUFFER_EVENTS = 256
# A quiet stream gets a keep-alive this often, so proxies do not close it as idle.
KEEPALIVE_SECONDS = 15.0
KEEPALIVE = ""


class Subscriber:
    def __init__(self) -> None:
        self._events: collections.deque[Event] = collections.deque()
        self._wake = asyncio.Event()
        self.closed = False
        self.dropped = 0

    def put(self, event: Event) -> None:
        if self.closed:
            return
        self._events.append(event)
        if len(self._events) > BUFFER_EVENTS:
            self._drop_one()
        self._wake.set()

    def _drop_one(self) -> None:
        for index, (name, _) in enumerate(self._events):
            if name != "status":
                del self._events[index]
                self.dropped += 1
                return
        self._events.popleft()  # only status events buffered: a pathological reader

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def events(self) -> AsyncIterator[Event]:
        """Buffered events in order; ends once closed and drained."""
        while True:
            while self._events:
                yield self._events.popleft()
            if self.closed:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), KEEPALIVE_SECONDS)
            except asyncio.TimeoutError:
                yield (KEEPALIVE, {})


class Hub:
    """Subscribers per task id."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}

    @property
    def count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def subscribe(self, task_id: str) -> Subscriber:
        subscriber = Subscriber()
        self._subscribers.setdefault(task_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, task_id: str, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(task_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[task_id]

    def publish(self, task_id: str, event: Event, *, last: bool = False) -> None:
        for subscriber in self._subscribers.get(task_id, ()):
            subscriber.put(event)
            if last:
                subscriber.close()
        if last:
            self._subscribers.pop(task_id, None)

    def close_all(self) -> None:
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.close()
        self._subscribers.clear()
