"""Progress and log lines from inside plugin code, for the task that runs it.

Plugin authors call :func:`progress` and :func:`log` from anywhere in a model's ``train``/``fit``,
a module function or a source: in the server process, in a worker process, or in a thread
started by either. When the code runs as part of a task (``?async=1``, or any route: every long
call is a task), the calls reach that task's ``progress`` and ``log`` (``GET /task/{id}``, its
SSE events). Outside a task they do nothing, so plugins never need to check::

    from service.sdk.progress import progress, log

    def fit(self, rows, targets):
        progress(0, len(rows), "fitting")
        ...
        progress(len(rows), len(rows), "fitted")

Calls are cheap: a worker process sends at most ten progress updates a second (the latest one
always arrives), and at most ``LOG_LINES`` log lines of at most ``LOG_LINE_CHARS`` characters a
run; the rest are dropped with a note.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Protocol

# Bounds on what one run may send: a chatty plugin cannot flood the server's memory.
LOG_LINES = 1000
LOG_LINE_CHARS = 4096


class Reporter(Protocol):
    """Where progress goes: a task (in the server) or the pipe to it (in a worker)."""

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """``done`` of ``total`` units (``total`` None when unknown), with a short message."""

    def log(self, line: str) -> None:
        """One line of log for the task."""


class Silent:
    """The reporter outside any task: drops everything."""

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        return None

    def log(self, line: str) -> None:
        return None


SILENT = Silent()
_current: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "service_progress_reporter", default=None
)
# A worker process reports for one run: threads the plugin starts there (without this
# context) still reach it.
_process_reporter: Reporter = SILENT


def current() -> Reporter:
    """The reporter of the task this code runs for (SILENT outside one)."""
    reporter = _current.get()
    return _process_reporter if reporter is None else reporter


def progress(done: int, total: int | None = None, message: str | None = None) -> None:
    """Report ``done`` of ``total`` units to the task running this code (if any)."""
    current().progress(done, total, message)


def log(line: str) -> None:
    """Add a line to the log of the task running this code (if any)."""
    current().log(line)


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Within the block (and the asyncio tasks and threads it starts with its context),
    :func:`progress` and :func:`log` go to ``reporter``."""
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)


def set_process_reporter(reporter: Reporter) -> None:
    """Worker processes only: every thread of this process reports to ``reporter``."""
    global _process_reporter
    _process_reporter = reporter


def clip(line: str) -> str:
    """A log line within LOG_LINE_CHARS."""
    if len(line) <= LOG_LINE_CHARS:
        return line
    return line[: LOG_LINE_CHARS - 1] + "…"
