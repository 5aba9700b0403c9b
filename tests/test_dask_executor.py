"""The Dask executor against a real distributed.LocalCluster of worker processes.

One cluster serves the whole module (tests/conftest.py's ``dask_cluster``: starting one takes
seconds); each test connects its own executor (a client) to it. Work functions are
module-level so the workers can import them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster

from service.engine.tasks.dask_executor import DaskExecutor, ExecutorStartError
from service.engine.workers import WorkerCrashed
from service.kernel.errors import BadRequest, NotFound, ServiceError, TimedOut
from tests.conftest import dask_workers
from tests.helpers import until

# --- work functions (run on the workers) -----------------------------------------------------


def report(reporter: Any, steps: int) -> int:
    for step in range(1, steps + 1):
        reporter.progress(step, steps, f"step {step}")
    reporter.log("all steps done")
    return os.getpid()


def spin_until_killed(reporter: Any, folder: str) -> int:
    """Write this worker's pid, then spin; the retry (a pid file exists already) returns."""
    retry = any(Path(folder).glob("pid-*"))
    Path(folder, f"pid-{os.getpid()}").write_text(str(os.getpid()))
    end = time.monotonic() + 60
    while not retry and time.monotonic() < end:
        pass
    return os.getpid()


def spin(reporter: Any, folder: str) -> None:
    Path(folder, f"spinning-{os.getpid()}").write_text(str(os.getpid()))
    end = time.monotonic() + 60
    while time.monotonic() < end:
        pass


def die(reporter: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def bad_input(reporter: Any) -> None:
    raise ValueError("column 'x' is not numeric")


def not_found(reporter: Any) -> None:
    raise NotFound("Model not loaded")


def bug(reporter: Any) -> None:
    raise RuntimeError("internal detail")


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def cluster_address(dask_cluster: LocalCluster) -> str:
    return str(dask_cluster.scheduler_address).removeprefix("tcp://")


@pytest.fixture
async def executor(dask_cluster: LocalCluster, tmp_path: Path) -> Any:
    # Both workers up: an earlier test may have killed one (its nanny brings a new one).
    await dask_workers(dask_cluster)
    address = dask_cluster.scheduler_address.removeprefix("tcp://")
    executor = DaskExecutor(address, upload_dir=tmp_path)
    await executor.start()
    yield executor
    await executor.aclose()


# --- tests -----------------------------------------------------------------------------------


async def test_runs_on_a_worker_with_progress_and_logs(
    executor: DaskExecutor, dask_cluster: LocalCluster
) -> None:
    progress: list[tuple[int, int | None, str | None]] = []
    logs: list[str] = []
    ran = await executor.run(
        report, 3, on_progress=lambda *a: progress.append(a), on_log=logs.append
    )
    assert ran.ran_on in dask_cluster.scheduler_info["workers"]
    assert ran.result != os.getpid()
    await until(lambda: progress and progress[-1][0] == 3 and logs)
    # At most ten updates a second get through; the first and the final one always do.
    assert progress[0] == (1, 3, "step 1")
    assert progress[-1] == (3, 3, "step 3")
    assert logs == ["all steps done"]
    assert executor.name == f"dask://{dask_cluster.scheduler_address.removeprefix('tcp://')}"


async def test_errors_come_back_sorted_like_local_runs(executor: DaskExecutor) -> None:
    with pytest.raises(BadRequest, match="column 'x' is not numeric"):
        await executor.run(bad_input)
    with pytest.raises(ServiceError, match="Model not loaded") as raised:
        await executor.run(not_found)
    assert raised.value.status == 404
    with pytest.raises(WorkerCrashed, match="RuntimeError: internal detail"):
        await executor.run(bug)


async def test_timeout_stops_the_work(executor: DaskExecutor, tmp_path: Path) -> None:
    """The timeout cancels like DELETE /runs/{id} does (tests/test_dask_pipelines.py checks
    that the worker process running the function is gone after a cancel)."""
    with pytest.raises(TimedOut, match=r"time limit of 0\.5 s"):
        await executor.run(spin, str(tmp_path), timeout=0.5)


async def test_worker_killed_mid_run_is_retried_on_another(
    executor: DaskExecutor, tmp_path: Path, dask_cluster: LocalCluster
) -> None:
    run = asyncio.ensure_future(executor.run(spin_until_killed, str(tmp_path)))
    await until(lambda: any(tmp_path.glob("pid-*")))
    (first,) = await asyncio.to_thread(lambda: list(tmp_path.glob("pid-*")))
    os.kill(int(first.read_text()), signal.SIGKILL)
    ran = await asyncio.wait_for(run, 60)
    assert ran.result != int(first.read_text())
    assert ran.ran_on in dask_cluster.scheduler_info["workers"]


async def test_a_function_that_kills_every_worker_fails_clearly(executor: DaskExecutor) -> None:
    with pytest.raises(WorkerCrashed, match="worker running it died"):
        await asyncio.wait_for(executor.run(die), 90)


async def test_a_worker_that_cannot_see_the_upload_dir_fails_its_work_clearly(
    executor: DaskExecutor, tmp_path: Path
) -> None:
    """A worker reads the start-up probe file before its first piece of work, so one that
    joined later on a machine without the shared filesystem fails with the reason. Here the
    probe file is removed under the workers, which have not read it yet."""
    (probe,) = await asyncio.to_thread(lambda: list(tmp_path.glob(".dask-probe.*.tmp")))
    probe.unlink()
    with pytest.raises(ServiceError) as raised:
        await executor.run(report, 1)
    assert raised.value.status == 503
    assert raised.value.message.startswith("Dask worker tcp://127.0.0.1:")
    root = await asyncio.to_thread(tmp_path.resolve)
    assert f"does not see -upload-dir {root} by the same path (" in raised.value.message
    assert raised.value.message.endswith("workers need it on a shared filesystem")


async def test_the_probe_file_is_removed_at_close(cluster_address: str, tmp_path: Path) -> None:
    executor = DaskExecutor(cluster_address, upload_dir=tmp_path)
    await executor.start()
    assert await asyncio.to_thread(lambda: len(list(tmp_path.glob(".dask-probe.*.tmp")))) == 1
    ran = await executor.run(report, 1)
    assert ran.ran_on.startswith("tcp://")
    await executor.aclose()
    assert await asyncio.to_thread(lambda: list(tmp_path.glob(".dask-probe.*"))) == []


async def test_unreachable_scheduler_is_a_start_error(tmp_path: Path) -> None:
    executor = DaskExecutor(f"127.0.0.1:{_free_port()}", upload_dir=tmp_path, connect_timeout=1)
    with pytest.raises(ExecutorStartError, match="cannot reach the Dask scheduler at tcp://"):
        await executor.start()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
