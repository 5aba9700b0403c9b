"""The examples, run as a user would against the real CLI: the Python script and the browser page.

(The Node example has its own test, examples/js/salaries.test.js, run by scripts/test.)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.live import LiveServer, live_server, run_cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
PYTHON_EXAMPLE = EXAMPLES / "python" / "salaries.py"
CSV_ROWS = (EXAMPLES / "data" / "salaries.csv").read_text().splitlines()[1:]


def run_python_example(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PYTHON_EXAMPLE), "--url", server.url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_learned(predictions: list[dict[str, Any]]) -> None:
    """One prediction per CSV row, each close to the truth (the data is 10·Years + 10 ± 7)."""
    assert len(predictions) == len(CSV_ROWS)
    truth = {int(years): int(salary) for years, salary in (row.split(",") for row in CSV_ROWS)}
    for p in predictions:
        assert truth[p["years"]] == p["actual"]
        assert abs(p["predicted"] - (10 * p["years"] + 10)) < 5, p


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(
        *("-insecure", "-js", "-static", str(EXAMPLES), "-upload-dir", "data"), cwd=tmp_path
    ) as server:
        yield server


def test_python_example(http_server: LiveServer, tmp_path: Path) -> None:
    done = run_python_example(http_server, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["records"] == len(CSV_ROWS)
    assert result["pages"] == math.ceil(len(CSV_ROWS) / 5)
    assert result["trained"] == "SUCCESS"  # trained as a task, followed to its end
    assert "fitted" in done.stderr  # its progress, printed as it arrived
    assert 0 < result["mse"] < 50
    assert_learned(result["predictions"])
    assert (tmp_path / "data" / "salaries.csv").read_text().splitlines()[1:] == CSV_ROWS

    table = run_python_example(http_server)
    assert table.returncode == 0, table.stderr
    assert "mean squared error" in table.stdout
    assert len(table.stdout.splitlines()) == 3 + len(CSV_ROWS)


def test_python_example_reports_the_servers_error(tmp_path: Path) -> None:
    with live_server("-insecure", cwd=tmp_path) as server:
        done = run_python_example(server)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "error: Uploads not allowed (HTTP 501)"


def test_python_example_over_tls(tmp_path: Path) -> None:
    created = run_cli("createtls", "server", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    with live_server("-upload-dir", "data", cwd=tmp_path, scheme="https") as server:
        unverified = run_python_example(server)
        assert unverified.returncode == 1
        assert "use --cacert server.pem or --insecure" in unverified.stderr

        trusted = run_python_example(server, "--cacert", str(tmp_path / "server.pem"), "--json")
        assert trusted.returncode == 0, trusted.stderr
        assert_learned(json.loads(trusted.stdout)["predictions"])

        insecure = run_python_example(server, "--insecure", "--json")
        assert insecure.returncode == 0, insecure.stderr
        assert insecure.stderr.count("not verifying the server certificate") == 1
        assert "Unverified HTTPS request" not in insecure.stderr


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "chromium-profile", width=1200, height=1300) as driver:
        yield driver


def test_browser_page_plots_one_point_per_prediction(
    http_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{http_server.url}/js")
    assert browser.current_url == f"{http_server.url}/js/"
    browser.find_element(By.ID, "run").click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 60).until(
        lambda _: status.get_attribute("data-state") in ("done", "error")
    )
    screenshot = tmp_path / "salaries-page.png"
    browser.save_screenshot(str(screenshot))
    if os.environ.get("EXAMPLE_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["EXAMPLE_SCREENSHOT"])
    assert status.get_attribute("data-state") == "done", status.text

    rows = browser.find_elements(By.CSS_SELECTOR, "#records tbody tr")
    points = browser.find_elements(By.CSS_SELECTOR, "#plot circle.prediction")
    assert len(rows) == len(CSV_ROWS)
    assert len(points) == len(rows), "one point per predicted record"
    # key → (true salary, predicted salary) as the table shows them.
    table = {
        cells[0]: (float(cells[2]), float(cells[3]))
        for cells in ([td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows)
    }
    plotted = {
        point.get_attribute("data-key"): (
            float(point.get_attribute("cx")),
            float(point.get_attribute("cy")),
        )
        for point in points
    }
    assert plotted.keys() == table.keys()
    # x grows with the true value, y (SVG grows downwards) with the predicted one.
    by_truth = sorted(table, key=lambda key: table[key][0])
    assert [plotted[key][0] for key in by_truth] == sorted(x for x, _ in plotted.values())
    by_prediction = sorted(table, key=lambda key: table[key][1])
    ys = [plotted[key][1] for key in by_prediction]
    assert ys == sorted(ys, reverse=True)
    for x, y in plotted.values():
        assert 0 < x < 480
        assert 0 < y < 380
    assert browser.find_element(By.ID, "score").text.startswith("Mean squared error: ")
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
