"""Blocking plugin work in a worker process the server can stop (or a thread, outside it).

A model's ``train`` (or any plugin code the server awaits) calls::

    result = await in_worker(fit_rows, config, rows)

``fit_rows(config, rows)`` then runs in a fresh worker process of the server's pool: cancelling
the task kills it, and what it reports with :mod:`service.sdk.progress` reaches the task.
``fn`` and its arguments are pickled, so ``fn`` must be a module-level function. Where the
server lent no pool (a plugin's own unit tests), the work runs in a thread instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

R = TypeVar("R")
Runner = Callable[..., Awaitable[Any]]

_runner: contextvars.ContextVar[Runner | None] = contextvars.ContextVar(
    "service_worker_runner", default=None
)


async def in_worker(fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)`` in one of the server's worker processes (a thread without one)."""
    runner = _runner.get()
    if runner is None:
        return await asyncio.to_thread(fn, *args)
    result: R = await runner(fn, *args)
    return result


def available() -> bool:
    """Whether the server lent a worker pool to the code running now."""
    return _runner.get() is not None


@contextlib.contextmanager
def using(runner: Runner | None) -> Iterator[None]:
    """Within the block, :func:`in_worker` runs through ``runner(fn, *args)`` (the server)."""
    token = _runner.set(runner)
    try:
        yield
    finally:
        _runner.reset(token)
