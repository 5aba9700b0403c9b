"""The examples against a server run with -auth token: the Python script's --username and
--token, and the browser page's login form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer, create_user, live_server, run_cli
from tests.test_examples import CSV_ROWS, EXAMPLES, PYTHON_EXAMPLE, browser  # noqa: F401

PASSWORD = "bob-password-1"


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[LiveServer]:
    (tmp_path / "data").mkdir()
    created = create_user("bob", PASSWORD, tmp_path)
    assert created.returncode == 0, created.stderr
    with live_server(
        *("-insecure", "-js", "-static", str(EXAMPLES), "-upload-dir", "data", "-auth", "token"),
        cwd=tmp_path,
    ) as server:
        yield server


def python_example(server: LiveServer, *args: str, password: str = "") -> Any:
    return subprocess.run(
        [sys.executable, str(PYTHON_EXAMPLE), "--url", server.url, "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DFFML_PASSWORD": password},
    )


def test_python_example_logs_in_or_takes_a_token(token_server: LiveServer, tmp_path: Path) -> None:
    refused = python_example(token_server)
    assert refused.returncode == 1
    assert "Authorization: Bearer <token> required (HTTP 401)" in refused.stderr
    done = python_example(token_server, "--username", "bob", password=PASSWORD)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"] == len(CSV_ROWS)
    assert (tmp_path / "data" / "users" / "bob" / "salaries.csv").exists()
    token = run_cli("createtoken", "-username", "bob", "-upload-dir", "data", cwd=tmp_path)
    assert token.returncode == 0, token.stderr
    with_token = python_example(token_server, "--token", token.stdout.strip())
    assert with_token.returncode == 0, with_token.stderr


def test_browser_page_logs_in(token_server: LiveServer, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{token_server.url}/js/")
    browser.find_element(By.ID, "username").send_keys("bob")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "run").click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 60).until(
        lambda _: status.get_attribute("data-state") in ("done", "error")
    )
    assert status.get_attribute("data-state") == "done", status.text
    points = browser.find_elements(By.CSS_SELECTOR, "#plot circle.prediction")
    assert len(points) == len(CSV_ROWS)
