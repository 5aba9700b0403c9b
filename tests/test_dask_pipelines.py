"""Pipelines on -executor dask://HOST:PORT, in-process against a distributed.LocalCluster.

The same runs as tests/test_pipelines.py's, on Dask: the jobs run on the cluster's worker
processes (ran_on names them), cancel stops the function there, and the module route runs
there too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster

from tests.conftest import MakeClient, dask_executor_option, dask_workers
from tests.test_modules import write_csv
from tests.test_pipelines import DESCRIBE, SPLIT, call, create, open_modules, registry, start, until


@pytest.fixture
async def client(make_client: MakeClient, upload_dir: Path, dask_cluster: LocalCluster) -> Any:
    await dask_workers(dask_cluster)
    client = await make_client(registry=registry(), executor=dask_executor_option(dask_cluster))
    await open_modules(client)
    write_csv(upload_dir / "in" / "iris.csv", ["x", "y"], [[i, i % 3] for i in range(20)])
    (upload_dir / "in" / "a.txt").write_text("one\ntwo\n")
    return client


async def test_a_two_task_run_finishes_on_the_dask_workers(
    client: Any, dask_cluster: LocalCluster, upload_dir: Path
) -> None:
    pipeline = await create(client, SPLIT, DESCRIBE)
    run = await until(
        client, (await start(client, pipeline, "in/iris.csv"))["id"], "FINISHED", "FAILED"
    )
    assert run["status"] == "FINISHED", run
    workers = set(dask_cluster.scheduler_info["workers"])
    for job in run["jobs"]:
        assert job["status"] == "FINISHED"
        assert job["ran_on"] in workers
    assert (upload_dir / f"outputs/run-{run['id']}/job-1/iris.train.describe.json").is_file()


async def test_a_failing_first_job_cancels_the_second(client: Any) -> None:
    reject = {"module": "f", "function": "reject", "options": {}}
    echo = {"module": "f", "function": "echo", "options": {"count": 1}}
    pipeline = await create(client, reject, echo)
    run = await until(client, (await start(client, pipeline, "in/a.txt"))["id"], "FAILED")
    assert [job["status"] for job in run["jobs"]] == ["FAILED", "CANCELLED"]
    assert run["jobs"][0]["error"] == "line 3 is not a number"
    assert run["jobs"][1]["error"] == "job 0 failed"


async def test_cancel_reaches_the_dask_worker(client: Any, upload_dir: Path) -> None:
    sleep = {"module": "f", "function": "sleep", "options": {}}
    pipeline = await create(client, sleep)
    run = await start(client, pipeline, "in/a.txt")
    pidfile = upload_dir / "outputs" / "sleeper.pid"
    await until(client, run["id"], "RUNNING")
    deadline = time.monotonic() + 30
    while not pidfile.exists():
        assert time.monotonic() < deadline
        await until(client, run["id"], "RUNNING")
    status, cancelled = await call(client, "DELETE", f"/runs/{run['id']}")
    assert (status, cancelled["status"]) == (200, "CANCELLED")
    assert cancelled["jobs"][0]["status"] == "CANCELLED"
    # The worker process that ran the function is restarted: the function stops with it.
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 60
    while _alive(pid):
        assert time.monotonic() < deadline, "the cancelled function still runs"
        await until(client, run["id"], "CANCELLED")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
