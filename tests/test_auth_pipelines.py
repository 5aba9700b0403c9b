"""-auth token: pipelines, runs and jobs belong to the user who made them; to anyone else they
do not exist (404), and admins see them all."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from service.settings import Preload
from tests.conftest import MakeClient
from tests.helpers import as_user
from tests.test_modules import write_csv
from tests.test_pipelines import registry


@pytest.fixture
async def client(make_client: MakeClient, upload_dir: Path) -> Any:
    shared = Preload("module", "ds", "dataset", {})
    client = await make_client(
        registry=registry(), auth="token", secret_key=b"s" * 32, preloads=(shared,)
    )
    write_csv(
        upload_dir / "users" / "bob" / "iris.csv", ["x", "y"], [[i, i % 3] for i in range(20)]
    )
    return client


async def call(
    client: Any, headers: dict[str, str], method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    response = await client.request(method, path, json=body, headers=headers)
    return response.status, await response.json()


async def test_a_users_pipelines_runs_and_jobs_are_not_found_by_another(client: Any) -> None:
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    admin = as_user(client, "root", admin=True)
    describe = {"module": "ds", "function": "describe", "options": {}}
    status, pipeline = await call(
        client, bob, "POST", "/pipelines", {"name": "p", "tasks": [describe]}
    )
    assert status == 201, pipeline
    status, run = await call(
        client, bob, "POST", "/runs", {"pipeline": pipeline["id"], "files": ["iris.csv"]}
    )
    assert status == 201, run
    deadline = time.monotonic() + 60
    while run["status"] not in ("FINISHED", "FAILED", "CANCELLED"):
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.05)
        status, run = await call(client, bob, "GET", f"/runs/{run['id']}")
    assert run["status"] == "FINISHED", run
    job = run["jobs"][0]["id"]

    for method, path, body in (
        ("GET", f"/pipelines/{pipeline['id']}", None),
        ("DELETE", f"/pipelines/{pipeline['id']}", None),
        ("POST", "/runs", {"pipeline": pipeline["id"], "files": ["iris.csv"]}),
        ("GET", f"/runs/{run['id']}", None),
        ("GET", f"/runs/{run['id']}/events", None),
        ("DELETE", f"/runs/{run['id']}", None),
        ("POST", f"/runs/{run['id']}/retry", None),
        ("GET", f"/jobs/{job}", None),
    ):
        status, answer = await call(client, alice, method, path, body)
        assert status == 404, (method, path, answer)
        assert set(answer) == {"error"}
    assert await call(client, alice, "GET", "/pipelines") == (200, {"pipelines": [], "total": 0})
    status, runs = await call(client, alice, "GET", "/runs")
    assert (status, runs["total"], runs["runs"]) == (200, 0, [])

    status, mine = await call(client, bob, "GET", "/pipelines")
    assert [p["id"] for p in mine["pipelines"]] == [pipeline["id"]]
    assert (await call(client, bob, "GET", f"/jobs/{job}"))[0] == 200
    # Admins see and manage everything.
    assert (await call(client, admin, "GET", f"/runs/{run['id']}"))[0] == 200
    assert (await call(client, admin, "GET", "/runs"))[1]["total"] == 1
