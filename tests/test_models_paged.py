"""Paged prediction: chunk_size >= 1 answers a chunk and an iterkey for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.models_helpers import LINE_MODEL, add_model, add_source, expect, line_records


async def trained(client: Any) -> None:
    await add_source(client, "train", line_records(range(4)))
    await add_model(client, "slr", "m", LINE_MODEL)
    await expect(await client.post("/model/m/train", json=["train"]))


async def page_through(client: Any, first: Any, chunk_size: int) -> tuple[list[str], int]:
    """Keys in the order they came, and how many calls it took."""
    body = await expect(first)
    keys = list(body["records"])
    calls = 1
    while body["iterkey"] is not None:
        assert len(body["records"]) == chunk_size
        response = await client.get(f"/model/m/predict/{body['iterkey']}/{chunk_size}")
        body = await expect(response)
        for key, record in body["records"].items():
            assert record["prediction"]["Salary"]["value"] == pytest.approx(10 * int(key) + 10)
        keys += list(body["records"])
        calls += 1
    return keys, calls


@pytest.mark.parametrize(
    ("count", "chunk_size", "calls"), [(7, 7, 1), (7, 3, 3), (6, 3, 2), (1, 5, 1)]
)
async def test_every_record_once_from_a_body(
    client: Any, count: int, chunk_size: int, calls: int
) -> None:
    await trained(client)
    ask = {str(i): {"features": {"Years": i}} for i in range(count)}
    first = await client.post(f"/model/m/predict/{chunk_size}", json=ask)
    keys, made = await page_through(client, first, chunk_size)
    assert keys == list(ask)
    assert made == calls


async def test_every_record_once_from_a_source(client: Any) -> None:
    await trained(client)
    await add_source(client, "ask", {str(i): {"features": {"Years": i}} for i in range(1200)})
    first = await client.post("/model/m/predict/500?source=ask")
    keys, calls = await page_through(client, first, 500)
    assert keys == [str(i) for i in range(1200)]
    assert calls == 3


async def test_iterkeys_are_bound_to_their_model_and_source(client: Any) -> None:
    await trained(client)
    await add_model(client, "slr", "other", LINE_MODEL)
    await add_source(client, "ask", {str(i): {"features": {"Years": i}} for i in range(5)})
    body = await expect(await client.post("/model/m/predict/2?source=ask"))
    iterkey = body["iterkey"]
    response = await client.get(f"/model/other/predict/{iterkey}/2")
    assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})
    response = await client.get(f"/source/ask/records/{iterkey}/2")
    assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})
    response = await client.get(f"/model/m/predict/{iterkey}/0")
    assert response.status == 400
    # The source context is replaced: the cursor stops instead of reading a closed source.
    await add_source(client, "ask", {"z": {"features": {"Years": 1}}})
    response = await client.get(f"/model/m/predict/{iterkey}/2")
    assert (response.status, await response.json()) == (404, {"error": "Source not loaded"})
    response = await client.get(f"/model/m/predict/{iterkey}/2")
    assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})


async def test_release_and_model_close_end_iterkeys(client: Any) -> None:
    await trained(client)
    ask = {str(i): {"features": {"Years": i}} for i in range(5)}
    first = await expect(await client.post("/model/m/predict/1", json=ask))
    assert await expect(await client.delete(f"/model/m/predict/{first['iterkey']}")) == {
        "error": None
    }
    response = await client.get(f"/model/m/predict/{first['iterkey']}/1")
    assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})

    second = await expect(await client.post("/model/m/predict/1", json=ask))
    await expect(await client.get("/context/model/m/m"))  # the context is reopened
    response = await client.get(f"/model/m/predict/{second['iterkey']}/1")
    assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})
    response = await client.get("/model/nope/predict/x/1")
    assert (response.status, await response.json()) == (404, {"error": "Model not loaded"})


async def test_untrained_model_refuses_paged_prediction(client: Any) -> None:
    await add_model(client, "slr", "m", LINE_MODEL)
    response = await client.post("/model/m/predict/2", json={"a": {"features": {"Years": 1}}})
    assert (response.status, await response.json()) == (400, {"error": "Model not trained"})


async def test_train_and_page_predictions_over_a_csv_source(client: Any, upload_dir: Path) -> None:
    rows = "".join(f"{i},{10 * i + 10}\n" for i in range(10))
    (upload_dir / "salaries.csv").write_text("Years,Salary\n" + rows)
    await expect(
        await client.post("/configure/source/csv/people", json={"filename": "salaries.csv"})
    )
    await expect(await client.get("/context/source/people/people"))
    await add_model(client, "slr", "m", LINE_MODEL)
    assert await expect(await client.post("/model/m/train", json=["people"])) == {"error": None}

    body = await expect(await client.post("/model/m/predict/4?source=people"))
    seen = dict(body["records"])
    while body["iterkey"] is not None:
        body = await expect(await client.get(f"/model/m/predict/{body['iterkey']}/4"))
        assert not set(body["records"]) & set(seen)  # never a record twice
        seen.update(body["records"])
    assert len(seen) == 10
    for record in seen.values():
        years = record["features"]["Years"]
        assert record["prediction"]["Salary"]["value"] == pytest.approx(10 * years + 10)
