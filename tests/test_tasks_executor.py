"""The local executor: work in a worker process, progress and logs from it, killed on cancel."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.engine.tasks.executor import LocalExecutor, Ran
from service.engine.workers import WorkerCrashed, Workers
from service.kernel.errors import BadRequest, NotFound, ServiceError, TimedOut
from service.sdk import progress as plugin_progress
from service.sdk.progress import LOG_LINES, Reporter


def counting(reporter: Reporter, n: int) -> int:
    for i in range(n):
        reporter.log(f"line {i}")
    for i in range(n + 1):
        reporter.progress(i, n, f"step {i}")
    return os.getpid()


def through_the_module_function(reporter: Reporter) -> str:
    plugin_progress.progress(3, None, "deep inside")
    plugin_progress.log("from the plugin")
    return "done"


def chatty(reporter: Reporter) -> None:
    for i in range(LOG_LINES + 50):
        reporter.log("x" * 10_000 if i == 0 else f"line {i}")


def sleeping(reporter: Reporter, path: str) -> None:
    import time

    with open(path, "w") as file:
        file.write(str(os.getpid()))
    reporter.progress(0, None, "started")
    time.sleep(600)


def failing(reporter: Reporter, what: str) -> None:
    if what == "service":
        raise NotFound("Nothing here")
    if what == "input":
        raise ValueError("bad value")
    raise RuntimeError("a bug")


@pytest.fixture
async def executor() -> AsyncIterator[LocalExecutor]:
    workers = Workers(2)
    executor = LocalExecutor(workers)
    await executor.start()
    try:
        yield executor
    finally:
        await executor.aclose()
        await workers.aclose()


async def test_result_progress_and_logs_come_back(executor: LocalExecutor) -> None:
    progress: list[tuple[int, int | None, str | None]] = []
    logs: list[str] = []
    ran: Ran[int] = await executor.run(
        counting,
        5,
        on_progress=lambda d, t, m: progress.append((d, t, m)),
        on_log=logs.append,
    )
    assert ran.ran_on == f"local:pid {ran.result}"
    assert ran.result != os.getpid()
    assert logs == [f"line {i}" for i in range(5)]
    # Rate-limited, but the first and the last update always arrive, in order.
    assert progress[0] == (0, 5, "step 0")
    assert progress[-1] == (5, 5, "step 5")
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)


async def test_plugin_code_reports_without_being_handed_the_reporter(
    executor: LocalExecutor,
) -> None:
    progress: list[Any] = []
    logs: list[str] = []
    ran = await executor.run(
        through_the_module_function,
        on_progress=lambda *p: progress.append(p),
        on_log=logs.append,
    )
    assert ran.result == "done"
    assert progress == [(3, None, "deep inside")]
    assert logs == ["from the plugin"]


async def test_logs_are_bounded(executor: LocalExecutor) -> None:
    logs: list[str] = []
    await executor.run(chatty, on_log=logs.append)
    assert len(logs) == LOG_LINES + 1
    assert len(logs[0]) == plugin_progress.LOG_LINE_CHARS
    assert "rest dropped" in logs[-1]


async def test_errors_come_back_as_the_service_errors(executor: LocalExecutor) -> None:
    with pytest.raises(ServiceError, match="Nothing here") as raised:
        await executor.run(failing, "service")
    assert raised.value.status == NotFound.status
    with pytest.raises(BadRequest, match="bad value"):
        await executor.run(failing, "input")
    with pytest.raises(WorkerCrashed, match="a bug"):
        await executor.run(failing, "bug")


async def _pid_from(path: Any) -> int:
    for _ in range(600):
        if path.exists() and path.read_text():
            return int(path.read_text())
        await asyncio.sleep(0.05)
    raise AssertionError("the worker never started")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie not yet reaped by the forkserver still answers kill(0): look at its state.
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


async def test_cancelling_the_run_kills_the_worker(executor: LocalExecutor, tmp_path: Any) -> None:
    started = asyncio.Event()
    path = tmp_path / "pid"
    run = asyncio.create_task(
        executor.run(sleeping, str(path), on_progress=lambda *p: started.set())
    )
    await asyncio.wait_for(started.wait(), 60)
    pid = await _pid_from(path)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert _gone(pid)


async def test_a_timeout_stops_the_worker(executor: LocalExecutor, tmp_path: Any) -> None:
    path = tmp_path / "pid"
    await executor.run(counting, 0)  # the forkserver is up: the next worker starts quickly
    with pytest.raises(TimedOut, match="time limit of 5 s"):
        await executor.run(sleeping, str(path), timeout=5)
    assert executor.workers.busy == 0  # killed and reaped before run() raised
    # On a loaded machine the worker may not have got as far as writing its pid.
    if path.exists() and path.read_text():
        assert _gone(int(path.read_text()))
