"""A pipeline's options are capped in bytes: one definition cannot make every listing huge."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from service.api.handlers import tasks as tasks_handlers
from service.engine.pipelines import runner
from service.engine.pipelines.validate import MAX_OPTIONS_BYTES
from service.plugins.modules.dataset import Dataset
from service.plugins.registry import Registry
from service.settings import Preload
from tests.conftest import MakeClient
from tests.helpers import as_user
from tests.models_helpers import LINE_MODEL, line_records


async def test_pipeline_options_over_the_cap_are_refused(make_client: MakeClient) -> None:
    registry = Registry.from_entry_points()
    registry.register("module", "dataset", Dataset)
    client = await make_client(
        registry=registry, preloads=(Preload("module", "ds", "dataset", {}),)
    )

    def task(column: str) -> dict[str, Any]:
        return {"module": "ds", "function": "split", "options": {"stratify": column}}

    # Within the cap in total, over it across tasks.
    fits = [task("c" * (MAX_OPTIONS_BYTES // 4)) for _ in range(3)]
    created = await client.post("/pipelines", json={"name": "fits", "tasks": fits})
    assert created.status == 201, await created.text()
    refused = await client.post("/pipelines", json={"name": "big", "tasks": [*fits, *fits]})
    assert refused.status == 400
    error = (await refused.json())["error"]
    assert error.startswith(f"a pipeline's options take at most {MAX_OPTIONS_BYTES} bytes")
    listed = await (await client.get("/pipelines")).json()
    assert [p["name"] for p in listed["pipelines"]] == ["fits"]


SPLIT = {"module": "ds", "function": "split", "options": {"ratio": 0.5}}


async def test_the_pipeline_cap_holds_exactly_under_concurrent_requests_and_per_user(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "MAX_PIPELINES", 6)
    monkeypatch.setattr(runner, "USER_SHARE", 3)
    registry = Registry.from_entry_points()
    registry.register("module", "dataset", Dataset)
    client = await make_client(
        registry=registry,
        preloads=(Preload("module", "ds", "dataset", {}),),
        auth="token",
        secret_key=b"b" * 32,
    )
    admin = as_user(client, "root", admin=True)

    async def create(headers: dict[str, str], name: str) -> int:
        body = {"name": name, "tasks": [SPLIT]}
        return int((await client.post("/pipelines", json=body, headers=headers)).status)

    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    # bob's share is 3, whatever he sends at once.
    bobs = await asyncio.gather(*(create(bob, f"b{i}") for i in range(10)))
    assert sorted(bobs) == [201] * 3 + [409] * 7
    # The admin (no share) fills the server's cap of 6 exactly, however many at once.
    admins = await asyncio.gather(*(create(admin, f"x{i}") for i in range(10)))
    assert sorted(admins) == [201] * 3 + [409] * 7
    assert await create(alice, "a") == 409
    listed = await (await client.get("/pipelines?all=1", headers=admin)).json()
    assert listed["total"] == 6


async def test_a_tasks_page_ends_early_past_its_byte_budget(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client()
    for path, body in (
        ("/configure/source/memory/line", {"records": line_records(range(1, 11))}),
        ("/configure/model/slr/m", LINE_MODEL),
    ):
        assert (await client.post(path, json=body)).status == 200
    for kind in ("source/line/line", "model/m/m"):
        assert (await client.get(f"/context/{kind}")).status == 200
    made = []
    for _ in range(5):
        accepted = await client.post("/model/m/train?async=1", json=["line"])
        assert accepted.status == 202
        made.append((await accepted.json())["task_id"])
    for _ in range(1200):  # until all have finished (alike in size): 0.05 s apart, a minute
        whole = await (await client.get("/tasks?limit=5")).json()
        if all(task["status"] == "SUCCESS" for task in whole["tasks"]):
            break
        await asyncio.sleep(0.05)
    assert whole["total"] == 5
    assert len(whole["tasks"]) == 5
    one = len(json.dumps(whole["tasks"][0]))
    monkeypatch.setattr(tasks_handlers, "LISTING_MAX_BYTES", 2 * one + one // 2)
    seen: list[str] = []
    while len(seen) < 5:
        page = await (await client.get(f"/tasks?limit=5&offset={len(seen)}")).json()
        assert page["total"] == 5
        assert 1 <= len(page["tasks"]) <= 2  # the budget holds two, never none
        seen += [task["task_id"] for task in page["tasks"]]
    assert sorted(seen) == sorted(made)
