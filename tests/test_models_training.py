"""Training runs in a worker, never on the event loop, one training per model at a time."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

from service.plugins.models.slr import Line, SLRModel
from service.plugins.models.trainable import Row
from service.plugins.registry import Registry
from tests.conftest import MakeClient
from tests.models_helpers import LINE_MODEL, add_model, add_source, expect, line_records

WAIT = 30  # seconds a test waits for a step before it fails instead of hanging


class GatedSLR(SLRModel):
    """The real slr, whose fit (in its worker thread) waits until the test opens a gate."""

    events: ClassVar[list[str]] = []
    started: ClassVar[threading.Semaphore]
    gate: ClassVar[threading.Semaphore]

    def fit(self, rows: list[Row], targets: list[Any]) -> Line:
        self.events.append("fit start")
        self.started.release()
        assert self.gate.acquire(timeout=WAIT)
        self.events.append("fit end")
        return super().fit(rows, targets)


async def gated_client(make_client: MakeClient) -> Any:
    GatedSLR.events = []
    GatedSLR.started = threading.Semaphore(0)
    GatedSLR.gate = threading.Semaphore(0)
    registry = Registry.from_entry_points()
    registry.register("model", "gated", GatedSLR)
    client = await make_client(registry=registry)
    await add_source(client, "train", line_records(range(4)))
    await add_model(client, "gated", "m", LINE_MODEL)
    return client


async def started() -> None:
    assert await asyncio.to_thread(GatedSLR.started.acquire, timeout=WAIT)


async def test_other_requests_are_answered_while_a_training_runs(make_client: MakeClient) -> None:
    client = await gated_client(make_client)
    training = asyncio.create_task(client.post("/model/m/train", json=["train"]))
    await started()
    # The training is inside fit, holding its worker; the loop still answers.
    assert (await client.get("/list/sources")).status == 200
    response = await client.post("/model/m/predict/0", json={"a": {"features": {"Years": 1}}})
    assert (response.status, await response.json()) == (400, {"error": "Model not trained"})
    assert not training.done()
    assert GatedSLR.events == ["fit start"]
    GatedSLR.gate.release()
    assert await expect(await training) == {"error": None}
    assert GatedSLR.events == ["fit start", "fit end"]


async def test_trainings_of_one_model_run_one_at_a_time(make_client: MakeClient) -> None:
    client = await gated_client(make_client)
    first = asyncio.create_task(client.post("/model/m/train", json=["train"]))
    await started()
    second = asyncio.create_task(client.post("/model/m/train", json=["train"]))
    # Let the second request reach the server and queue behind the first.
    for _ in range(20):
        await asyncio.sleep(0.01)
        assert (await client.get("/health")).status == 200
    assert GatedSLR.events == ["fit start"]
    GatedSLR.gate.release()
    await started()
    GatedSLR.gate.release()
    for task in (first, second):
        assert await expect(await task) == {"error": None}
    assert GatedSLR.events == ["fit start", "fit end", "fit start", "fit end"]
