"""-rate-limit: a token bucket per client; 429 with Retry-After and the JSON envelope beyond it."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yarl

from service.api.keys import AUTH
from service.api.openapi.generator import build_spec
from service.kernel.rate import Rate
from service.kernel.users import User
from service.observability.ratelimit import TokenBuckets
from service.plugins.registry import Registry
from service.routes import API_ROUTES
from service.settings import Settings
from tests.conftest import MakeClient
from tests.live import live_server


def test_rates_parse() -> None:
    assert Rate("10") == 10.0
    assert Rate("10/s") == 10.0
    assert Rate("120/m") == 2.0
    assert Rate("1.5 / h") == 1.5 / 3600
    for bad in ("", "fast", "0", "-1/s", "10/d", "1e400"):
        with pytest.raises(ValueError):  # noqa: PT011  (argparse only needs ValueError)
            Rate(bad)


def test_token_bucket_refills_at_the_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3, max_clients=10)
    assert [buckets.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 100.0) == pytest.approx(0.5)  # one token in half a second
    assert buckets.take("b", 100.0) == 0.0  # another client has its own bucket
    assert buckets.take("a", 100.5) == 0.0
    assert buckets.take("a", 100.5) > 0
    assert buckets.take("a", 200.0) == 0.0  # idle: back to full, never above the burst
    assert [buckets.take("a", 200.0) for _ in range(3)][-1] > 0


def test_token_buckets_are_bounded() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_clients=3)
    for i in range(1000):
        buckets.take(f"client-{i}", 0.0)
        assert len(buckets) <= 3
    # The clients first seen are the ones dropped when none has refilled.
    assert buckets.take("client-999", 0.0) > 0
    assert buckets.take("client-0", 0.0) == 0.0


def test_refilled_buckets_are_dropped_first() -> None:
    buckets = TokenBuckets(rate=1.0, burst=2, max_clients=4)
    for name in ("old", "a", "b", "c"):
        assert buckets.take(name, 0.0) == 0.0
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("a", 0.0) > 0  # "a" has spent its burst
    # At 0.5 s no bucket has refilled: the first seen ("old") makes room for "d".
    assert buckets.take("d", 0.5) == 0.0
    assert len(buckets) == 4
    # At 1.5 s "b" and "c" (one token left at 0 s) and "d" are full again, "a" is not:
    # the full ones go, "a" keeps its spent state and "e" comes in.
    assert buckets.take("e", 1.5) == 0.0
    assert len(buckets) == 2
    assert buckets.take("a", 1.5) == 0.0  # 1.5 tokens refilled since 0 s
    assert buckets.take("a", 1.5) > 0


async def test_beyond_the_burst_429_with_retry_after_and_envelope(make_client: MakeClient) -> None:
    # 1 request an hour: nothing refills while the test runs, so the counts are exact.
    client = await make_client(rate_limit=Rate("1/h"), rate_limit_burst=2)
    assert (await client.get("/list/sources")).status == 200
    assert (await client.get("/nowhere")).status == 404  # every request counts
    refused = await client.get("/list/sources", headers={"X-Request-ID": "rl-1"})
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 3000
    assert refused.headers["X-Request-ID"] == "rl-1"
    body = await refused.json()
    assert list(body) == ["error"]
    assert "Too many requests" in body["error"]
    assert "-rate-limit" in body["error"]
    assert (await client.get("/v1/list/sources")).status == 429
    # /health* is never limited.
    for path in ("/health", "/health/live", "/health/ready", "/v1/health", "/v1/health/ready"):
        assert (await client.get(path)).status == 200, path
    # Judged on the decoded path, whatever the query string or percent-encoding.
    for path in ("/health?probe=1", "/%68ealth/live", "/v1/health%2Fready"):
        assert (await client.get(yarl.URL(path, encoded=True))).status != 429, path
    assert (await client.get(yarl.URL("/%6Cist/sources", encoded=True))).status == 429


async def test_with_auth_each_user_has_a_bucket(make_client: MakeClient) -> None:
    """With -auth token the guard checks the limit once it knows the user: a bucket per user,
    not per address (every client of the test shares 127.0.0.1)."""
    client = await make_client(
        auth="token", secret_key=b"k" * 40, rate_limit=Rate("1/h"), rate_limit_burst=1
    )
    tokens = client.app[AUTH].tokens
    headers = {
        name: {"Authorization": f"Bearer {tokens.issue(User(name)).token}"}
        for name in ("alice", "bob")
    }
    for name in ("alice", "bob"):
        assert (await client.get("/list/sources", headers=headers[name])).status == 200
    refused = await client.get("/list/sources", headers=headers["alice"])
    assert refused.status == 429
    assert refused.headers["Retry-After"].isdigit()
    assert list(await refused.json()) == ["error"]
    # Refused before the limit (no token): such requests take nothing from any bucket.
    assert (await client.get("/list/sources")).status == 401


def test_the_spec_documents_429_only_with_a_rate_limit() -> None:
    limited = build_spec(API_ROUTES, Registry.empty(), Settings(rate_limit=Rate("5/s")))
    responses = limited["paths"]["/v1/list/{kinds}"]["get"]["responses"]
    assert "Retry-After" in responses["429"]["headers"]
    assert "429" not in limited["paths"]["/v1/health/live"]["get"]["responses"]


def test_cli_rate_limit(tmp_path: Path) -> None:
    with live_server(
        "-insecure", "-rate-limit", "1/h", "-rate-limit-burst", "1", cwd=tmp_path
    ) as server:
        assert requests.get(f"{server.url}/list/sources", timeout=10).status_code == 200
        refused = requests.get(f"{server.url}/list/sources", timeout=10)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"].isdigit()
        assert requests.get(f"{server.url}/health/ready", timeout=10).status_code == 200
