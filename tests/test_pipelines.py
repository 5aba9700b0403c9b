"""Pipelines, runs and jobs through HTTP, on the local executor (the app's worker pool)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from service.plugins.modules.dataset import Dataset
from service.plugins.registry import Registry
from tests import fakes
from tests.conftest import MakeClient
from tests.test_modules import open_module, read_csv, write_csv


def registry() -> Registry:
    registry = fakes.fake_registry()
    registry.register("module", "dataset", Dataset)
    return registry


async def open_modules(client: Any) -> None:
    await open_module(client, "dataset", "ds")
    await open_module(client, "fake", "f")


@pytest.fixture
async def client(make_client: MakeClient, upload_dir: Path) -> Any:
    client = await make_client(registry=registry())
    await open_modules(client)
    write_csv(upload_dir / "in" / "iris.csv", ["x", "y"], [[i, i % 3] for i in range(20)])
    (upload_dir / "in" / "a.txt").write_text("one\ntwo\n")
    return client


SPLIT = {"module": "ds", "function": "split", "options": {"ratio": 0.75}}
DESCRIBE = {"module": "ds", "function": "describe", "options": {}}


async def call(client: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await client.request(method, path, json=body)
    return response.status, await response.json()


async def create(client: Any, *tasks: dict[str, Any], name: str = "p") -> str:
    status, body = await call(client, "POST", "/pipelines", {"name": name, "tasks": list(tasks)})
    assert status == 201, body
    return str(body["id"])


async def start(client: Any, pipeline: str, *files: str) -> dict[str, Any]:
    status, body = await call(client, "POST", "/runs", {"pipeline": pipeline, "files": list(files)})
    assert status == 201, body
    return body  # type: ignore[no-any-return]


async def until(client: Any, run_id: str, *statuses: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status, run = await call(client, "GET", f"/runs/{run_id}")
        assert status == 200, run
        if run["status"] in statuses:
            return run  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"run stayed {run['status']}: {run}"
        await asyncio.sleep(0.05)


async def test_create_list_get_delete_a_pipeline(client: Any) -> None:
    status, body = await call(
        client, "POST", "/pipelines", {"name": "prepare", "tasks": [SPLIT, DESCRIBE]}
    )
    assert status == 201
    assert body["name"] == "prepare"
    assert body["tasks"] == [SPLIT, DESCRIBE]
    assert body["created"].endswith("Z")
    status, listed = await call(client, "GET", "/pipelines")
    assert (status, listed["total"], listed["pipelines"]) == (200, 1, [body])
    assert await call(client, "GET", f"/pipelines/{body['id']}") == (200, body)
    assert await call(client, "DELETE", f"/pipelines/{body['id']}") == (200, {"error": None})
    status, gone = await call(client, "GET", f"/pipelines/{body['id']}")
    assert (status, gone) == (404, {"error": f"Pipeline {body['id']!r} not found"})
    status, _again = await call(client, "DELETE", f"/pipelines/{body['id']}")
    assert status == 404


async def test_tasks_are_checked_with_the_module_routes_messages(
    client: Any, upload_dir: Path
) -> None:
    # The module route's own message for the same bad option, for comparison.
    status, direct = await call(
        client, "POST", "/module/ds/split", {"files": ["in/iris.csv"], "options": {"ratio": 2}}
    )
    assert status == 400
    cases = [
        ([{"module": "nope", "function": "split"}], "task 0: Module not loaded"),
        (
            [SPLIT, {"module": "ds", "function": "nope"}],
            "task 1: Function 'nope' not found (available: describe, split, convert)",
        ),
        (
            [{"module": "ds", "function": "split", "options": {"ratio": 2}}],
            f"task 0: {direct['error']}",
        ),
        (
            [SPLIT, {"module": "ds", "function": "describe", "extra": 1}],
            "task 1: Unknown key 'extra'",
        ),
        ([], "'tasks' must be a non-empty list"),
        (["split"], "task 0: must be an object"),
    ]
    for tasks, message in cases:
        status, body = await call(client, "POST", "/pipelines", {"name": "p", "tasks": tasks})
        assert status == 400, (tasks, body)
        assert body["error"].startswith(message), (tasks, body)
    status, body = await call(client, "POST", "/pipelines", {"tasks": [SPLIT]})
    assert (status, body) == (400, {"error": "'name' must be a non-empty string"})
    assert (await call(client, "GET", "/pipelines"))[1]["total"] == 0


async def test_two_task_run_chains_outputs_into_job_folders(client: Any, upload_dir: Path) -> None:
    pipeline = await create(client, SPLIT, DESCRIBE)
    run = await start(client, pipeline, "in/iris.csv")
    assert run["status"] in ("PENDING", "RUNNING")
    assert [job["task"] for job in run["jobs"]] == [0, 1]
    assert [job["function"] for job in run["jobs"]] == ["split", "describe"]
    run = await until(client, run["id"], "FINISHED", "FAILED")
    assert run["status"] == "FINISHED", run
    split, describe = run["jobs"]
    folder = f"outputs/run-{run['id']}"
    assert [f["filename"] for f in split["output_files"]] == [
        f"{folder}/job-0/iris.test.csv",
        f"{folder}/job-0/iris.train.csv",
    ]
    assert len(read_csv(upload_dir / folder / "job-0" / "iris.train.csv")) == 15
    # The second job read the first one's outputs (both CSVs), not the run's file.
    assert describe["input_files"] == [f["filename"] for f in split["output_files"]]
    summary = json.loads((upload_dir / folder / "job-1" / "iris.train.describe.json").read_text())
    assert summary["rows"] == 15
    for job in run["jobs"]:
        assert job["status"] == "FINISHED"
        assert job["ran_on"].startswith("local:pid ")
        assert job["started"] <= job["finished"]
        assert job["error"] is None
    assert any("15 train, 5 test rows" in line for line in split["logs"])
    # Each line once: the lines that streamed live are not added again when the job ends.
    assert split["logs"] == ["in/iris.csv: 15 train, 5 test rows"]
    assert len(describe["logs"]) == len(set(describe["logs"])) == 2
    assert await call(client, "GET", f"/jobs/{split['id']}") == (200, split)
    # The outputs are ordinary upload-dir files.
    response = await client.get(f"/service/files/{folder}/job-0/iris.train.csv")
    assert response.status == 200


async def test_a_failed_job_cancels_the_rest_at_once(client: Any) -> None:
    reject = {"module": "f", "function": "reject", "options": {}}
    echo = {"module": "f", "function": "echo", "options": {"count": 1}}
    pipeline = await create(client, reject, echo, echo)
    run = await until(client, (await start(client, pipeline, "in/a.txt"))["id"], "FAILED")
    first, second, third = run["jobs"]
    assert (first["status"], first["error"]) == ("FAILED", "line 3 is not a number")
    assert (second["status"], second["error"]) == ("CANCELLED", "job 0 failed")
    assert (third["status"], third["error"]) == ("CANCELLED", "job 0 failed")
    assert run["error"] == "job 0 failed: line 3 is not a number"


async def test_no_file_of_the_type_the_next_job_takes(client: Any) -> None:
    echo = {"module": "f", "function": "echo", "options": {"count": 1}}
    pipeline = await create(client, DESCRIBE, echo)
    run = await until(client, (await start(client, pipeline, "in/iris.csv"))["id"], "FAILED")
    assert run["jobs"][0]["status"] == "FINISHED"
    assert run["jobs"][1]["status"] == "FAILED"
    assert run["jobs"][1]["error"].startswith("fake.echo takes .txt files; job 0 passed on none")


async def test_runs_check_their_files_and_pipeline(client: Any) -> None:
    pipeline = await create(client, SPLIT)
    cases = [
        ({"pipeline": "nope", "files": ["in/iris.csv"]}, 404, "Pipeline 'nope' not found"),
        (
            {"pipeline": pipeline, "files": ["in/none.csv"]},
            400,
            "task 0: File 'in/none.csv' not found",
        ),
        (
            {"pipeline": pipeline, "files": ["in/a.txt"]},
            400,
            "task 0: dataset.split takes .csv files",
        ),
        ({"pipeline": pipeline, "files": ["../x.csv"]}, 400, "task 0: Attempted path traversal"),
        ({"pipeline": pipeline, "files": []}, 400, "'files' must be a non-empty list"),
        ({"pipeline": pipeline}, 400, "'files' must be a non-empty list"),
    ]
    for body, status, message in cases:
        got, answer = await call(client, "POST", "/runs", body)
        assert (got, answer["error"][: len(message)]) == (status, message), body
    assert (await call(client, "GET", "/runs"))[1] == {"runs": [], "total": 0}


async def test_cancel_stops_the_running_job(client: Any, upload_dir: Path) -> None:
    sleep = {"module": "f", "function": "sleep", "options": {}}
    pipeline = await create(client, sleep, sleep)
    run = await start(client, pipeline, "in/a.txt")
    await until(client, run["id"], "RUNNING")
    pidfile = upload_dir / "outputs" / "sleeper.pid"  # fakes.sleep: beside the run folders
    deadline = time.monotonic() + 30
    while not pidfile.exists():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    status, cancelled = await call(client, "DELETE", f"/runs/{run['id']}")
    assert status == 200
    assert cancelled["status"] == "CANCELLED"
    assert [job["status"] for job in cancelled["jobs"]] == ["CANCELLED", "CANCELLED"]
    assert [job["error"] for job in cancelled["jobs"]] == ["cancelled", "run cancelled"]
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)
    status, again = await call(client, "DELETE", f"/runs/{run['id']}")
    assert (status, again["error"]) == (409, f"Run {run['id']!r} is CANCELLED already")


async def test_deleting_a_pipeline_with_a_run_in_progress_is_409(client: Any) -> None:
    sleep = {"module": "f", "function": "sleep", "options": {}}
    pipeline = await create(client, sleep)
    run = await start(client, pipeline, "in/a.txt")
    status, body = await call(client, "DELETE", f"/pipelines/{pipeline}")
    assert status == 409
    assert "has runs in progress" in body["error"]
    await call(client, "DELETE", f"/runs/{run['id']}")
    assert await call(client, "DELETE", f"/pipelines/{pipeline}") == (200, {"error": None})
    # Its runs stay listed.
    status, runs = await call(client, "GET", "/runs")
    assert (status, runs["total"], runs["runs"][0]["pipeline"]) == (200, 1, pipeline)


async def test_retry_resumes_from_the_failed_job(client: Any, upload_dir: Path) -> None:
    pipeline = await create(
        client, SPLIT, {"module": "f", "function": "echo", "options": {"count": 1}}
    )
    first = await until(client, (await start(client, pipeline, "in/iris.csv"))["id"], "FAILED")
    assert first["jobs"][1]["error"].startswith("fake.echo takes .txt files")
    status, body = await call(client, "POST", f"/runs/{first['id']}/retry")
    assert status == 200, body
    again = await until(client, first["id"], "FAILED", "FINISHED")
    # The finished job was kept as it was, not run again.
    assert again["jobs"][0] == first["jobs"][0]
    assert again["jobs"][1]["status"] == "FAILED"
    status, body = await call(client, "POST", f"/runs/{first['id']}/retry")
    assert status == 200
    status, body = await call(client, "POST", f"/runs/{first['id']}/retry")
    assert status == 409 or body["status"] in ("PENDING", "RUNNING")


async def test_events_follow_a_run_to_its_end(client: Any) -> None:
    pipeline = await create(client, SPLIT, DESCRIBE)
    run = await start(client, pipeline, "in/iris.csv")
    response = await client.get(f"/runs/{run['id']}/events")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = _parse_sse(await asyncio.wait_for(response.text(), 60))
    names = [name for name, _ in events]
    assert names[0] == "status"
    assert events[-1][0] == "status"
    assert events[-1][1]["status"] == "FINISHED"
    job_statuses = [(data["task"], data["status"]) for name, data in events if name == "job"]
    for task in (0, 1):
        seen = [status for t, status in job_statuses if t == task]
        assert seen[-1] == "FINISHED"
    assert any(name == "log" and "train" in data["line"] for name, data in events)
    # A run that has ended: its status, then the stream closes.
    again = _parse_sse(await (await client.get(f"/runs/{run['id']}/events")).text())
    assert [name for name, _ in again] == ["status"]
    assert (await client.get("/runs/nope/events")).status == 404


def _parse_sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_a_restart_fails_what_was_running_and_it_can_be_retried(
    make_client: MakeClient, upload_dir: Path, tmp_path: Path
) -> None:
    state = str(tmp_path / "state.sqlite3")
    (upload_dir / "in").mkdir()
    (upload_dir / "in" / "a.txt").write_text("one\n")
    client = await make_client(registry=registry(), state=state)
    await open_modules(client)
    sleep = {"module": "f", "function": "sleep", "options": {}}
    echo = {"module": "f", "function": "echo", "options": {"count": 2}}
    pipeline = await create(client, sleep, echo)
    run = await start(client, pipeline, "in/a.txt")
    await until(client, run["id"], "RUNNING")
    await client.close()

    client = await make_client(registry=registry(), state=state)
    await open_modules(client)
    status, after = await call(client, "GET", f"/runs/{run['id']}")
    assert status == 200
    assert (after["status"], after["error"]) == ("FAILED", "interrupted: the server stopped")
    assert after["jobs"][0]["status"] == "FAILED"
    assert after["jobs"][0]["error"] == "interrupted: the server stopped"
    assert (after["jobs"][1]["status"], after["jobs"][1]["error"]) == ("CANCELLED", "job 0 failed")
    assert (await call(client, "GET", "/pipelines"))[1]["total"] == 1
    status, retried = await call(client, "POST", f"/runs/{run['id']}/retry")
    assert status == 200
    assert retried["status"] == "PENDING"
    await call(client, "DELETE", f"/runs/{run['id']}")


async def test_without_upload_dir_pipelines_are_501(make_client: MakeClient) -> None:
    client = await make_client(registry=registry(), upload_dir=None)
    status, body = await call(client, "GET", "/pipelines")
    assert (status, body) == (
        501,
        {"error": "Pipelines need the server to be started with -upload-dir"},
    )


async def test_limit_and_offset_errors_are_the_documented_text(client: Any) -> None:
    # "²" passed str.isdigit and then failed int(): a 500 before the shared parser.
    for path in ("/pipelines", "/runs"):
        for query, name, text in [
            ("limit=0", "limit", "0"),
            ("limit=1001", "limit", "1001"),
            ("limit=%C2%B2", "limit", "²"),
            ("limit=%2B5", "limit", "+5"),
            ("offset=-1", "offset", "-1"),
            ("offset=%D9%A3", "offset", "٣"),
        ]:
            maximum = 1000 if name == "limit" else 2**63 - 1
            minimum = 1 if name == "limit" else 0
            assert await call(client, "GET", f"{path}?{query}") == (
                400,
                {
                    "error": f"'{name}' must be a whole number between {minimum} and {maximum}, "
                    f"got {text!r}"
                },
            ), (path, query)
        assert (await call(client, "GET", f"{path}?limit=1000&offset=0"))[0] == 200


async def test_offsets_beyond_what_sqlite_stores_are_400(client: Any) -> None:
    # The fuzzers found these answering 500 (the integer overflowed the SQLite query).
    for path in ("/pipelines", "/runs", "/v1/pipelines"):
        status, body = await call(client, "GET", f"{path}?offset={2**63}")
        assert status == 400, (path, body)
        assert body == {
            "error": f"'offset' must be a whole number between 0 and {2**63 - 1}, got '{2**63}'"
        }
    status, _ = await call(client, "GET", f"/runs?offset={2**63 - 1}")
    assert status == 200
