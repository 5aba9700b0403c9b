"""/docs (Swagger UI) and /redoc render offline in headless Chromium and list every route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from service.api.openapi.generator import template
from service.api.openapi.versions import API_PREFIX
from service.routes import API_ROUTES
from tests.browser import chromium
from tests.live import LiveServer, live_server

WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server("-insecure", cwd=tmp_path_factory.mktemp("docs-pages")) as running:
        yield running


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    # Offline: every address but this machine's loopback goes to a proxy that is not there,
    # so a page that needed a CDN would fail to render.
    offline = ("--proxy-server=http://127.0.0.1:9",)
    with chromium(tmp_path / "chromium-profile", height=4000, flags=offline) as driver:
        yield driver


def documented_routes() -> list[tuple[str, str]]:
    return [(route.method, API_PREFIX + template(route.path)) for route in API_ROUTES]


def loaded_only_from(browser: Any, origin: str) -> None:
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert urls, "the page loaded nothing"
    outside = [
        url for url in urls if not url.startswith(origin + "/") and not url.startswith("blob:")
    ]
    assert outside == [], outside
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def test_swagger_ui_lists_every_route(server: LiveServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server.url}/docs")
    wait = WebDriverWait(browser, WAIT_SECONDS)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock"))
    shown = {
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.strip(),
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"),
        )
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }
    missing = [route for route in documented_routes() if route not in shown]
    assert missing == [], missing
    assert "dffml-service-http" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    loaded_only_from(browser, server.url)


def test_redoc_lists_every_route(server: LiveServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server.url}/redoc")
    wait = WebDriverWait(browser, WAIT_SECONDS)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']"))
    # ReDoc writes each operation's method and path in its right-hand panel.
    text = browser.find_element(By.TAG_NAME, "body").get_attribute("textContent")
    missing = [(method, path) for method, path in documented_routes() if path not in text]
    assert missing == [], missing
    operations = browser.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")
    assert len(operations) >= len(API_ROUTES)
    loaded_only_from(browser, server.url)


def test_pages_and_assets_are_served_from_the_package(server: LiveServer) -> None:
    for path, kind in (("/docs", "text/html"), ("/redoc", "text/html")):
        response = requests.get(server.url + path, timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith(kind)
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    js = requests.get(f"{server.url}/docs/assets/swagger-ui-bundle.js", timeout=10)
    assert (js.status_code, js.headers["Content-Type"]) == (200, "text/javascript; charset=utf-8")
    missing = requests.get(f"{server.url}/docs/assets/..%2Fswagger.html", timeout=10)
    assert missing.status_code == 404
    assert list(missing.json()) == ["error"]
