"""Run a function in a worker process that can be stopped.

Module functions are third-party code over client data: they may loop, hog a core or crash. Each
call gets its own process (forked from a forkserver, so it starts in milliseconds and shares no
state with the server's threads), and the caller awaits it without blocking the event loop. A
thread could not be stopped when its time runs out; a process is killed, so a timed-out function
really stops using the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from service.kernel.errors import BadRequest, ServiceError, Unavailable
from service.sdk import progress as plugin_progress

ResultT = TypeVar("ResultT")

# Errors a function raises because of the data or options it was given: the client's problem,
# answered 400 like a plugin that cannot open its input. Anything else is a bug, answered 500.
INPUT_ERRORS = (OSError, ValueError, KeyError, TypeError)

# ("progress", (done, total, message)) or ("log", line), sent by a worker while it runs;
# ("started", pid) once it runs.
Message = tuple[str, Any]
OnMessage = Callable[[Message], None]
# A worker sends at most this many progress updates a second (the latest always arrives).
PROGRESS_PER_SECOND = 10


def _context(preload: Sequence[str]) -> ForkServerContext | SpawnContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Modules imported once by the forkserver are inherited by every worker forked from it,
    # instead of being imported again by each (tens of milliseconds a run). The forkserver is
    # started on first use, so this takes effect for the first app of a process.
    context.set_forkserver_preload(["service.sdk.base", *preload])
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
        """``fn(*args)`` in a fresh process; cancelling the caller kills the process.

        What the function reports (:mod:`service.sdk.progress`) goes to the reporter of
        the task the caller runs for, if any.
        """
        result, _ = await self.run(fn, args, on_message=_to_reporter(plugin_progress.current()))
        return result

    async def run(
        self,
        fn: Callable[..., ResultT],
        args: tuple[Any, ...],
        *,
        on_message: OnMessage | None = None,
        with_reporter: bool = False,
    ) -> tuple[ResultT, int]:
        """``fn(*args)`` (``fn(reporter, *args)`` ``with_reporter``) in a fresh process: its
        result and the worker's pid. ``on_message`` gets each progress and log message on the
        event loop while the function runs."""
        async with self._slots:
            if self._stopping:
                raise shutting_down()
            outcome, payload, pid = await self._call(fn, args, on_message, with_reporter)
        if outcome == "died" and self._stopping:
            raise shutting_down()
        result: ResultT = outcome_result(outcome, payload)
        return result, pid

    async def _call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        on_message: OnMessage | None,
        with_reporter: bool,
    ) -> tuple[str, Any, int]:
        loop = asyncio.get_running_loop()
        receiver, sender = self._mp.Pipe(duplex=False)
        deliver = None if on_message is None else _on_loop(loop, on_message)
        process = self._mp.Process(
            target=_child, args=(sender, fn, args, with_reporter), daemon=True
        )
        # start() pickles fn and args and talks to the forkserver: short, but blocking. Both it
        # and the wait are shielded so that a cancelled caller still knows the process's fate.
        starting = loop.run_in_executor(self._waiters, process.start)
        waiting: asyncio.Future[tuple[str, Any]] | None = None
        try:
            await asyncio.shield(starting)
            pid = process.pid or 0
            self._running.add(process)
            sender.close()
            if on_message is not None:
                on_message(("started", pid))
            waiting = loop.run_in_executor(self._waiters, _receive, receiver, process, deliver)
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
        return outcome, payload, pid

    def stop(self) -> None:
        """Kill whatever runs and refuse new calls (shutdown begins: answer callers now)."""
        self._stopping = True
        for process in list(self._running):
            process.kill()

    async def aclose(self) -> None:
        """After the last request: stop, then release the waiting threads."""
        self.stop()
        await asyncio.to_thread(self._waiters.shutdown, wait=True)


def _to_reporter(reporter: plugin_progress.Reporter) -> OnMessage | None:
    if isinstance(reporter, plugin_progress.Silent):
        return None

    def forward(message: Message) -> None:
        kind, payload = message
        if kind == "progress":
            reporter.progress(*payload)
        elif kind == "log":
            reporter.log(payload)
        elif kind == "started":
            running_on = getattr(reporter, "running_on", None)
            if running_on is not None:
                running_on(f"local:pid {payload}")

    return forward


def _on_loop(loop: asyncio.AbstractEventLoop, on_message: OnMessage) -> OnMessage:
    """Called in the waiting thread: hand each message to the event loop."""

    def deliver(message: Message) -> None:
        # RuntimeError: the loop closed under a killed worker; nobody is listening.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(on_message, message)

    return deliver


class PipeReporter:
    """The reporter inside a worker: progress and log lines go up the result pipe, bounded
    (PROGRESS_PER_SECOND updates, LOG_LINES lines of LOG_LINE_CHARS) so a chatty plugin
    cannot flood the server."""

    def __init__(self, sender: Connection) -> None:
        self._sender = sender
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._pending: tuple[int, int | None, str | None] | None = None
        self._lines = 0

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        update = (int(done), None if total is None else int(total), _short(message))
        with self._lock:
            now = time.monotonic()
            finished = update[1] is not None and update[0] >= update[1]
            if not finished and now - self._last_sent < 1 / PROGRESS_PER_SECOND:
                self._pending = update
                return
            self._pending = None
            self._last_sent = now
            self._sender.send(("progress", update))

    def log(self, line: str) -> None:
        with self._lock:
            self._lines += 1
            if self._lines > plugin_progress.LOG_LINES:
                if self._lines == plugin_progress.LOG_LINES + 1:
                    note = f"(more than {plugin_progress.LOG_LINES} log lines: the rest dropped)"
                    self._sender.send(("log", note))
                return
            self._sender.send(("log", plugin_progress.clip(str(line))))

    def flush(self) -> None:
        """Send the last progress update held back by the rate limit."""
        with self._lock:
            if self._pending is not None:
                self._sender.send(("progress", self._pending))
                self._pending = None


def _short(message: str | None) -> str | None:
    return None if message is None else plugin_progress.clip(str(message))[:500]


def _child(
    sender: Connection, fn: Callable[..., Any], args: tuple[Any, ...], with_reporter: bool
) -> None:
    reporter = PipeReporter(sender)
    plugin_progress.set_process_reporter(reporter)
    try:
        result = fn(reporter, *args) if with_reporter else fn(*args)
        reporter.flush()
    except ServiceError as exc:
        sender.send(("service-error", (exc.status, exc.message)))
    except INPUT_ERRORS as exc:
        sender.send(("input-error", error_message(exc)))
    except Exception as exc:
        sender.send(("crash", "".join(traceback.format_exception(exc))))
    else:
        try:
            sender.send(("ok", result))
        except Exception as exc:
            sender.send(("crash", "".join(traceback.format_exception(exc))))
    finally:
        sender.close()


def error_message(exc: BaseException) -> str:
    """An input error, as the client is told it (a missing key, an OS error's reason)."""
    if isinstance(exc, KeyError) and exc.args:
        return f"missing {exc.args[0]!r}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _receive(
    receiver: Connection, process: BaseProcess, deliver: OnMessage | None
) -> tuple[str, Any]:
    """Wait (in a thread) for the child's answer or its death, whichever comes first, passing
    on the progress and log messages it sends meanwhile."""
    while True:
        ready = wait([receiver, process.sentinel])
        if receiver not in ready:
            break
        try:
            outcome, payload = receiver.recv()
        except (EOFError, OSError):
            break
        if outcome in ("progress", "log"):
            if deliver is not None:
                deliver((outcome, payload))
            continue
        return str(outcome), payload
    process.join()
    return "died", process.exitcode


def _reap(process: BaseProcess) -> None:
    """Wait for a finished child to exit; one that lingers after answering is killed."""
    process.join(timeout=5)
    if process.exitcode is None:
        process.kill()
        process.join()


def outcome_result(outcome: str, payload: Any) -> Any:
    """What a worker's ``(outcome, payload)`` answer means here: the result, or the error it
    carries (the local pool's and Dask's workers answer alike)."""
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
