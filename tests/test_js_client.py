"""-js: the JavaScript client at /api.js (its behaviour is tested in Node: tests/js/)."""

from __future__ import annotations

from pathlib import Path

from service.web import JS_CLIENT
from tests.conftest import MakeClient


async def test_api_js_only_with_flag(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/api.js")
    assert (response.status, await response.json()) == (404, {"error": "404: Not Found"})


async def test_api_js_served_before_static(make_client: MakeClient, tmp_path: Path) -> None:
    static = tmp_path / "site"
    static.mkdir()
    (static / "api.js").write_text("not the client")
    client = await make_client(js=True, static=static)
    response = await client.get("/api.js")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert await response.text() == JS_CLIENT.read_text(encoding="utf-8")
    assert "class DFFMLHTTPAPI" in await response.text()


async def test_static_directory_redirects_to_its_slash(
    make_client: MakeClient, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    (site / "js" / "index.html").write_text("<p>page</p>")
    client = await make_client(static=site)
    response = await client.get("/js?x=1", allow_redirects=False)
    assert response.status == 301
    assert response.headers["Location"] == "/js/?x=1"
    response = await client.get("/js")
    assert (response.status, await response.text()) == (200, "<p>page</p>")
    assert response.url.path == "/js/"
