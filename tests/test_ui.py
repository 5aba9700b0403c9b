"""GET /ui/: the dashboard's files as the real app serves them, and the -ui switch."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

from service.commandline.parser import settings_from_args
from service.web.dashboard import CONTENT_TYPES, UI_ROOT
from tests.conftest import MakeClient
from tests.live import run_cli

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in UI_ROOT.rglob("*") if p.is_file())
API_JS = REPO / "service" / "web" / "static" / "api.js"


def test_the_dashboard_ships_files() -> None:
    names = {p.relative_to(UI_ROOT).as_posix() for p in SHIPPED}
    assert {"index.html", "app.css", "js/main.js"} <= names
    assert all(p.suffix in CONTENT_TYPES for p in SHIPPED), names


def test_every_shipped_file_is_package_data() -> None:
    """setup.py's package_data patterns cover every file under service/web/ui: pip drops others"""
    tree = ast.parse((REPO / "setup.py").read_text())
    call = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"
    )
    package_data = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "package_data"))
    patterns = package_data["service"]
    for path in SHIPPED:
        relative = path.relative_to(REPO / "service").as_posix()
        assert any(
            fnmatch.fnmatch(relative, p) and relative.count("/") == p.count("/") for p in patterns
        ), relative


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """No CDN, no absolute URL: every script, style and import is one of the shipped files."""
    for path in SHIPPED:
        if path.suffix not in (".html", ".js", ".css"):
            continue
        text = path.read_text(encoding="utf-8")
        urls = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, (path, urls)
        for target in re.findall(r"^import .* from \"(.+)\";$", text, flags=re.M):
            assert target.startswith("."), (path, target)
            assert (path.parent / target).resolve().is_file(), (path, target)
    index = (UI_ROOT / "index.html").read_text(encoding="utf-8")
    for target in re.findall(r'(?:src|href)="([^"#]+)"', index):
        assert target == "api.js" or (UI_ROOT / target).is_file(), target


async def test_ui_redirects_to_the_directory(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/ui?x=1", allow_redirects=False)
    assert response.status == 301
    assert response.headers["Location"] == "/ui/?x=1"


async def test_index_with_its_type_and_policy(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/ui/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert await response.text() == (UI_ROOT / "index.html").read_text(encoding="utf-8")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_every_shipped_file_is_served_with_its_type(make_client: MakeClient) -> None:
    client = await make_client()
    for path in SHIPPED:
        response = await client.get("/ui/" + path.relative_to(UI_ROOT).as_posix())
        assert response.status == 200, path
        assert response.headers["Content-Type"] == CONTENT_TYPES[path.suffix], path
        assert await response.read() == path.read_bytes()


async def test_the_page_has_its_own_api_js_without_js(make_client: MakeClient) -> None:
    client = await make_client(js=False)
    response = await client.get("/ui/api.js")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert await response.read() == API_JS.read_bytes()
    assert (await client.get("/api.js")).status == 404


@pytest.mark.parametrize(
    "path",
    [
        "/ui/nope.html",
        "/ui/js",
        "/ui/js/",
        "/ui/%2e%2e/app.py",
        "/ui/js/%2e%2e/%2e%2e/app.py",
        "/ui/..%2fapp.py",
        "/ui/%2Fetc%2Fpasswd",
        "/ui/js/main.js%00.html",
    ],
)
async def test_nothing_else_is_served(make_client: MakeClient, path: str) -> None:
    client = await make_client()
    response = await client.get(path)
    assert response.status == 404, path
    assert await response.json() == {"error": "404: Not Found"}


async def test_ui_off(make_client: MakeClient) -> None:
    client = await make_client(ui=False)
    for path in ("/ui", "/ui/", "/ui/api.js"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 404, path
    assert (await client.get("/health")).status == 200


def test_ui_switch_on_the_command_line(tmp_path: Path) -> None:
    assert settings_from_args([]).ui is True
    assert settings_from_args(["-ui", "off"]).ui is False
    assert settings_from_args(["--ui", "OFF"]).ui is False
    assert settings_from_args(["-ui", "on"]).ui is True
    wrong = run_cli("server", "-ui", "maybe", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "-ui: expected on or off, got 'maybe'" in wrong.stderr
    shown = run_cli("server", "--help", cwd=tmp_path)
    assert "-ui on|off" in shown.stdout
