"""The Dask scheduler lost under a running server, and back again (through HTTP, real app).

A `dask scheduler` process on 127.0.0.1 is SIGKILLed while a pipeline job and an async module
task run on its worker, then started again on the same port. The worker lives in this test's
process (a ``distributed.Worker`` with two threads: both pieces of work run at once) so the
test is quick; the held jobs (tests/fixtures/dask_plugin) are released when the test ends.
Every wait is a bounded poll; ``-dask-timeout 1`` keeps the reconnect window short.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Worker

from tests import fakes
from tests.conftest import MakeClient
from tests.tasks_helpers import submit, wait_task
from tests.test_modules import open_module
from tests.test_pipelines import call, create, start, until

DASK = str(Path(sys.executable).with_name("dask"))
REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "tests" / "fixtures" / "dask_plugin"
HOLD = {"module": "h", "function": "hold", "options": {}}
ECHO = {"module": "f", "function": "echo", "options": {"count": 1}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Scheduler:
    """`dask scheduler` on one port, started and SIGKILLed by the test (never left running)."""

    def __init__(self, port: int, cwd: Path) -> None:
        self.port = port
        self.address = f"tcp://127.0.0.1:{port}"
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        args = ("scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard")
        with (self._cwd / f"scheduler-{time.monotonic_ns()}.log").open("wb") as log:
            # The scheduler unpickles the work too: it imports the modules of the functions.
            path = [str(PLUGIN), str(REPO), os.environ.get("PYTHONPATH", "")]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
            return subprocess.Popen([DASK, *args], stdout=log, stderr=subprocess.STDOUT, env=env)

    async def start(self) -> None:
        self._process = process = await asyncio.to_thread(self._spawn)
        deadline = time.monotonic() + 60
        while not _accepts(self.port):
            assert process.poll() is None, "the scheduler exited"
            assert time.monotonic() < deadline, "the scheduler did not listen in time"
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=30)
        self._process = None


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def hold_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(PLUGIN))
    import dask_hold

    dask_hold.RELEASE.clear()
    yield dask_hold
    dask_hold.RELEASE.set()


@pytest.fixture
async def scheduler(tmp_path: Path) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(free_port(), tmp_path)
    try:
        await scheduler.start()
        yield scheduler
    finally:
        scheduler.kill()


def _attempts(upload_dir: Path) -> list[Path]:
    return list(upload_dir.glob("outputs/**/*.attempt-*"))


async def attempts(upload_dir: Path, count: int) -> None:
    """Until ``count`` held jobs run (each notes its attempt beside its output folder)."""
    deadline = time.monotonic() + 60
    while len(await asyncio.to_thread(_attempts, upload_dir)) < count:
        assert time.monotonic() < deadline, "the held jobs did not start"
        await asyncio.sleep(0.05)


async def wait_ran_on(client: Any, task_id: str, where: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        task: dict[str, Any] = await (await client.get(f"/task/{task_id}")).json()
        if task["ran_on"] == where:
            return task
        assert time.monotonic() < deadline, task
        await asyncio.sleep(0.05)


async def test_losing_the_scheduler_fails_the_work_and_the_server_reconnects(
    make_client: MakeClient, scheduler: Scheduler, hold_module: Any, upload_dir: Path
) -> None:
    registry = fakes.fake_registry()
    registry.register("module", "hold", hold_module.HoldModule)
    workers = [await Worker(scheduler.address, nthreads=2, host="127.0.0.1", dashboard=False)]
    try:
        client = await make_client(
            registry=registry, executor=f"dask://127.0.0.1:{scheduler.port}", dask_timeout=1
        )
        await open_module(client, "hold", "h")
        await open_module(client, "fake", "f")
        (upload_dir / "a.txt").write_text("one\ntwo\n")
        held = await start(client, await create(client, HOLD), "a.txt")
        task = await submit(client, "POST", "/module/h/hold", json={"files": ["a.txt"]})
        await attempts(upload_dir, 2)
        # While it runs, the task already names the worker it runs on.
        running = await wait_ran_on(client, task["task_id"], workers[0].address)
        assert running["status"] == "RUNNING", running

        scheduler.kill()
        lost = f"lost the Dask scheduler at {scheduler.address} while the work ran"
        run = await until(client, held["id"], "FAILED", "FINISHED")
        (job,) = run["jobs"]
        assert (job["status"], job["error"].startswith(lost)) == ("FAILED", True), job
        failed = await wait_task(client, task["task_id"])
        assert (failed["status"], failed["error"].startswith(lost)) == ("FAILURE", True), failed
        # The server keeps answering; work given while the scheduler is down fails with why.
        assert (await client.get("/health")).status == 200
        down = await until(
            client, (await start(client, await create(client, ECHO), "a.txt"))["id"], "FAILED"
        )
        assert "cannot reach the Dask scheduler at" in down["jobs"][0]["error"], down

        # The scheduler comes back on the same port, with a worker: the next run succeeds.
        hold_module.RELEASE.set()
        await workers[0].close()
        await scheduler.start()
        workers.append(await Worker(scheduler.address, nthreads=1, host="127.0.0.1"))
        pipeline = await create(client, ECHO)
        again = await until(
            client, (await start(client, pipeline, "a.txt"))["id"], "FINISHED", "FAILED"
        )
        assert again["status"] == "FINISHED", again
        assert again["jobs"][0]["ran_on"] == workers[1].address
        status, _ = await call(client, "GET", f"/runs/{again['id']}")
        assert status == 200
    finally:
        hold_module.RELEASE.set()
        for worker in workers:
            await worker.close()
