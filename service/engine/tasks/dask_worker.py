"""The worker side of :mod:`service.engine.tasks.dask_executor`: what runs inside a Dask worker.

Module-level functions, pickled to the workers by reference (workers import this module):
``call`` runs the server's work with a reporter that sends progress and logs as Dask events,
after checking once per worker process that it sees the server's upload dir.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distributed import get_worker

from service.engine.workers import INPUT_ERRORS, PROGRESS_PER_SECOND, error_message
from service.kernel.errors import ServiceError
from service.sdk import progress as plugin_progress
from service.sdk.progress import LOG_LINES, clip

# Every event of this server's work goes to one topic; each carries the key of its future.
TOPIC = "dffml-service-http"

Probe = tuple[str, str, str]  # (the probe file, its token, the upload dir), as workers see it


def blind(worker: str, root: str, problem: str) -> str:
    return (
        f"Dask worker {worker} does not see -upload-dir {root} by the same path ({problem});"
        " workers need it on a shared filesystem"
    )


class _WorkerReporter:
    """Progress and logs of one function, sent from the worker as events on ``TOPIC``;
    bounded like the local workers' (a chatty function cannot flood the scheduler)."""

    def __init__(self, key: str) -> None:
        self._key = key
        self._worker = get_worker()
        self._last_progress = 0.0
        self._lines = 0

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        moment = time.monotonic()
        final = total is not None and done >= total
        if not final and moment - self._last_progress < 1 / PROGRESS_PER_SECOND:
            return
        self._last_progress = moment
        event = {"key": self._key, "kind": "progress", "done": done, "total": total}
        self._worker.log_event(TOPIC, {**event, "message": message})

    def started(self, address: str) -> None:
        self._worker.log_event(TOPIC, {"key": self._key, "kind": "started", "worker": address})

    def log(self, line: str) -> None:
        if self._lines >= LOG_LINES:
            return
        self._lines += 1
        self._worker.log_event(TOPIC, {"key": self._key, "kind": "log", "line": clip(line)})


def call(
    key: str, fn: Callable[..., Any], args: tuple[Any, ...], probe: Probe | None = None
) -> tuple[str, Any, str]:
    """Run ``fn`` on a worker; errors come back as values, sorted like the local executor's."""
    address = str(get_worker().address)
    problem = sees(probe)
    if problem is not None:
        assert probe is not None
        return "service-error", (503, blind(address, probe[2], problem)), address
    reporter = _WorkerReporter(key)
    reporter.started(address)
    try:
        # Plugin code deep down reports through service.sdk.progress, as in local workers.
        with plugin_progress.reporting(reporter):
            return "ok", fn(reporter, *args), address
    except ServiceError as exc:
        return "service-error", (exc.status, exc.message), address
    except INPUT_ERRORS as exc:
        return "input-error", error_message(exc), address
    except Exception as exc:
        return "crash", "".join(traceback.format_exception(exc)), address


# The probes this worker process has read back: a worker reads each server's once.
_SEEN: set[tuple[str, str]] = set()


def sees(probe: Probe | None) -> str | None:
    """None where this worker sees the server's upload dir (or there is none), else why not."""
    if probe is None or probe[:2] in _SEEN:
        return None
    problem = read_probe(probe[0], probe[1])
    if problem is None:
        _SEEN.add(probe[:2])
    return problem


def read_probe(path: str, token: str) -> str | None:
    try:
        seen = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return None if seen == token else f"{path} holds something else"


def processing_on(key: str, dask_scheduler: Any = None) -> str | None:
    """On the scheduler: the address of the worker running ``key``, if one is."""
    task = dask_scheduler.tasks.get(key)
    if task is None or task.processing_on is None:
        return None
    return str(task.processing_on.address)
