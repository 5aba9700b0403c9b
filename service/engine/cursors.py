"""Iterkey cursors: a stream handed to a client one chunk at a time.

A cursor wraps a *reader* (``read(size) -> (chunk, more)`` and ``aclose()``; any async iterator
becomes one through :class:`IteratorReader`, which reads one item ahead so the chunk that
reaches the end already says so) and belongs to an *owner* such as ``("source", ctx_label)``
or ``("model", ctx_label)``. Clients only ever hold the opaque, unguessable iterkey; an iterkey
presented for another owner is as unknown as a made-up one.

Cursors are bounded, unlike the original service's: an idle cursor expires after ``ttl``
seconds, at most ``max_cursors`` live at once and together they hold at most ``max_bytes`` (as
their readers count it; the least recently used are evicted until both hold), and the
reader of a cursor is closed whenever the cursor goes: at the end of the stream, on release,
expiry or eviction, when its owner closes, and at shutdown.

The owner is also keyed by the caller's namespace (service/kernel/scope.py): another user's
iterkey is as unknown as a made-up one, even for a context of the same label.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from service.kernel import scope
from service.kernel.errors import NotFound
from service.sdk.readers import Reader, held_bytes

log = logging.getLogger(__name__)

Owner = tuple[str, str]
# (namespace, kind, label): what a cursor really belongs to.
_Owner = tuple[str | None, str, str]
T = TypeVar("T")
C = TypeVar("C")

NOT_FOUND = "iterkey not found"


class _Cursor:
    __slots__ = ("busy", "cost", "expires", "lock", "owner", "reader")

    def __init__(self, owner: _Owner, reader: Reader[Any], expires: float) -> None:
        self.owner = owner
        self.reader = reader
        self.expires = expires
        self.busy = False
        self.lock = asyncio.Lock()
        self.cost = held_bytes(reader)


class CursorStore:
    """Every live cursor of one app, in least-recently-used order."""

    def __init__(
        self,
        *,
        ttl: float,
        max_cursors: int,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or max_cursors < 1 or max_bytes < 1:
            raise ValueError("iterkey ttl must be > 0 and the maxima >= 1")
        self.ttl = ttl
        self.max_cursors = max_cursors
        self.max_bytes = max_bytes
        self.clock = clock
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._bytes = 0
        # A user's share (their namespace's cursors): half the cursors, so however many one
        # user starts, the other half is never pushed out by them; their own go first.
        self.user_share = max(1, max_cursors // 2)
        self._by_namespace: Counter[str] = Counter()

    @property
    def held_bytes(self) -> int:
        """What every live cursor holds together, as their readers count it."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._cursors)

    async def start(self, owner: Owner, reader: Reader[C], size: int) -> tuple[C, str | None]:
        """The first chunk of ``reader`` and the iterkey for the rest (None when it ended)."""
        await self.expire()
        try:
            chunk, more = await reader.read(size)
        except BaseException:
            await _close(reader)
            raise
        if not more:
            await _close(reader)
            return chunk, None
        iterkey = secrets.token_urlsafe(32)
        cursor = _Cursor(_scoped(owner), reader, self.clock() + self.ttl)
        self._cursors[iterkey] = cursor
        self._bytes += cursor.cost
        namespace = cursor.owner[0]
        if namespace is not None:
            self._by_namespace[namespace] += 1
            if self._by_namespace[namespace] > self.user_share:
                await self._evict_own(namespace, keep=iterkey)
        await self._evict(keep=iterkey)
        return chunk, iterkey

    async def _evict_own(self, namespace: str, keep: str) -> None:
        """A user over their share: their own least recently used cursors go, not others'."""
        excess = self._by_namespace[namespace] - self.user_share
        victims: list[str] = []
        for key, cursor in self._cursors.items():
            if excess <= 0:
                break
            if cursor.owner[0] == namespace and not cursor.busy and key != keep:
                victims.append(key)
                excess -= 1
        await self._drop(victims)

    async def resume(self, owner: Owner, iterkey: str, size: int) -> tuple[Any, str | None]:
        """The next chunk of the cursor ``iterkey`` of ``owner``; 404 if there is none."""
        await self.expire()
        cursor = self._get(owner, iterkey)
        async with cursor.lock:
            # Released, expired or evicted while this request waited for the lock.
            if self._cursors.get(iterkey) is not cursor:
                raise NotFound(NOT_FOUND)
            self._cursors.move_to_end(iterkey)
            cursor.busy = True
            try:
                chunk, more = await cursor.reader.read(size)
            except BaseException:
                self._pop(iterkey)
                await _close(cursor.reader)
                raise
            finally:
                cursor.busy = False
            if more:
                cursor.expires = self.clock() + self.ttl
                if self._cursors.get(iterkey) is cursor:  # not dropped while it read
                    cost = held_bytes(cursor.reader)
                    self._bytes += cost - cursor.cost
                    cursor.cost = cost
                return chunk, iterkey
            self._pop(iterkey)
        await _close(cursor.reader)
        return chunk, None

    async def release(self, owner: Owner, iterkey: str) -> None:
        """Close the cursor ``iterkey`` of ``owner`` before its end; 404 if there is none."""
        await self.expire()
        cursor = self._get(owner, iterkey)
        self._pop(iterkey)
        await self._close_cursor(cursor)

    async def release_owner(self, owner: Owner) -> None:
        """Close every cursor of ``owner`` (its context is closing)."""
        scoped = _scoped(owner)
        await self._drop([key for key, cursor in self._cursors.items() if cursor.owner == scoped])

    async def expire(self) -> None:
        """Close every cursor idle for longer than the ttl."""
        now = self.clock()
        expired = []
        for key, cursor in self._cursors.items():
            if cursor.busy:
                continue
            if cursor.expires > now:
                break  # least recently used first: the rest were used later
            expired.append(key)
        await self._drop(expired)

    async def aclose(self) -> None:
        """Close every cursor (shutdown)."""
        while self._cursors:
            _, cursor = self._cursors.popitem(last=False)
            self._bytes -= cursor.cost
            self._forget(cursor)
            await self._close_cursor(cursor)

    async def sweep(self, interval: float) -> None:
        """Expire idle cursors every ``interval`` seconds, so an idle server lets go of them."""
        while True:
            await asyncio.sleep(interval)
            await self.expire()

    def sweep_interval(self) -> float:
        return min(max(self.ttl / 4, 1.0), 60.0)

    def _get(self, owner: Owner, iterkey: str) -> _Cursor:
        cursor = self._cursors.get(iterkey)
        if cursor is None or cursor.owner != _scoped(owner):
            raise NotFound(NOT_FOUND)
        return cursor

    async def _evict(self, keep: str) -> None:
        excess = len(self._cursors) - self.max_cursors
        over = self._bytes - self.max_bytes
        if excess <= 0 and over <= 0:
            return
        # Least recently used first; a cursor serving a request right now is skipped, and so
        # is the one just started. Stop once both bounds hold again: this runs on every new
        # cursor once a bound is reached.
        victims: list[str] = []
        for key, cursor in self._cursors.items():
            if excess <= 0 and over <= 0:
                break
            if not cursor.busy and key != keep:
                victims.append(key)
                excess -= 1
                over -= cursor.cost
        await self._drop(victims)

    async def _drop(self, keys: list[str]) -> None:
        # Out of the table at once, so no other request can find them while they close.
        cursors = [cursor for key in keys if (cursor := self._pop(key)) is not None]
        for cursor in cursors:
            await self._close_cursor(cursor)

    def _pop(self, key: str) -> _Cursor | None:
        """Take ``key`` out of the table (None if another request already did)."""
        cursor = self._cursors.pop(key, None)
        if cursor is not None:
            self._bytes -= cursor.cost
            self._forget(cursor)
        return cursor

    def _forget(self, cursor: _Cursor) -> None:
        namespace = cursor.owner[0]
        if namespace is not None:
            left = self._by_namespace[namespace] - 1
            if left > 0:
                self._by_namespace[namespace] = left
            else:
                del self._by_namespace[namespace]

    async def _close_cursor(self, cursor: _Cursor) -> None:
        # A request reading from this cursor finishes its chunk before the reader closes.
        async with cursor.lock:
            await _close(cursor.reader)


def _scoped(owner: Owner) -> _Owner:
    return (scope.namespace(), *owner)


async def _close(reader: Reader[Any]) -> None:
    """Close a reader, logging (not raising) failures so one cannot stop the others closing."""
    try:
        await reader.aclose()
    except Exception:
        log.exception("closing an iterkey cursor failed")


@contextlib.asynccontextmanager
async def running(store: CursorStore) -> AsyncIterator[None]:
    """Sweep ``store`` in the background while the app runs; close every cursor after."""
    sweeper = asyncio.create_task(store.sweep(store.sweep_interval()))
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await store.aclose()
