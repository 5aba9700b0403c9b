"""An input file replaced or removed while a module function runs is the input's fault: 409
naming the file (FAILURE with that message for a task), not the module's 500 (issue 13, point 7).

The function waits (in its worker process) until the test has changed its input through HTTP;
the worker and the test share nothing but files in the upload directory.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.plugins.registry import Registry
from service.sdk.modules import Function, Job, Module
from tests.conftest import MakeClient
from tests.tasks_helpers import wait_task

WAIT = 30  # seconds a step may take before the test fails instead of hanging


def gated(job: Job) -> None:
    """Say it started, wait for the test's gate, then copy its input."""
    root = job.output_dir.parent.parent
    (root / "gated.started").write_text("")
    deadline = time.monotonic() + WAIT
    while not (root / "gated.open").exists():
        assert time.monotonic() < deadline, "the test never opened the gate"
        time.sleep(0.01)
    text = job.inputs[0].path.read_text() if job.inputs[0].path.exists() else ""
    job.output("copy.txt").write_text(text)


class GatedModule(Module[Any]):
    """Copies a file once the test lets it."""

    FUNCTIONS = (Function("gated", "copy a file", target=gated, expected_filetype="txt"),)


@pytest.fixture
async def client(make_client: MakeClient, upload_dir: Path) -> Any:
    registry = Registry.empty()
    registry.register("module", "gated", GatedModule)
    client = await make_client(registry=registry)
    assert (await client.post("/configure/module/gated/g", json={})).status == 200
    assert (await client.get("/context/module/g/g")).status == 200
    (upload_dir / "in").mkdir()
    (upload_dir / "in" / "a.txt").write_text("one\n")
    return client


async def started(upload_dir: Path) -> None:
    for _ in range(WAIT * 20):
        if (upload_dir / "gated.started").exists():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the function never started")


def replaced(owner: str = "gated.gated") -> str:
    return (
        f"Input file 'in/a.txt' was replaced or removed while {owner} ran"
        " (uploaded again, deleted or saved by a source); nothing was kept: run it again"
    )


async def upload_again(client: Any) -> None:
    form = aiohttp.FormData()
    form.add_field("file", b"two\n", filename="a.txt")
    response = await client.post("/service/upload/in/a.txt", data=form)
    assert (response.status, await response.json()) == (200, {"error": None})


async def delete(client: Any) -> None:
    response = await client.delete("/service/files/in/a.txt")
    assert (response.status, await response.json()) == (200, {"error": None})


@pytest.mark.parametrize("change", [upload_again, delete], ids=["uploaded", "deleted"])
async def test_an_input_changed_during_the_run_is_409_naming_it(
    client: Any, upload_dir: Path, change: Any
) -> None:
    run = asyncio.create_task(client.post("/module/g/gated", json={"files": ["in/a.txt"]}))
    await started(upload_dir)
    await change(client)
    (upload_dir / "gated.open").write_text("")
    response = await asyncio.wait_for(run, WAIT)
    assert (response.status, await response.json()) == (409, {"error": replaced()})
    # Nothing of the run is kept.
    assert list((upload_dir / "outputs").iterdir()) == []


async def test_a_task_whose_input_changed_fails_with_the_message(
    client: Any, upload_dir: Path
) -> None:
    response = await client.post("/module/g/gated?async=1", json={"files": ["in/a.txt"]})
    assert response.status == 202, await response.text()
    task_id = (await response.json())["task_id"]
    await started(upload_dir)
    await upload_again(client)
    (upload_dir / "gated.open").write_text("")
    task = await wait_task(client, task_id)
    assert (task["status"], task["error"], task["result"]) == ("FAILURE", replaced(), None)


async def test_an_unchanged_input_runs_as_before(client: Any, upload_dir: Path) -> None:
    (upload_dir / "gated.open").write_text("")
    response = await client.post("/module/g/gated", json={"files": ["in/a.txt"]})
    body = await response.json()
    assert response.status == 200, body
    assert [f["filename"].rsplit("/", 1)[1] for f in body["files"]] == ["copy.txt"]
    copy = upload_dir / body["files"][0]["filename"]
    assert copy.read_text() == "one\n"
