"""Executors: where long work runs. The task manager and pipelines only see this interface.

An executor runs ``fn(reporter, *args)`` somewhere it can be stopped (a worker process here, a
Dask worker in :mod:`service.engine.tasks.dask_executor`) and returns :class:`Ran`: the result and
where it ran. ``fn`` must be a picklable module-level function; ``reporter`` is a
:class:`service.sdk.progress.Reporter` whose calls reach ``on_progress`` / ``on_log`` on the
event loop while the work runs (code deeper down can call :func:`service.sdk.progress.progress`
instead of being handed the reporter).

Cancelling the coroutine awaiting :meth:`Executor.run` stops the work for real. Errors come back
as the service's errors: a ServiceError raised by ``fn`` with its status, OSError / ValueError /
KeyError / TypeError as 400, a timeout as 504 :class:`TimedOut`, anything else as
:class:`service.engine.workers.WorkerCrashed` (a 500, its traceback in the log only).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from service.engine.workers import Message, Workers
from service.kernel.errors import TimedOut
from service.sdk.progress import Reporter
from service.sdk.progress import current as current_reporter

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

OnProgress = Callable[[int, int | None, str | None], None]
OnLog = Callable[[str], None]
# Called once the work starts on a worker, with where (what ``Ran.ran_on`` will say).
OnStart = Callable[[str], None]

__all__ = ["Executor", "LocalExecutor", "OnLog", "OnProgress", "OnStart", "Ran", "Reporter"]


@dataclasses.dataclass(frozen=True)
class Ran(Generic[R_co]):
    """What came back from a run, and where it ran (``"local:pid 123"``, a Dask worker)."""

    result: R_co
    ran_on: str


class Executor(Protocol):
    """Runs functions where they can be stopped. ``name``: ``"local"``, ``"dask://host:port"``."""

    name: str

    async def start(self) -> None:
        """Before the first run (the app's start-up)."""

    async def aclose(self) -> None:
        """Stop what runs and release everything (the app's shutdown)."""

    async def run(
        self,
        fn: Callable[..., R],
        *args: Any,
        on_progress: OnProgress | None = None,
        on_log: OnLog | None = None,
        timeout: float | None = None,
        on_start: OnStart | None = None,
    ) -> Ran[R]:
        """``fn(reporter, *args)`` remotely; raises what ``fn`` raised, as the module says."""
        ...


def timed_out(timeout: float) -> TimedOut:
    return TimedOut(f"exceeded the time limit of {timeout:g} s and was stopped")


class LocalExecutor:
    """Worker processes of this machine: the app's :class:`service.engine.workers.Workers` pool
    (``-module-workers`` at once, the rest wait for a slot)."""

    name = "local"

    def __init__(self, workers: Workers) -> None:
        self.workers = workers

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        # The pool belongs to the app, which closes it after the last request.
        return None

    async def run(
        self,
        fn: Callable[..., R],
        *args: Any,
        on_progress: OnProgress | None = None,
        on_log: OnLog | None = None,
        timeout: float | None = None,
        on_start: OnStart | None = None,
    ) -> Ran[R]:
        def on_message(message: Message) -> None:
            kind, payload = message
            if kind == "started" and on_start is not None:
                on_start(f"local:pid {payload}")
            elif kind == "progress" and on_progress is not None:
                done, total, text = payload
                on_progress(done, total, text)
            elif kind == "log" and on_log is not None:
                on_log(payload)

        running = self.workers.run(fn, args, on_message=on_message, with_reporter=True)
        try:
            result, pid = await asyncio.wait_for(running, timeout)
        except asyncio.TimeoutError:
            if timeout is None:
                raise
            raise timed_out(timeout) from None
        return Ran(result, f"local:pid {pid}")


def call_plain(reporter: Reporter, fn: Callable[..., R], *args: Any) -> R:
    """Worker side of :func:`runner`: plugin functions take no reporter (they report through
    :mod:`service.sdk.progress`)."""
    return fn(*args)


def runner(executor: Executor) -> Callable[..., Awaitable[Any]]:
    """``runner(fn, *args)`` for :func:`service.sdk.offload.using`: ``fn(*args)`` on
    ``executor``, its progress and logs to the task the caller runs for, its place as the
    task's ``ran_on``."""

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        reporter = current_reporter()
        running_on = getattr(reporter, "running_on", None)
        ran = await executor.run(
            call_plain,
            fn,
            *args,
            on_progress=reporter.progress,
            on_log=reporter.log,
            on_start=running_on,
        )
        if running_on is not None:
            running_on(ran.ran_on)
        return ran.result

    return run
