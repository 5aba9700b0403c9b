"""Adaptive batching over HTTP: concurrent predicts and V2 infers on one model context become
one model call, a lone request waits at most -max-batch-time, answers never cross, one bad
request fails alone, and a full queue answers 503 with Retry-After (docs/inference.md)."""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

import pytest

from service.api.keys import BATCHING
from tests.helpers import until
from tests.models_helpers import LINE_MODEL, add_model, add_source, expect, line_records


async def trained(client: Any) -> None:
    await add_source(client, "people", line_records(range(8)))
    await add_model(client, "slr", "salary", LINE_MODEL)
    await expect(await client.post("/model/salary/train", json=["people"]))


async def metric(client: Any, name: str) -> float:
    text = await (await client.get("/metrics")).text()
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found is not None, name
    return float(found.group(1))


async def predict(client: Any, records: dict[str, Any]) -> Any:
    return await client.post("/model/salary/predict/0", json=records)


async def test_off_by_default_every_predict_is_its_own_call(client: Any) -> None:
    await trained(client)
    await asyncio.gather(*(predict(client, {"a": {"features": {"Years": i}}}) for i in range(4)))
    assert await metric(client, "dffml_batches_total") == 0


async def test_concurrent_requests_become_one_model_call(make_client: Any) -> None:
    # A full batch goes at once: the long max time is never waited for.
    client = await make_client(max_batch_size=8, max_batch_time=60.0)
    await trained(client)
    answers = await asyncio.gather(
        *(predict(client, {"a": {"features": {"Years": i}}}) for i in range(8))
    )
    for years, response in enumerate(answers):
        body = await expect(response)
        assert body["records"]["a"]["features"] == {"Years": years}
        assert body["records"]["a"]["prediction"]["Salary"]["value"] == pytest.approx(
            10 * years + 10
        )
    assert await metric(client, "dffml_batches_total") == 1
    assert await metric(client, "dffml_batch_records_total") == 8
    assert await metric(client, "dffml_batch_largest") == 8


async def test_a_lone_request_waits_at_most_the_batch_time(make_client: Any) -> None:
    client = await make_client(max_batch_size=64, max_batch_time=0.05)
    await trained(client)
    body = await expect(await predict(client, {"a": {"features": {"Years": 2}}}))
    assert body["records"]["a"]["prediction"]["Salary"]["value"] == pytest.approx(30)
    assert await metric(client, "dffml_batches_total") == 1
    # It waited for company until its time was up, then went alone.
    assert await metric(client, "dffml_batch_queue_seconds_total") >= 0.05


async def test_answers_never_cross_under_concurrency(make_client: Any) -> None:
    client = await make_client(max_batch_size=16, max_batch_time=0.01)
    await trained(client)
    rng = random.Random(30)

    async def one_predict(n: int) -> None:
        # Every request uses the same keys: only the features tell the answers apart.
        years = [rng.randrange(1000) for _ in range(rng.randint(1, 5))]
        records = {f"k{i}": {"features": {"Years": y}} for i, y in enumerate(years)}
        body = await expect(await predict(client, records))
        assert list(body["records"]) == list(records)
        for key, record in body["records"].items():
            assert record["features"] == records[key]["features"]
            expected = 10 * records[key]["features"]["Years"] + 10
            assert record["prediction"]["Salary"]["value"] == pytest.approx(expected)

    async def one_infer(n: int) -> None:
        years = [rng.randrange(1000) for _ in range(rng.randint(1, 5))]
        tensor = {"name": "Years", "datatype": "INT64", "shape": [len(years)], "data": years}
        body = await expect(
            await client.post("/v2/models/salary/infer", json={"id": str(n), "inputs": [tensor]})
        )
        assert body["id"] == str(n)
        assert body["outputs"][0]["data"] == pytest.approx([10 * y + 10 for y in years])

    await asyncio.gather(*(one_predict(n) if n % 2 else one_infer(n) for n in range(64)))
    batches = await metric(client, "dffml_batches_total")
    assert await metric(client, "dffml_batch_requests_total") == 64
    assert batches < 64  # some requests shared a call


async def test_one_bad_request_fails_alone(make_client: Any) -> None:
    client = await make_client(max_batch_size=3, max_batch_time=60.0)
    await trained(client)
    good, bad, other = await asyncio.gather(
        predict(client, {"a": {"features": {"Years": 1}}}),
        predict(client, {"a": {"features": {"Age": 1}}}),
        predict(client, {"a": {"features": {"Years": 3}}}),
    )
    assert (await expect(bad, 400)) == {"error": "Record 'a' is missing feature 'Years'"}
    assert (await expect(good))["records"]["a"]["prediction"]["Salary"]["value"] == 20
    assert (await expect(other))["records"]["a"]["prediction"]["Salary"]["value"] == 40


async def test_a_full_queue_answers_503_with_retry_after(make_client: Any) -> None:
    client = await make_client(max_batch_size=10, max_batch_time=60.0, max_batch_queue=10)
    await trained(client)
    six = {str(i): {"features": {"Years": i}} for i in range(6)}
    first = asyncio.ensure_future(predict(client, six))
    batching = client.server.app[BATCHING]
    await until(lambda: batching.waiting() == 6, "the first request waits in the queue")
    refused = await predict(client, six)
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert "batch queue is full" in (await refused.json())["error"]
    assert await metric(client, "dffml_batch_refused_total") == 1
    # Four more fill the batch: the first request is answered with them.
    four = {str(i): {"features": {"Years": i}} for i in range(4)}
    last = await expect(await predict(client, four))
    assert len((await expect(await first))["records"]) == 6
    assert len(last["records"]) == 4


async def test_a_request_of_a_full_batch_or_more_goes_straight_to_the_model(
    make_client: Any,
) -> None:
    # Larger than the queue itself: it must still be answered, at once.
    client = await make_client(max_batch_size=4, max_batch_time=60.0, max_batch_queue=4)
    await trained(client)
    records = {str(i): {"features": {"Years": i}} for i in range(10)}
    body = await expect(await predict(client, records))
    assert len(body["records"]) == 10
    assert await metric(client, "dffml_batches_total") == 0


async def test_a_models_own_config_overrides_the_servers_batching(make_client: Any) -> None:
    client = await make_client()  # batching off on the server
    await add_source(client, "people", line_records(range(8)))
    own = {**LINE_MODEL, "max_batch_size": 4, "max_batch_time": 60.0}
    await add_model(client, "slr", "salary", own)
    await expect(await client.post("/model/salary/train", json=["people"]))
    answers = await asyncio.gather(
        *(predict(client, {"a": {"features": {"Years": i}}}) for i in range(4))
    )
    for years, response in enumerate(answers):
        value = (await expect(response))["records"]["a"]["prediction"]["Salary"]["value"]
        assert value == pytest.approx(10 * years + 10)
    assert await metric(client, "dffml_batches_total") == 1

    # And 0 turns it off for one model of a server that batches.
    server_on = await make_client(max_batch_size=4, max_batch_time=60.0)
    await add_source(server_on, "people", line_records(range(8)))
    await add_model(server_on, "slr", "salary", {**LINE_MODEL, "max_batch_size": 0})
    await expect(await server_on.post("/model/salary/train", json=["people"]))
    await expect(await predict(server_on, {"a": {"features": {"Years": 1}}}))
    assert await metric(server_on, "dffml_batches_total") == 0
    bad = await server_on.post(
        "/configure/model/slr/other", json={**LINE_MODEL, "max_batch_time": -1}
    )
    assert "max_batch_time" in (await expect(bad, 400))["error"]
