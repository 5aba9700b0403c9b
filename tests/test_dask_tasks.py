"""Async tasks on -executor dask://HOST:PORT, through HTTP against the real app, with the
shared distributed.LocalCluster of tests/conftest.py: trainings of the built-in models,
predictions over a source and module runs happen on the cluster's worker processes, and each
task's ``ran_on`` names the worker.

slr stands for every built-in model: they all train and predict through the same
TrainableModel hooks (service/plugins/models/worker_side.py); the scikit models would add
seconds of importing scikit-learn on each worker and test nothing more here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import fakes
from tests.conftest import MakeClient, dask_executor_option, dask_workers
from tests.models_helpers import LINE_MODEL, add_model, add_source, expect, line_records
from tests.tasks_helpers import submit, wait_task
from tests.test_modules import open_module

TEN = {"t": {"features": {"Years": 10}}}


@pytest.fixture
async def client(make_client: MakeClient, dask_cluster: Any) -> Any:
    return await make_client(executor=dask_executor_option(dask_cluster))


async def test_training_and_predicting_a_source_run_on_the_dask_workers(
    client: Any, dask_cluster: Any, upload_dir: Path
) -> None:
    workers = await dask_workers(dask_cluster)
    await add_source(client, "line", line_records(range(1, 41)))
    # Saved where the client names it: the worker writes the file, by the same path.
    await add_model(client, "slr", "m", {**LINE_MODEL, "location": "models/m"})
    trained = await wait_task(
        client, (await submit(client, "POST", "/model/m/train", json=["line"]))["task_id"]
    )
    assert trained["status"] == "SUCCESS", trained
    assert trained["ran_on"] in workers, (trained["ran_on"], workers)
    assert (upload_dir / "models" / "m").is_dir()
    predicted = await expect(await client.post("/model/m/predict/0", json=TEN))
    assert predicted["records"]["t"]["prediction"]["Salary"]["value"] == pytest.approx(110)

    accepted = await submit(client, "POST", "/model/m/predict/0?source=line")
    task = await wait_task(client, accepted["task_id"])
    assert task["status"] == "SUCCESS", task
    assert task["ran_on"] in workers, (task["ran_on"], workers)
    assert task["result"] == {
        "file": f"outputs/{accepted['task_id']}/predictions.ndjson",
        "records": 40,
    }
    lines = [
        json.loads(line) for line in (upload_dir / task["result"]["file"]).read_text().splitlines()
    ]
    by_key = {record["key"]: record for record in lines}
    assert len(by_key) == 40
    assert by_key["10"]["prediction"]["Salary"]["value"] == pytest.approx(110)


async def test_an_async_module_run_happens_on_a_dask_worker(
    make_client: MakeClient, dask_cluster: Any, upload_dir: Path
) -> None:
    workers = await dask_workers(dask_cluster)
    client = await make_client(
        registry=fakes.fake_registry(), executor=dask_executor_option(dask_cluster)
    )
    await open_module(client, "fake", "f")
    (upload_dir / "a.txt").write_text("one\ntwo\n")
    body = {"files": ["a.txt"], "options": {"count": 2}}
    task = await wait_task(
        client, (await submit(client, "POST", "/module/f/echo", json=body))["task_id"]
    )
    assert task["status"] == "SUCCESS", task
    assert task["ran_on"] in workers, (task["ran_on"], workers)
    (output,) = task["result"]["files"]
    assert (upload_dir / output["filename"]).read_text() == "ONE\nONE\nTWO\nTWO\n"
    # The synchronous module route runs there too (its answer is the original wire format).
    status = (await client.post("/module/f/echo", json=body)).status
    assert status == 200
