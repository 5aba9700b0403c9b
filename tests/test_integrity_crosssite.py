"""-auth none: a page on another site cannot change anything, and a foreign Host name (DNS
rebinding) reaches nothing on a loopback server; DFFML clients (no Origin) work unchanged."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import MakeClient
from tests.helpers import as_user

EVIL = "http://evil.example"


async def _labels(client: Any) -> set[str]:
    return set((await (await client.get("/labels")).json())["source"])


async def test_state_changing_requests_from_another_site_are_refused(client: Any) -> None:
    own = f"http://127.0.0.1:{client.server.port}"
    refused = [
        {"Origin": EVIL},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},  # no Origin, but the browser says cross-site
        {"Origin": own, "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://127.0.0.1:1"},  # another port of this machine is another site
    ]
    for headers in refused:
        # A body that needs no CORS preflight, as a page's form or fetch sends it.
        response = await client.post(
            "/configure/source/memory/x",
            data='{"records": {}}',
            headers={**headers, "Content-Type": "text/plain"},
        )
        assert response.status == 403, headers
        assert (await response.json())["error"].startswith("Cross-site request refused")
    form = aiohttp.FormData()
    form.add_field("file", b"a,b\n1,2\n", filename="x.csv")
    upload = await client.post("/service/upload/x.csv", data=form, headers={"Origin": EVIL})
    assert upload.status == 403
    assert (await client.get("/service/files/x.csv")).status == 404
    assert await _labels(client) == set()

    # Reading stays open (CORS keeps the answer from the page); DFFML clients send no Origin;
    # the server's own pages send its own.
    assert (await client.get("/labels", headers={"Origin": EVIL})).status == 200
    for headers in ({}, {"Origin": own, "Sec-Fetch-Site": "same-origin"}):
        response = await client.post(
            "/configure/source/memory/x", json={"records": {}}, headers=headers
        )
        assert response.status == 200, await response.text()
    assert await _labels(client) == {"x"}


async def test_cors_domains_allow_their_origins(make_client: MakeClient) -> None:
    client = await make_client(cors_domains=(EVIL,))
    response = await client.post(
        "/configure/source/memory/x",
        json={"records": {}},
        headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status == 200
    other = await client.post(
        "/configure/source/memory/y", json={"records": {}}, headers={"Origin": "http://b.example"}
    )
    assert other.status == 403


async def test_a_loopback_server_accepts_only_loopback_host_names(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    port = client.server.port
    for host in ("evil.example", f"evil.example:{port}", "10.0.0.1", "127.0.0.1.evil.example"):
        response = await client.get("/list/models", headers={"Host": host})
        assert response.status == 400, host
        assert "loopback" in (await response.json())["error"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        assert (await client.get("/list/models", headers={"Host": host})).status == 200, host
    # -allowed-hosts names others; a server on another address leaves Host to it.
    named = await make_client(allowed_hosts=("api.example",))
    assert (await named.get("/list/models", headers={"Host": "api.example"})).status == 200
    everywhere = await make_client(addr="0.0.0.0")
    assert (await everywhere.get("/list/models", headers={"Host": "box.lan"})).status == 200


async def test_with_tokens_the_origin_is_not_judged(make_client: MakeClient) -> None:
    client = await make_client(auth="token", secret_key=b"c" * 32)
    response = await client.post(
        "/configure/source/memory/x",
        json={"records": {}},
        headers={**as_user(client, "bob"), "Origin": EVIL},
    )
    assert response.status == 200
