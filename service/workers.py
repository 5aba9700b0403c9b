"""Run a function in a worker process that can be stopped.

Module functions are third-party code over client data: they may loop, hog a core or crash. Each
call gets its own process (forked from a forkserver, so it starts in milliseconds and shares no
state with the server's threads), and the caller awaits it without blocking the event loop. A
thread could not be stopped when its time runs out; a process is killed, so a timed-out function
really stops using the machine.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from service.errors import BadRequest, ServiceError, Unavailable

ResultT = TypeVar("ResultT")

# Errors a function raises because of the data or options it was given: the client's problem,
# answered 400 like a plugin that cannot open its input. Anything else is a bug, answered 500.
INPUT_ERRORS = (OSError, ValueError, KeyError, TypeError)


def _context(preload: Sequence[str]) -> ForkServerContext | SpawnContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Modules imported once by the forkserver are inherited by every worker forked from it,
    # instead of being imported again by each (tens of milliseconds a run). The forkserver is
    # started on first use, so this takes effect for the first app of a process.
    context.set_forkserver_preload(["service.plugins.base", *preload])
    return context


def shutting_down() -> ServiceError:
    return Unavailable("Server is shutting down")


class WorkerCrashed(RuntimeError):
    """A function failed with an unexpected error (a bug in it); the traceback goes to the log."""


class Workers:
    """At most ``limit`` worker processes at once; the rest wait for a free slot."""

    def __init__(self, limit: int, *, preload: Sequence[str] = ()) -> None:
        """``preload``: Python modules workers will need (those of the module plugins)."""
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._mp = _context(preload)
        # Each running call blocks one thread waiting on its pipe; a pool of its own keeps
        # those waits from starving asyncio.to_thread users of the default executor.
        self._waiters = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="worker-wait")
        self._running: set[BaseProcess] = set()
        self._stopping = False

    @property
    def busy(self) -> int:
        """Worker processes running now (/metrics)."""
        return len(self._running)

    async def call(self, fn: Callable[..., ResultT], *args: Any) -> ResultT:
        """``fn(*args)`` in a fresh process; cancelling the caller kills the process."""
        async with self._slots:
            if self._stopping:
                raise shutting_down()
            outcome, payload = await self._call(fn, args)
        if outcome == "died" and self._stopping:
            raise shutting_down()
        result: ResultT = _result(outcome, payload)
        return result

    async def _call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
        loop = asyncio.get_running_loop()
        receiver, sender = self._mp.Pipe(duplex=False)
        process = self._mp.Process(target=_child, args=(sender, fn, args), daemon=True)
        # start() pickles fn and args and talks to the forkserver: short, but blocking. Both it
        # and the wait are shielded so that a cancelled caller still knows the process's fate.
        starting = loop.run_in_executor(self._waiters, process.start)
        waiting: asyncio.Future[tuple[str, Any]] | None = None
        try:
            await asyncio.shield(starting)
            self._running.add(process)
            sender.close()
            waiting = loop.run_in_executor(self._waiters, _receive, receiver, process)
            outcome, payload = await asyncio.shield(waiting)
        finally:
            if not starting.done():
                await asyncio.wait({starting})
            sender.close()
            if process.pid is not None:
                self._running.add(process)
                if waiting is None or not waiting.done():
                    # Cancelled (time limit, shutdown): the kill wakes the waiting thread, and
                    # the pipe is closed only after that thread has returned.
                    process.kill()
                    if waiting is not None:
                        await asyncio.wait({waiting})
                await loop.run_in_executor(self._waiters, _reap, process)
                self._running.discard(process)
                process.close()
            receiver.close()
        return outcome, payload

    def stop(self) -> None:
        """Kill whatever runs and refuse new calls (shutdown begins: answer callers now)."""
        self._stopping = True
        for process in list(self._running):
            process.kill()

    async def aclose(self) -> None:
        """After the last request: stop, then release the waiting threads."""
        self.stop()
        await asyncio.to_thread(self._waiters.shutdown, wait=True)


def _child(sender: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = fn(*args)
    except ServiceError as exc:
        sender.send(("service-error", (exc.status, exc.message)))
    except INPUT_ERRORS as exc:
        sender.send(("input-error", _message(exc)))
    except Exception as exc:
        sender.send(("crash", "".join(traceback.format_exception(exc))))
    else:
        try:
            sender.send(("ok", result))
        except Exception as exc:
            sender.send(("crash", "".join(traceback.format_exception(exc))))
    finally:
        sender.close()


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return f"missing {exc.args[0]!r}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _receive(receiver: Connection, process: BaseProcess) -> tuple[str, Any]:
    """Wait (in a thread) for the child's answer or its death, whichever comes first."""
    ready = wait([receiver, process.sentinel])
    if receiver in ready:
        try:
            outcome, payload = receiver.recv()
            return str(outcome), payload
        except (EOFError, OSError):
            pass
    process.join()
    return "died", process.exitcode


def _reap(process: BaseProcess) -> None:
    """Wait for a finished child to exit; one that lingers after answering is killed."""
    process.join(timeout=5)
    if process.exitcode is None:
        process.kill()
        process.join()


def _result(outcome: str, payload: Any) -> Any:
    if outcome == "ok":
        return payload
    if outcome == "service-error":
        status, message = payload
        raise ServiceError(message, status=status)
    if outcome == "input-error":
        raise BadRequest(payload)
    if outcome == "crash":
        raise WorkerCrashed(payload)
    raise WorkerCrashed(f"worker process exited with code {payload} without an answer")
