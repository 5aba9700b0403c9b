"""One error shape for every failure, and the response headers."""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

import pytest
from aiohttp import web

import service
from service.routes import API_ROUTES
from tests import fakes
from tests.conftest import MakeClient
from tests.docs_pages import reference

NO_CACHE = {
    "Pragma": "no-cache",
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
    "Expires": "-1",
}


async def test_unknown_path_and_method(client: Any) -> None:
    response = await client.get("/nowhere")
    assert (response.status, await response.json()) == (404, {"error": "404: Not Found"})
    response = await client.post("/health")
    assert (response.status, await response.json()) == (405, {"error": "405: Method Not Allowed"})
    assert "GET" in response.headers["Allow"]


async def test_body_too_large_is_413(make_client: MakeClient) -> None:
    client = await make_client(max_body_size=1024)
    response = await client.post("/configure/source/memory/x", data=b"{" + b" " * 4096 + b"}")
    assert response.status == 413
    assert "1024" in (await response.json())["error"]


async def test_uncaught_error_is_500_without_traceback(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(registry=fakes.fake_registry())
    response = await client.post("/configure/source/exploding/x", json={"filename": "a"})
    assert (response.status, await response.json()) == (500, {"error": "Internal Server Error"})
    assert "secret internals" in caplog.text


async def test_no_cache_headers_everywhere(client: Any) -> None:
    for path in ("/health", "/nowhere", "/list/sources"):
        response = await client.get(path)
        for name, value in NO_CACHE.items():
            assert response.headers[name] == value


async def test_allow_caching_drops_headers(make_client: MakeClient) -> None:
    client = await make_client(allow_caching=True)
    response = await client.get("/health")
    assert "Pragma" not in response.headers


async def test_health(client: Any) -> None:
    response = await client.get("/health")
    # The installed distribution's own version (docs/http-api.md), not any string.
    assert (response.status, await response.json()) == (
        200,
        {
            "status": "ok",
            "version": importlib.metadata.version("dffml-service-http"),
            "api_version": "1",
        },
    )
    assert importlib.metadata.version("dffml-service-http") == service.__version__


def test_every_route_is_documented() -> None:
    # docs/http-api.md, or the page of the capability that adds the route (linked from it).
    readme = reference("http-api.md")
    for route in API_ROUTES:
        assert isinstance(route, web.RouteDef)
        # A parameter's regex ({path:.*}) is routing detail; the README names it {path}.
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.path)
        assert f"{route.method} {path}" in readme, f"{route.method} {path}"
