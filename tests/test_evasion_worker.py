"""evasion.evade builds its probes in its worker, not in the server (issue 13, point 4).

The server process only reads the probes back a batch at a time and has the model predict
them: a spy model (it lives in the server, as every model does) records each batch it is
asked for, and the probe-building code is counted in the server process, where it must never
run. /health answers while the run is under way (ordering, not timing: the run is held inside
its first prediction until /health has answered).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.plugins.modules import evasion
from service.plugins.registry import Registry
from service.sdk.base import Model, ModelContext
from service.sdk.config import EmptyConfig
from service.sdk.records import Record
from tests.conftest import MakeClient
from tests.test_modules import open_module, write_csv

WAIT = 120  # seconds the whole run may take before the test fails instead of hanging
ROWS = 3_000
COLUMNS = ["a", "b", "c"]


class Spy:
    batches: list[int] = []
    waiting: asyncio.Event
    gate: asyncio.Event


class SumContext(ModelContext):
    """Predicts y = a + b + c; the first batch waits for the test's gate."""

    async def train(self, records: AsyncIterator[Record]) -> None:
        raise AssertionError("never trained")

    async def predict(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        async for record in records:
            value = sum(record.features[c] for c in COLUMNS)
            yield Record(record.key, record.features, prediction={"y": {"value": value}})

    async def predict_batch(self, records: list[Record]) -> list[Record]:
        if not Spy.batches:
            Spy.waiting.set()
            await Spy.gate.wait()
        Spy.batches.append(len(records))
        return [r async for r in self.predict(_iterate(records))]


async def _iterate(records: list[Record]) -> AsyncIterator[Record]:
    for record in records:
        yield record


class SumModel(Model[EmptyConfig]):
    """y = a + b + c."""

    def context(self) -> SumContext:
        return SumContext()


@pytest.fixture
def built_in_server(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Calls of the probe-building code made in this (the server's) process."""
    calls: list[str] = []
    features, probes = evasion.Target.features, evasion._probes

    def counted_features(self: evasion.Target, *args: Any, **kwargs: Any) -> Any:
        calls.append("Target.features")
        return features(self, *args, **kwargs)

    def counted_probes(*args: Any) -> Any:
        calls.append("_probes")
        return probes(*args)

    monkeypatch.setattr(evasion.Target, "features", counted_features)
    monkeypatch.setattr(evasion, "_probes", counted_probes)
    return calls


async def test_probes_are_built_in_the_worker_and_health_answers_during_the_run(
    make_client: MakeClient, upload_dir: Path, built_in_server: list[str]
) -> None:
    Spy.batches, Spy.waiting, Spy.gate = [], asyncio.Event(), asyncio.Event()
    registry = Registry.from_entry_points()
    registry.register("model", "sum", SumModel)
    client = await make_client(registry=registry)
    assert (await client.post("/configure/model/sum/m", json={})).status == 200
    assert (await client.get("/context/model/m/m")).status == 200
    await open_module(client, "evasion", "ev")
    write_csv(upload_dir / "big.csv", COLUMNS, [[i, i % 7, -i] for i in range(ROWS)])
    options = {"model": "m", "goal": "increase", "epsilon": 0.5, "scale": "absolute"}
    options |= {"clip": False, "max_rows": evasion.MAX_ROWS}

    run = asyncio.create_task(
        client.post("/module/ev/evade", json={"files": ["big.csv"], "options": options})
    )
    await asyncio.wait_for(Spy.waiting.wait(), WAIT)
    health = await client.get("/health")
    assert health.status == 200
    assert not run.done()
    Spy.gate.set()
    response = await asyncio.wait_for(run, WAIT)
    body = await response.json()
    assert response.status == 200, body

    probes = ROWS * (1 + 2 * len(COLUMNS))
    # Probes come in batches of PROBE_BATCH, then the perturbed rows, batched the same way.
    assert all(size <= evasion.PROBE_BATCH for size in Spy.batches), Spy.batches
    assert sum(Spy.batches) == probes + ROWS
    assert built_in_server == []
    files = {Path(f["filename"]).name: f for f in body["files"]}
    # y = a + b + c: +0.5 on each of the three columns raises every prediction by 1.5.
    assert files["big.adversarial.csv"]["tags"] == {
        "rows": ROWS,
        "evaded": ROWS,
        "success_rate": 1.0,
    }
    report = json.loads((upload_dir / files["big.evasion.json"]["filename"]).read_text())
    assert (report["queries"], report["mean_shift"]) == (probes + ROWS, 1.5)
    # The probes' spool file is gone: the outputs are the two files, nothing else.
    folder = upload_dir / body["output_dir"]
    assert sorted(p.name for p in folder.iterdir()) == ["big.adversarial.csv", "big.evasion.json"]


async def test_a_run_beyond_the_probe_bound_writes_no_spool(
    make_client: MakeClient, upload_dir: Path
) -> None:
    registry = Registry.from_entry_points()
    registry.register("model", "sum", SumModel)
    client = await make_client(registry=registry)
    await open_module(client, "evasion", "ev")
    columns = [f"f{i}" for i in range(11)]
    write_csv(upload_dir / "wide.csv", columns, [list(range(i, i + 11)) for i in range(10_000)])
    options = {"model": "m", "goal": "increase", "max_rows": evasion.MAX_ROWS}
    response = await client.post(
        "/module/ev/evade", json={"files": ["wide.csv"], "options": options}
    )
    assert (response.status, await response.json()) == (
        400,
        {
            "error": "evade would send 230000 probes (rows x (1 + 2 x features)); at most 200000:"
            " lower max_rows or name fewer features"
        },
    )
    assert list((upload_dir / "outputs").iterdir()) == []
