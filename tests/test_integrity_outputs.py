"""A predict over a source writes its file under a temporary name: until it is complete, the
file is neither listed nor downloadable (a server killed mid-way leaves nothing to download)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from service.engine.tasks.predictions import BATCH
from service.plugins.registry import Registry
from service.sdk.records import Record
from tests import fakes
from tests.conftest import MakeClient
from tests.helpers import until
from tests.models_helpers import LINE_MODEL, line_records
from tests.tasks_helpers import wait_task

GATE = asyncio.Event()
# More than one chunk the predictions are read and written in before the gate.
FIRST, REST = BATCH + 1000, 100


class GatedContext(fakes.FakeSourceContext):
    async def records(self) -> AsyncIterator[Record]:
        for i in range(FIRST + REST):
            if i == FIRST:
                await GATE.wait()
            yield Record(str(i), {"Years": i})


class GatedSource(fakes.FakeSource):
    def context(self) -> GatedContext:
        return GatedContext(self)


async def test_predictions_appear_only_once_complete(
    make_client: MakeClient, upload_dir: Path
) -> None:
    GATE.clear()
    registry = Registry.from_entry_points()
    registry.register("source", "gated", GatedSource)
    client = await make_client(registry=registry)
    (upload_dir / "g.csv").write_text("")
    for path, body in (
        ("/configure/source/memory/line", {"records": line_records(range(1, 11))}),
        ("/configure/source/gated/g", {"filename": "g.csv"}),
        ("/configure/model/slr/m", LINE_MODEL),
    ):
        response = await client.post(path, json=body)
        assert response.status == 200, await response.text()
    for kind in ("source/line/line", "source/g/g", "model/m/m"):
        assert (await client.get(f"/context/{kind}")).status == 200
    assert (await client.post("/model/m/train", json=["line"])).status == 200

    accepted = await client.post("/model/m/predict/0?source=g&async=1")
    assert accepted.status == 202, await accepted.text()
    task_id = (await accepted.json())["task_id"]
    name = f"outputs/{task_id}/predictions.ndjson"
    folder = upload_dir / "outputs" / task_id

    def partial_written() -> bool:
        return folder.is_dir() and any(p.stat().st_size > 0 for p in folder.iterdir())

    await until(partial_written, "the first predictions are written")
    listed = await (await client.get("/service/files")).json()
    assert name not in json.dumps(listed)
    assert (await client.get(f"/service/files/{name}")).status == 404
    assert [p.name for p in folder.iterdir()] != ["predictions.ndjson"]

    GATE.set()

    task = await wait_task(client, task_id)
    assert task["status"] == "SUCCESS", task
    assert [p.name for p in folder.iterdir()] == ["predictions.ndjson"]
    download = await client.get(f"/service/files/{name}")
    assert download.status == 200
    assert len((await download.read()).splitlines()) == FIRST + REST


async def test_a_large_async_body_prediction_is_kept_in_a_file(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client()
    for path, body in (
        ("/configure/source/memory/line", {"records": line_records(range(1, 11))}),
        ("/configure/model/slr/m", LINE_MODEL),
    ):
        assert (await client.post(path, json=body)).status == 200
    for kind in ("source/line/line", "model/m/m"):
        assert (await client.get(f"/context/{kind}")).status == 200
    assert (await client.post("/model/m/train", json=["line"])).status == 200

    small = {str(i): {"features": {"Years": i}} for i in range(10)}
    accepted = await client.post("/model/m/predict/0?async=1", json=small)
    task = await wait_task(client, (await accepted.json())["task_id"])
    assert task["status"] == "SUCCESS", task
    assert set(task["result"]["records"]) == set(small)  # inline, as the route answers

    many = {str(i): {"features": {"Years": i}} for i in range(20_000)}
    accepted = await client.post("/model/m/predict/0?async=1", json=many)
    task_id = (await accepted.json())["task_id"]
    task = await wait_task(client, task_id)
    assert task["status"] == "SUCCESS", task
    name = f"outputs/{task_id}/predictions.ndjson"
    assert task["result"] == {"file": name, "records": 20_000}
    listed = await (await client.get("/tasks")).json()
    assert len(json.dumps(listed)) < 100_000  # the listing no longer carries them
    lines = (upload_dir / name).read_bytes().splitlines()
    assert len(lines) == 20_000
    assert json.loads(lines[5])["key"] == "5"
