"""/metrics scraped as Prometheus would: its counters move as the test's requests go by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import FormData
from prometheus_client.parser import text_string_to_metric_families

from service.api.keys import METRICS
from service.observability.metrics import LATENCY_BUCKETS, Metrics
from tests.conftest import MakeClient
from tests.live import live_server

RECORDS = {str(i): {"features": {"x": i}} for i in range(5)}
RECORD = "/source/{ctx}/record/{key}"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(await response.text())


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_request_counters_latency_and_bytes_move(make_client: MakeClient) -> None:
    client = await make_client()
    for path, body in (
        ("/configure/source/memory/s", {"records": RECORDS}),
        ("/context/source/s/s", None),
    ):
        assert (await client.post(path, json=body)).status == 200
    before = await scrape(client)
    for key in ("1", "2", "3"):
        assert (await client.get(f"/source/s/record/{key}")).status == 200
    assert (await client.get("/source/nope/record/1")).status == 404
    assert (await client.get("/v1/source/s/record/4")).status == 200
    for path in ("/no/such/path/1", "/no/such/path/2"):
        assert (await client.get(path)).status == 404
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"route": RECORD, "method": "GET"}
    assert moved("http_requests_total", **ok, status="200") == 3
    assert moved("http_requests_total", **ok, status="404") == 1
    # Templates, never raw paths: the /v1 alias is its own template; unmatched paths share one.
    assert moved("http_requests_total", route="/v1" + RECORD, method="GET", status="200") == 1
    assert moved("http_requests_total", route="unmatched", method="GET", status="404") == 2
    assert not any("/no/such" in str(labels) for _, labels in after)
    assert moved("http_request_duration_seconds_count", **ok) == 4
    assert moved("http_request_duration_seconds_sum", **ok) > 0
    assert moved("http_request_duration_seconds_bucket", **ok, le="+Inf") == 4
    # Buckets are cumulative: each holds the requests at most its bound, so they never fall.
    buckets = [
        (float(dict(labels)["le"]), count)
        for (name, labels), count in after.items()
        if name == "http_request_duration_seconds_bucket"
        and {("route", RECORD), ("method", "GET")} <= labels
    ]
    counts = [count for _, count in sorted(buckets)]
    assert len(counts) == len(LATENCY_BUCKETS) + 1
    assert counts == sorted(counts)
    assert counts[-1] == value(after, "http_request_duration_seconds_count", **ok)
    assert moved("http_response_bytes_total", **ok) > 4 * len('{"key":"1"}')
    # The scrape before this one is itself counted, and in flight while it runs.
    assert moved("http_requests_total", route="/metrics", method="GET", status="200") == 1
    assert value(after, "http_requests_in_flight") == 1


async def test_live_gauges_labels_iterkeys_workers(make_client: MakeClient) -> None:
    client = await make_client()
    before = await scrape(client)
    assert value(before, "dffml_labels", kind="source") == 0
    assert value(before, "dffml_workers_busy") == 0
    assert value(before, "dffml_workers_limit") >= 1
    for path, body in (
        ("/configure/source/memory/s", {"records": RECORDS}),
        ("/context/source/s/s", None),
    ):
        assert (await client.post(path, json=body)).status == 200
    page = await (await client.get("/source/s/records/2")).json()
    assert page["iterkey"] is not None
    during = await scrape(client)
    assert value(during, "dffml_labels", kind="source") == 1
    assert value(during, "dffml_contexts", kind="source") == 1
    assert value(during, "dffml_labels", kind="model") == 0
    assert value(during, "dffml_iterkeys") == 1
    assert (await client.delete(f"/source/s/records/{page['iterkey']}")).status == 200
    assert (await client.delete("/configure/source/s")).status == 200
    after = await scrape(client)
    assert value(after, "dffml_iterkeys") == 0
    assert value(after, "dffml_labels", kind="source") == 0


async def test_upload_bytes_and_gauges_other_components_register(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client()
    queue = {"queued": 2, "running": 1}
    client.app[METRICS].gauge(
        "dffml_example_jobs",
        "A component's jobs by status",
        ("status",),
        lambda: [((k,), v) for k, v in queue.items()],
    )
    before = await scrape(client)
    form = FormData()
    form.add_field("file", b"x" * 10_000, filename="a.bin")
    assert (await client.post("/service/upload/a.bin", data=form)).status == 200
    queue["running"] = 3
    download = await client.get("/service/files/a.bin")
    assert len(await download.read()) == 10_000
    after = await scrape(client)
    uploaded = value(after, "dffml_upload_bytes_total") - value(before, "dffml_upload_bytes_total")
    assert 10_000 <= uploaded < 11_000  # the file and its multipart framing
    # A download is sent by aiohttp after the middleware; it is counted once sent, in full.
    files = {"route": "/service/files/{path}", "method": "GET"}
    assert value(after, "http_requests_total", **files, status="200") == 1
    assert value(after, "http_response_bytes_total", **files) > 10_000
    assert value(after, "dffml_example_jobs", status="queued") == 2
    assert value(after, "dffml_example_jobs", status="running") == 3


async def test_metrics_off(make_client: MakeClient) -> None:
    client = await make_client(metrics="off")
    assert (await client.get("/health")).status == 200
    response = await client.get("/metrics")
    assert (response.status, await response.json()) == (
        404,
        {"error": "Metrics are off (-metrics off)"},
    )
    assert "X-Request-ID" in response.headers  # ids do not depend on metrics


def test_live_server_metrics_scraped(tmp_path: Path) -> None:
    with live_server("-insecure", cwd=tmp_path) as server:
        for _ in range(3):
            requests.get(f"{server.url}/list/sources", timeout=10)
        found = samples(requests.get(f"{server.url}/metrics", timeout=10).text)
    labels = {"route": "/list/{kinds}", "method": "GET", "status": "200"}
    assert value(found, "http_requests_total", **labels) == 3
    with live_server("-insecure", "-metrics", "off", cwd=tmp_path) as server:
        assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404


def test_a_duration_counts_in_the_first_bucket_whose_bound_it_does_not_exceed() -> None:
    metrics = Metrics()
    route = metrics.route("/r", "BREW")  # a method outside the known ones is "other"
    for elapsed in (0.0005, 0.00051, 75.0):
        route.record(200, elapsed, 10)
    found = samples(metrics.exposition().decode())
    labels = {"route": "/r", "method": "other"}

    def bucket(le: str) -> float:
        return value(found, "http_request_duration_seconds_bucket", **labels, le=le)

    assert (bucket("0.0005"), bucket("0.001"), bucket("60.0"), bucket("+Inf")) == (1, 2, 2, 3)
    assert value(found, "http_request_duration_seconds_sum", **labels) == pytest.approx(75.00101)
    assert value(found, "http_response_bytes_total", **labels) == 30
    assert value(found, "http_requests_total", **labels, status="200") == 3
