"""-cors-domains, -static, -redirect and -allow-caching, through the real CLI."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.live import LiveServer, live_server

GOOD = "http://app.example"
OTHER = "http://other.example"
NO_CACHE = ("Pragma", "Cache-Control", "Expires")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    site = root / "site"
    (site / "docs").mkdir(parents=True)
    (site / "index.html").write_text("<h1>home</h1>")
    (site / "docs" / "index.html").write_text("<h1>docs</h1>")
    (site / "a b.txt").write_text("spaced")
    (root / "secret.txt").write_text("outside")
    (root / "site-evil").mkdir()
    (root / "site-evil" / "x.txt").write_text("sibling")
    (site / "escape.txt").symlink_to(root / "secret.txt")
    return site


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[LiveServer]:
    with live_server(
        *("-insecure", "-static", str(site), "-cors-domains", GOOD, "http://second.example"),
        *("-redirect", "GET", "/old", "/health", "-redirect", "post", "/moved", "/elsewhere"),
        *("-redirect", "POST", "/signup", "/configure/source/memory/signed"),
        *("-max-body-size", "2048"),
        cwd=site.parent,
    ) as server:
        yield server


def raw(server: LiveServer, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """Send ``path`` byte for byte (no client-side normalisation of ``..`` or escapes)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_preflight_for_a_listed_origin(server: LiveServer) -> None:
    response = requests.options(
        f"{server.url}/configure/source/memory/s",
        headers={
            "Origin": GOOD,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == GOOD
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"].lower() == "content-type"


def test_preflight_for_an_unlisted_origin_gets_no_allow_origin(server: LiveServer) -> None:
    response = requests.options(
        f"{server.url}/configure/source/memory/s",
        headers={"Origin": OTHER, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.status_code == 403
    assert OTHER in response.json()["error"]


def test_actual_requests_carry_the_allow_origin_header(server: LiveServer) -> None:
    for origin in (GOOD, "http://second.example"):
        response = requests.get(f"{server.url}/health", headers={"Origin": origin}, timeout=10)
        assert response.headers["Access-Control-Allow-Origin"] == origin
    response = requests.post(
        f"{server.url}/configure/source/memory/s",
        json={},
        headers={"Origin": GOOD},
        timeout=10,
    )
    assert (response.status_code, response.json()) == (200, {"error": None})
    assert response.headers["Access-Control-Allow-Origin"] == GOOD
    # A browser client must be able to read error bodies too.
    response = requests.post(
        f"{server.url}/configure/source/nope/s", json={}, headers={"Origin": GOOD}, timeout=10
    )
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == GOOD
    response = requests.get(f"{server.url}/health", headers={"Origin": OTHER}, timeout=10)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_unrouted_errors_are_readable_cross_origin(server: LiveServer) -> None:
    """A wrong method or path from a listed origin: the browser can read the JSON error."""
    for method, path in (("PUT", "/health"), ("POST", "/no/such/path")):
        response = requests.request(
            method, f"{server.url}{path}", headers={"Origin": GOOD}, timeout=10
        )
        assert response.status_code == 405, path
        assert response.json() == {"error": "405: Method Not Allowed"}
        assert response.headers["Access-Control-Allow-Origin"] == GOOD
        assert "Origin" in response.headers["Vary"]
        response = requests.request(
            method, f"{server.url}{path}", headers={"Origin": OTHER}, timeout=10
        )
        assert "Access-Control-Allow-Origin" not in response.headers


def test_static_serves_after_the_api(server: LiveServer) -> None:
    home = requests.get(f"{server.url}/", timeout=10)
    assert (home.status_code, home.text) == (200, "<h1>home</h1>")
    assert home.headers["Content-Type"].startswith("text/html")
    assert requests.get(f"{server.url}/index.html", timeout=10).text == "<h1>home</h1>"
    assert requests.get(f"{server.url}/docs/", timeout=10).text == "<h1>docs</h1>"
    assert requests.get(f"{server.url}/a%20b.txt", timeout=10).text == "spaced"
    # API routes win over files.
    assert requests.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"
    for name in NO_CACHE:
        assert name in home.headers


def test_static_miss_is_a_json_404(server: LiveServer) -> None:
    response = requests.get(f"{server.url}/missing.html", timeout=10)
    assert (response.status_code, response.json()) == (404, {"error": "404: Not Found"})


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/docs/..%2F..%2Fsecret.txt",
        "/docs/%2E%2E/%2E%2E/secret.txt",
        "/..%5Csecret.txt",
        "/../site-evil/x.txt",
        "/%2e%2e/site-evil/x.txt",
        "/escape.txt",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
        "/a%00b",
    ],
)
def test_static_refuses_traversal(server: LiveServer, path: str) -> None:
    status, headers, body = raw(server, "GET", path)
    # docs/cli.md: any path that resolves outside DIR is `404 {"error": "404: Not Found"}`.
    assert (status, json.loads(body)) == (404, {"error": "404: Not Found"}), (path, body)
    assert headers["Content-Type"].startswith("application/json")
    assert b"outside" not in body
    assert b"sibling" not in body
    assert b"root:" not in body


def test_static_wrong_method_is_a_json_405(server: LiveServer) -> None:
    response = requests.delete(f"{server.url}/index.html", timeout=10)
    assert response.status_code == 405
    assert response.json() == {"error": "405: Method Not Allowed"}
    assert "GET" in response.headers["Allow"]


def test_body_too_large_is_a_json_413(server: LiveServer) -> None:
    response = requests.post(
        f"{server.url}/configure/source/memory/big",
        data=b'{"records": {"k": {"features": {"x": "' + b"y" * 4096 + b'"}}}}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert "2048" in response.json()["error"]
    # The same without a Content-Length: a chunked body is cut off at the limit too.
    chunks = (b'{"records": {"k": {"features": {"x": "', b"y" * 4096, b'"}}}}')
    response = requests.post(
        f"{server.url}/configure/source/memory/big",
        data=iter(chunks),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert "2048" in response.json()["error"]


def test_redirects(server: LiveServer) -> None:
    response = requests.get(f"{server.url}/old", allow_redirects=False, timeout=10)
    assert (response.status_code, response.headers["Location"]) == (307, "/health")
    assert requests.get(f"{server.url}/old", timeout=10).json()["status"] == "ok"
    response = requests.post(f"{server.url}/moved", allow_redirects=False, timeout=10)
    assert (response.status_code, response.headers["Location"]) == (307, "/elsewhere")


def test_a_redirected_post_stays_a_post_with_its_body(server: LiveServer) -> None:
    config = {"records": {"ann": {"features": {"Years": 3}}}}
    response = requests.post(f"{server.url}/signup", json=config, timeout=10)
    assert (response.status_code, response.json()) == (200, {"error": None})
    assert [r.status_code for r in response.history] == [307]
    assert requests.get(f"{server.url}/context/source/signed/s", timeout=10).status_code == 200
    record = requests.get(f"{server.url}/source/s/record/ann", timeout=10).json()
    assert record["features"] == {"Years": 3}


def test_no_cache_headers_unless_allow_caching(server: LiveServer, site: Path) -> None:
    for path in ("/health", "/index.html", "/missing", "/list/sources"):
        response = requests.get(f"{server.url}{path}", timeout=10)
        assert response.headers["Cache-Control"] == "no-cache, no-store, max-age=0, must-revalidate"
        assert response.headers["Pragma"] == "no-cache"
        assert response.headers["Expires"] == "-1"
    with live_server(
        "-insecure", "-allow-caching", "-static", str(site), cwd=site.parent
    ) as cached:
        for path in ("/health", "/index.html", "/missing"):
            response = requests.get(f"{cached.url}{path}", timeout=10)
            for name in NO_CACHE:
                assert name not in response.headers, (path, name)
        # Files keep their validators, so browsers can revalidate cheaply.
        page = requests.get(f"{cached.url}/index.html", timeout=10)
        again = requests.get(
            f"{cached.url}/index.html", headers={"If-None-Match": page.headers["ETag"]}, timeout=10
        )
        assert again.status_code == 304


def test_any_origin_with_a_star(tmp_path: Path) -> None:
    with live_server("-insecure", "-cors-domains", "*", cwd=tmp_path) as server:
        response = requests.options(
            f"{server.url}/configure/source/memory/s",
            headers={"Origin": OTHER, "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert response.headers["Access-Control-Allow-Origin"] == OTHER
        response = requests.get(f"{server.url}/health", headers={"Origin": OTHER}, timeout=10)
        assert response.headers["Access-Control-Allow-Origin"] == OTHER
        response = requests.get(f"{server.url}/nowhere", headers={"Origin": OTHER}, timeout=10)
        assert (response.status_code, response.json()) == (404, {"error": "404: Not Found"})
        assert response.headers["Access-Control-Allow-Origin"] == OTHER
