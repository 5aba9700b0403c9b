"""Training runs in a worker process, never on the event loop, one training per model at a time."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from service.plugins.models.slr import Line, SLRModel
from service.plugins.models.trainable import Row
from service.plugins.registry import Registry
from tests.conftest import MakeClient
from tests.models_helpers import LINE_MODEL, add_model, add_source, expect, line_records

WAIT = 30  # seconds a test waits for a step before it fails instead of hanging


class GatedSLR(SLRModel):
    """The real slr, whose fit (in its worker process) waits until the test opens a gate.

    The worker shares nothing with the test but files: fit N writes ``started-N`` (with its
    pid) in the model's location and waits for ``gate-N`` there.
    """

    def fit(self, rows: list[Row], targets: list[Any]) -> Line:
        folder = self.config.location
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.glob("started-*"))) + 1
        (folder / f"started-{n}").write_text(str(os.getpid()))
        deadline = time.monotonic() + WAIT
        while not (folder / f"gate-{n}").exists():
            assert time.monotonic() < deadline, "the test never opened the gate"
            time.sleep(0.01)
        (folder / f"ended-{n}").write_text("")
        return super().fit(rows, targets)


async def gated_client(make_client: MakeClient, upload_dir: Path) -> Any:
    registry = Registry.from_entry_points()
    registry.register("model", "gated", GatedSLR)
    client = await make_client(registry=registry)
    await add_source(client, "train", line_records(range(4)))
    await add_model(client, "gated", "m", {**LINE_MODEL, "location": "gated"})
    return client


def events(upload_dir: Path) -> list[str]:
    folder = upload_dir / "gated"
    names = sorted(p.name for p in folder.glob("*-*")) if folder.exists() else []
    return [n for n in names if n.startswith(("started", "ended"))]


async def started(upload_dir: Path, n: int) -> int:
    path = upload_dir / "gated" / f"started-{n}"
    for _ in range(WAIT * 20):
        if path.exists() and path.read_text():
            return int(path.read_text())
        await asyncio.sleep(0.05)
    raise AssertionError(f"training {n} never started")


def open_gate(upload_dir: Path, n: int) -> None:
    (upload_dir / "gated" / f"gate-{n}").write_text("")


async def test_other_requests_are_answered_while_a_training_runs(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await gated_client(make_client, upload_dir)
    training = asyncio.create_task(client.post("/model/m/train", json=["train"]))
    pid = await started(upload_dir, 1)
    assert pid != os.getpid()  # a worker process, not a thread of the server
    # The training is inside fit, holding its worker; the loop still answers.
    assert (await client.get("/list/sources")).status == 200
    response = await client.post("/model/m/predict/0", json={"a": {"features": {"Years": 1}}})
    assert (response.status, await response.json()) == (400, {"error": "Model not trained"})
    assert not training.done()
    assert events(upload_dir) == ["started-1"]
    open_gate(upload_dir, 1)
    assert await expect(await training) == {"error": None}
    assert events(upload_dir) == ["ended-1", "started-1"]
    response = await client.post("/model/m/predict/0", json={"a": {"features": {"Years": 1}}})
    assert (await expect(response))["records"]["a"]["prediction"]["Salary"]["value"] == 20


async def test_trainings_of_one_model_run_one_at_a_time(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await gated_client(make_client, upload_dir)
    first = asyncio.create_task(client.post("/model/m/train", json=["train"]))
    await started(upload_dir, 1)
    second = asyncio.create_task(client.post("/model/m/train", json=["train"]))
    # Let the second request reach the server and queue behind the first.
    for _ in range(20):
        await asyncio.sleep(0.01)
        assert (await client.get("/health")).status == 200
    assert events(upload_dir) == ["started-1"]
    open_gate(upload_dir, 1)
    await started(upload_dir, 2)
    open_gate(upload_dir, 2)
    for task in (first, second):
        assert await expect(await task) == {"error": None}
    assert events(upload_dir) == ["ended-1", "ended-2", "started-1", "started-2"]


async def test_predictions_use_the_previous_fit_until_a_retraining_completes(
    make_client: MakeClient, upload_dir: Path
) -> None:
    # docs/http-api.md: "predictions keep using the previous training until the new one is
    # complete".
    client = await gated_client(make_client, upload_dir)
    steeper = {str(i): {"features": {"Years": i, "Salary": 100 * i}} for i in range(4)}
    await add_source(client, "steeper", steeper)
    one = {"a": {"features": {"Years": 1}}}

    async def salary() -> float:
        body = await expect(await client.post("/model/m/predict/0", json=one))
        value: float = body["records"]["a"]["prediction"]["Salary"]["value"]
        return value

    first = asyncio.create_task(client.post("/model/m/train", json=["train"]))
    await started(upload_dir, 1)
    open_gate(upload_dir, 1)
    assert await expect(await first) == {"error": None}
    assert await salary() == pytest.approx(20)  # y = 10x + 10

    retraining = asyncio.create_task(client.post("/model/m/train", json=["steeper"]))
    await started(upload_dir, 2)
    # The new fit is under way in its worker: predictions still come from the first.
    assert await salary() == pytest.approx(20)
    assert not retraining.done()
    open_gate(upload_dir, 2)
    assert await expect(await retraining) == {"error": None}
    assert await salary() == pytest.approx(100)  # y = 100x
