"""The source routes through HTTP: record, update, iterkey paging, NDJSON streaming."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from service.api.keys import CURSORS
from service.plugins.registry import Registry
from service.plugins.sources.memory import MemorySource
from service.sdk.base import Source, SourceContext
from service.sdk.config import field
from service.sdk.records import Record
from tests.conftest import MakeClient

EVENTS: list[str] = []


@dataclasses.dataclass(frozen=True)
class CountingConfig:
    count: int = field("how many records", default=10)


class CountingSource(Source[CountingConfig]):
    """Records 0..count-1 from a generator that logs when it is closed."""

    CONFIG = CountingConfig

    def context(self) -> CountingContext:
        return CountingContext(self.config.count)


class CountingContext(SourceContext):
    def __init__(self, count: int) -> None:
        self.count = count

    async def record(self, key: str) -> Record:
        return Record(key)

    async def records(self) -> AsyncIterator[Record]:
        try:
            for i in range(self.count):
                yield Record(str(i), {"i": i})
        finally:
            EVENTS.append("closed")


class BreakingSource(CountingSource):
    """Fails after ``count`` records, as a source whose file vanishes mid-read would."""

    def context(self) -> BreakingContext:
        return BreakingContext(self.config.count)


class BreakingContext(CountingContext):
    async def records(self) -> AsyncIterator[Record]:
        for i in range(self.count):
            yield Record(str(i), {"i": i})
        raise OSError("disk gone")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registry() -> Registry:
    reg = Registry.empty()
    reg.register("source", "memory", MemorySource)
    reg.register("source", "counting", CountingSource)
    reg.register("source", "breaking", BreakingSource)
    return reg


def memory_records(n: int) -> dict[str, Any]:
    return {f"k{i}": {"features": {"i": i, "name": f"n{i}"}} for i in range(n)}


async def setup_source(client: Any, ctx: str, plugin: str, config: dict[str, Any]) -> None:
    response = await client.post(f"/configure/source/{plugin}/{ctx}", json=config)
    assert response.status == 200, await response.text()
    response = await client.get(f"/context/source/{ctx}/{ctx}")
    assert response.status == 200, await response.text()


@pytest.fixture
async def mem(make_client: MakeClient) -> Any:
    EVENTS.clear()
    client = await make_client(registry=registry())
    await setup_source(client, "s", "memory", {"records": memory_records(7)})
    return client


async def page_all(client: Any, ctx: str, size: int) -> list[list[str]]:
    """Every page's keys, following iterkeys to the end."""
    response = await client.get(f"/source/{ctx}/records/{size}")
    assert response.status == 200
    body = await response.json()
    pages = [list(body["records"])]
    while body["iterkey"] is not None:
        response = await client.get(f"/source/{ctx}/records/{body['iterkey']}/{size}")
        assert response.status == 200
        body = await response.json()
        pages.append(list(body["records"]))
    return pages


async def test_record_and_missing_record(mem: Any) -> None:
    body = await (await mem.get("/source/s/record/k3")).json()
    assert body == {"key": "k3", "features": {"i": 3, "name": "n3"}, "extra": {}}
    assert await (await mem.get("/source/s/record/nope")).json() == {"key": "nope"}


async def test_unknown_context_is_404_on_every_route(mem: Any) -> None:
    for method, path in [
        ("GET", "/source/x/record/k1"),
        ("POST", "/source/x/update/k1"),
        ("GET", "/source/x/records/3"),
        ("GET", "/source/x/records/abc/3"),
        ("DELETE", "/source/x/records/abc"),
        ("GET", "/source/x/records"),
    ]:
        response = await mem.request(method, path, json={"features": {}})
        assert response.status == 404, path
        assert await response.json() == {"error": "Source not loaded"}


async def test_update_then_read_back(mem: Any) -> None:
    response = await mem.post("/source/s/update/k1", json={"features": {"i": 100}})
    assert (response.status, await response.json()) == (200, {"error": None})
    body = await (await mem.get("/source/s/record/k1")).json()
    assert body["features"] == {"i": 100}
    response = await mem.post("/source/s/update/new", json={"features": {"x": 1.5}})
    assert response.status == 200
    assert (await page_all(mem, "s", 100))[0][-1] == "new"


@pytest.mark.parametrize("body", [b"[1]", b"{bad", b'{"features": 3}', b'{"extra": []}', b""])
async def test_update_bad_body_is_400(mem: Any, body: bytes) -> None:
    response = await mem.post("/source/s/update/k1", data=body)
    assert response.status == 400
    assert isinstance((await response.json())["error"], str)
    assert (await (await mem.get("/source/s/record/k1")).json())["features"]["i"] == 1


async def test_paging_in_source_order(mem: Any) -> None:
    assert await page_all(mem, "s", 3) == [["k0", "k1", "k2"], ["k3", "k4", "k5"], ["k6"]]
    assert await page_all(mem, "s", 1) == [[f"k{i}"] for i in range(7)]
    response = await mem.get("/source/s/records/3")
    body = await response.json()
    assert body["records"]["k0"] == {"key": "k0", "features": {"i": 0, "name": "n0"}, "extra": {}}


async def test_chunk_reaching_the_end_has_null_iterkey(mem: Any) -> None:
    # 7 records in a chunk of 7 (and of more) is a single call, as in DFFML.
    for size in (7, 8, 1000):
        body = await (await mem.get(f"/source/s/records/{size}")).json()
        assert body["iterkey"] is None
        assert len(body["records"]) == 7
    # Exactly at a chunk boundary on a later page: 6 records in chunks of 3.
    await setup_source(mem, "six", "memory", {"records": memory_records(6)})
    assert await page_all(mem, "six", 3) == [["k0", "k1", "k2"], ["k3", "k4", "k5"]]


async def test_empty_source(mem: Any) -> None:
    await setup_source(mem, "empty", "memory", {})
    body = await (await mem.get("/source/empty/records/10")).json()
    assert body == {"iterkey": None, "records": {}}
    assert len(mem.app[CURSORS]) == 0


@pytest.mark.parametrize("size", ["0", "-1", "abc", "1.5", "1e3"])
async def test_bad_chunk_size_is_400(mem: Any, size: str) -> None:
    response = await mem.get(f"/source/s/records/{size}")
    assert response.status == 400
    assert "chunk_size must be an integer >= 1" in (await response.json())["error"]
    iterkey = (await (await mem.get("/source/s/records/2")).json())["iterkey"]
    response = await mem.get(f"/source/s/records/{iterkey}/{size}")
    assert response.status == 400
    # The cursor survives a bad request.
    response = await mem.get(f"/source/s/records/{iterkey}/2")
    assert list((await response.json())["records"]) == ["k2", "k3"]


async def test_iterkeys_are_opaque_and_distinct(mem: Any) -> None:
    keys = {(await (await mem.get("/source/s/records/1")).json())["iterkey"] for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(key) >= 40
        assert key.replace("-", "").replace("_", "").isalnum()


async def test_iterkey_of_another_context_is_not_found(mem: Any) -> None:
    await setup_source(mem, "other", "memory", {"records": memory_records(5)})
    iterkey = (await (await mem.get("/source/other/records/2")).json())["iterkey"]
    for method, path in [
        ("GET", f"/source/s/records/{iterkey}/2"),
        ("DELETE", f"/source/s/records/{iterkey}"),
    ]:
        response = await mem.request(method, path)
        assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})
    # Still usable by its own context.
    body = await (await mem.get(f"/source/other/records/{iterkey}/2")).json()
    assert list(body["records"]) == ["k2", "k3"]


async def test_made_up_iterkey_is_not_found(mem: Any) -> None:
    response = await mem.get("/source/s/records/" + "a" * 43 + "/2")
    assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})


async def test_finished_iterkey_is_gone(mem: Any) -> None:
    iterkey = (await (await mem.get("/source/s/records/4")).json())["iterkey"]
    body = await (await mem.get(f"/source/s/records/{iterkey}/4")).json()
    assert body["iterkey"] is None
    response = await mem.get(f"/source/s/records/{iterkey}/4")
    assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})
    assert len(mem.app[CURSORS]) == 0


async def test_delete_releases_the_iterkey_and_closes_its_reader(make_client: MakeClient) -> None:
    EVENTS.clear()
    client = await make_client(registry=registry())
    await setup_source(client, "c", "counting", {"count": 10})
    iterkey = (await (await client.get("/source/c/records/3")).json())["iterkey"]
    assert EVENTS == []
    response = await client.delete(f"/source/c/records/{iterkey}")
    assert (response.status, await response.json()) == (200, {"error": None})
    assert EVENTS == ["closed"]
    for method, path in [
        ("GET", f"/source/c/records/{iterkey}/3"),
        ("DELETE", f"/source/c/records/{iterkey}"),
    ]:
        response = await client.request(method, path)
        assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})


async def test_idle_iterkey_expires(make_client: MakeClient) -> None:
    EVENTS.clear()
    client = await make_client(registry=registry(), iterkey_ttl=60.0)
    clock = FakeClock()
    client.app[CURSORS].clock = clock
    await setup_source(client, "c", "counting", {"count": 10})
    first = (await (await client.get("/source/c/records/2")).json())["iterkey"]
    second = (await (await client.get("/source/c/records/2")).json())["iterkey"]
    clock.now += 59
    # Using a cursor resets its idle time.
    assert (await client.get(f"/source/c/records/{second}/2")).status == 200
    clock.now += 2
    response = await client.get(f"/source/c/records/{first}/2")
    assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})
    assert EVENTS == ["closed"]
    body = await (await client.get(f"/source/c/records/{second}/2")).json()
    assert list(body["records"]) == ["4", "5"]
    clock.now += 61
    await client.app[CURSORS].expire()
    assert len(client.app[CURSORS]) == 0
    assert EVENTS == ["closed", "closed"]


async def test_oldest_iterkey_is_evicted_over_the_cap(make_client: MakeClient) -> None:
    EVENTS.clear()
    client = await make_client(registry=registry(), iterkey_max=2)
    await setup_source(client, "c", "counting", {"count": 10})
    keys = [(await (await client.get("/source/c/records/1")).json())["iterkey"] for _ in range(2)]
    # Touch the first so the second is now the least recently used.
    assert (await client.get(f"/source/c/records/{keys[0]}/1")).status == 200
    keys.append((await (await client.get("/source/c/records/1")).json())["iterkey"])
    assert len(client.app[CURSORS]) == 2
    assert EVENTS == ["closed"]
    assert (await client.get(f"/source/c/records/{keys[1]}/1")).status == 404
    for key in (keys[0], keys[2]):
        assert (await client.get(f"/source/c/records/{key}/1")).status == 200


async def test_closing_the_context_releases_its_iterkeys(make_client: MakeClient) -> None:
    EVENTS.clear()
    client = await make_client(registry=registry())
    await setup_source(client, "c", "counting", {"count": 10})
    iterkey = (await (await client.get("/source/c/records/3")).json())["iterkey"]
    # Reopening the context label replaces the context: the old context's cursors go.
    assert (await client.get("/context/source/c/c")).status == 200
    assert EVENTS == ["closed"]
    response = await client.get(f"/source/c/records/{iterkey}/3")
    assert (response.status, await response.json()) == (404, {"error": "iterkey not found"})
    iterkey = (await (await client.get("/source/c/records/3")).json())["iterkey"]
    assert (await client.delete("/context/source/c")).status == 200
    assert EVENTS == ["closed", "closed"]
    assert len(client.app[CURSORS]) == 0


async def test_shutdown_closes_open_cursors(make_client: MakeClient) -> None:
    EVENTS.clear()
    client = await make_client(registry=registry())
    await setup_source(client, "c", "counting", {"count": 10})
    for _ in range(3):
        assert (await (await client.get("/source/c/records/3")).json())["iterkey"]
    await client.close()
    assert EVENTS == ["closed"] * 3


async def test_concurrent_pages_of_one_iterkey_never_repeat_a_record(
    make_client: MakeClient,
) -> None:
    client = await make_client(registry=registry())
    await setup_source(client, "c", "counting", {"count": 100})
    iterkey = (await (await client.get("/source/c/records/5")).json())["iterkey"]
    responses = await asyncio.gather(
        *(client.get(f"/source/c/records/{iterkey}/5") for _ in range(10))
    )
    seen: list[str] = []
    for response in responses:
        assert response.status == 200
        seen += list((await response.json())["records"])
    assert len(seen) == len(set(seen)) == 50
    assert set(seen) == {str(i) for i in range(5, 55)}


async def test_ndjson_streams_every_record(mem: Any) -> None:
    response = await mem.get("/source/s/records", headers={"Accept": "application/x-ndjson"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-ndjson"
    lines = (await response.read()).splitlines()
    assert [orjson.loads(line)["key"] for line in lines] == [f"k{i}" for i in range(7)]
    assert orjson.loads(lines[2]) == {"key": "k2", "features": {"i": 2, "name": "n2"}, "extra": {}}


async def test_ndjson_streams_past_one_read(make_client: MakeClient) -> None:
    EVENTS.clear()
    client = await make_client(registry=registry())
    await setup_source(client, "c", "counting", {"count": 2500})
    response = await client.get("/source/c/records", headers={"Accept": "application/x-ndjson"})
    keys = [orjson.loads(line)["key"] for line in (await response.read()).splitlines()]
    assert keys == [str(i) for i in range(2500)]
    assert EVENTS == ["closed"]


async def test_records_without_chunk_size_refuses_other_types(mem: Any) -> None:
    response = await mem.get("/source/s/records", headers={"Accept": "text/html"})
    assert response.status == 406
    assert "application/x-ndjson" in (await response.json())["error"]


async def test_ndjson_failure_after_the_first_line_cuts_the_stream(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(registry=registry())
    await setup_source(client, "b", "breaking", {"count": 1500})
    response = await client.get("/source/b/records", headers={"Accept": "application/x-ndjson"})
    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    assert "disk gone" in caplog.text
    # Before any line is out, the failure is an ordinary JSON error.
    await setup_source(client, "early", "breaking", {"count": 10})
    response = await client.get("/source/early/records", headers={"Accept": "application/x-ndjson"})
    assert (response.status, await response.json()) == (500, {"error": "Internal Server Error"})
