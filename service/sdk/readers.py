"""Readers: how a source or a model hands out a stream one chunk at a time.

A reader has ``read(size) -> (chunk, more)`` and ``aclose()``; any async iterator becomes one
through :class:`IteratorReader`, which reads one item ahead so the chunk that reaches the end
already says so. The service keeps readers behind iterkey cursors (service/engine/cursors.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
C_co = TypeVar("C_co", covariant=True)


class Reader(Protocol[C_co]):
    """Reads a stream chunk by chunk; ``more`` is False once the stream is exhausted.

    A reader may also have ``held_bytes() -> int``: about how much memory it holds between two
    reads (what the cursor store budgets with ``-iterkey-max-bytes``). One without it is
    counted as :data:`UNKNOWN_READER_BYTES`.
    """

    async def read(self, size: int) -> tuple[C_co, bool]: ...

    async def aclose(self) -> None: ...


# What a reader holding only a position costs (the objects themselves), and what one that does
# not say is assumed to hold: an async generator may hold a decoded batch of records.
POSITION_BYTES = 1024
UNKNOWN_READER_BYTES = 1024 * 1024


def held_bytes(reader: object) -> int:
    measure: Callable[[], int] | None = getattr(reader, "held_bytes", None)
    return UNKNOWN_READER_BYTES if measure is None else max(int(measure()), 0)


class IteratorReader(Generic[T]):
    """A reader over an async iterator, one item ahead of what it has handed out."""

    def __init__(self, iterator: AsyncIterator[T]) -> None:
        self._iterator = iterator
        self._ahead: list[T] = []
        self._done = False

    async def read(self, size: int) -> tuple[list[T], bool]:
        items, self._ahead = self._ahead, []
        # One more than asked for: whether it exists is whether the stream goes on.
        while len(items) <= size and not self._done:
            try:
                items.append(await anext(self._iterator))
            except StopAsyncIteration:
                self._done = True
        if len(items) > size:
            self._ahead = items[size:]
            del items[size:]
        return items, bool(self._ahead)

    def held_bytes(self) -> int:
        # An async generator may hold anything (a decoded batch of its source): unknown.
        return UNKNOWN_READER_BYTES

    async def aclose(self) -> None:
        self._done = True
        self._ahead = []
        close: Callable[[], Awaitable[object]] | None = getattr(self._iterator, "aclose", None)
        if close is not None:
            await close()
