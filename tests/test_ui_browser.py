"""The dashboard end to end in headless Chromium against the real CLI, as a person uses it.

Every page is also photographed at a desktop (1280 px) and a phone (390 px) width into a temp
dir (or $UI_SCREENSHOTS, to keep them), so the pictures can be looked at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.live import LiveServer, live_server

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "examples" / "data" / "salaries.csv"
CSV_ROWS = CSV.read_text().splitlines()[1:]
WAIT = 20  # seconds any one step may take on a loaded 2-core machine
WIDTHS = (1280, 390)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "chromium-profile", flags=("--hide-scrollbars",)) as driver:
        driver.set_script_timeout(WAIT)
        yield driver


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("UI_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


class Page:
    """The dashboard in the browser: waits with timeouts, never sleeps."""

    def __init__(self, driver: Any, shots: Path) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.shots = shots
        self.wait = WebDriverWait(driver, WAIT)

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def until(self, condition: Callable[[], Any], what: str) -> Any:
        return self.wait.until(lambda _: condition(), message=what)

    def click(self, selector: str) -> None:
        """Click as a person would: scrolled to the middle, clear of the sticky header."""
        element = self.css(selector)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def text_of(self, selector: str) -> str:
        return str(self.css(selector).text)

    def fill(self, selector: str, value: str) -> None:
        element = self.css(selector)
        element.clear()
        element.send_keys(value)

    def field(self, form: str, name: str) -> Any:
        return self.css(f"{form} [name='{name}']")

    def go(self, page: str) -> None:
        self.click(f"#nav-{page}")
        self.until(lambda: self.css(f"#page-{page}").is_displayed(), f"the {page} page shows")

    def photograph(self, name: str) -> None:
        """The whole page at each width, as PNG files NAME-WIDTH.png."""
        for width in WIDTHS:
            self.driver.set_window_size(width, 900)
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(width, min(int(height) + 40, 6000))
            self.driver.execute_script("window.scrollTo(0, 0)")
            self.driver.save_screenshot(str(self.shots / f"{name}-{width}.png"))
        self.driver.set_window_size(WIDTHS[0], 900)

    def unlabelled_controls(self) -> list[str]:
        """Shown controls a screen reader could not name: no <label>, no text, no aria-label."""
        return list(
            self.driver.execute_script(
                """
                const named = (e) => e.getAttribute("aria-label") || (e.tagName === "BUTTON"
                  ? e.textContent.trim() : e.labels && e.labels.length);
                const shown = [...document.querySelectorAll("input, select, textarea, button")]
                  .filter((e) => e.type !== "hidden" && e.getClientRects().length);
                if (shown.length < 5) {
                  return ["(fewer than 5 controls shown: is the page there?)"];
                }
                return shown.filter((e) => !named(e))
                  .map((e) => e.id || e.name || e.outerHTML.slice(0, 80));
                """
            )
        )

    def script_errors(self) -> list[Any]:
        """Errors the page's scripts raised (the network's 4xx the test provoked are not)."""
        return [
            e
            for e in self.driver.get_log("browser")
            if e["level"] == "SEVERE" and e.get("source") != "network"
        ]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server("-insecure", "-upload-dir", "data", cwd=tmp_path) as running:
        yield running


def test_dashboard_end_to_end(
    server: LiveServer, browser: Any, shots: Path, tmp_path: Path
) -> None:
    ui = Page(browser, shots)
    browser.get(f"{server.url}/ui")
    assert browser.current_url == f"{server.url}/ui/"
    ui.until(lambda: ui.css("body").get_attribute("data-ready") == "true", "the app starts")
    ui.until(lambda: ui.text_of("#files-total") != "", "the file list loads")
    assert ui.text_of("#files-total") == "No files yet: upload one."

    # Upload the example CSV: its progress bar fills, the file is listed with its size.
    ui.css("#upload-input").send_keys(str(CSV))
    done = "#upload-list li[data-file='salaries.csv'][data-state='done']"
    ui.until(lambda: ui.all(done), "the upload finishes")
    bar = ui.css(f"{done} progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(CSV.stat().st_size)
    row = "#files-table tr[data-file='salaries.csv']"
    ui.until(lambda: ui.all(row), "the file is listed")
    assert ui.css(f"{row} td.num").text == f"{CSV.stat().st_size} B"
    assert (tmp_path / "data" / "salaries.csv").read_bytes() == CSV.read_bytes()

    # A source with a mistake: the server's own message appears beside the button.
    ui.fill("#source-label", "broken")
    ui.click("#source-submit")
    ui.until(lambda: ui.css("#source-error").is_displayed(), "the error shows")
    assert ui.text_of("#source-error") == "CSVSource missing 'filename' from source.broken"

    # Configure a csv source from the file: "Use as source" fills in the form.
    ui.click(f"{row} button[aria-label^='Configure a source']")
    assert ui.field("#source-form", "filename").get_attribute("value") == "salaries.csv"
    assert ui.css("#source-label").get_attribute("value") == "salaries"
    ui.click("#source-submit")
    ui.until(lambda: ui.text_of("#source-done").startswith("Source salaries is ready"), "ready")
    assert not ui.css("#source-error").is_displayed()

    # Preview the records five a page, following iterkeys forward and back.
    ui.fill("#preview-size", "5")
    ui.click("#preview-first")
    page_keys = "#preview-table tbody tr"
    ui.until(lambda: ui.css("#preview-table").get_attribute("data-page") == "1", "page 1")
    assert [r.get_attribute("data-key") for r in ui.all(page_keys)] == ["0", "1", "2", "3", "4"]
    headers = [th.text for th in ui.all("#preview-table thead th")]
    assert headers == ["key", "Years", "Salary"]
    ui.click("#preview-next")
    ui.until(lambda: ui.css("#preview-table").get_attribute("data-page") == "2", "page 2")
    assert [r.get_attribute("data-key") for r in ui.all(page_keys)] == ["5", "6", "7", "8", "9"]
    assert ui.text_of("#preview-status") == "Page 2: records 6\N{EN DASH}10"
    ui.click("#preview-prev")
    ui.until(lambda: ui.css("#preview-table").get_attribute("data-page") == "1", "back to 1")
    ui.photograph("data")
    assert ui.unlabelled_controls() == []

    # Models, reached from the keyboard: configure slr from its generated form, train, score,
    # predict, plot.
    from selenium.webdriver.common.keys import Keys

    ui.css("#nav-models").send_keys(Keys.ENTER)
    ui.until(lambda: ui.css("#page-models").is_displayed(), "the models page shows")
    active = browser.switch_to.active_element
    assert active.tag_name == "h1"
    assert active.text == "Models"
    ui.until(lambda: ui.all("#model-form [name='features']"), "the model form is generated")
    ui.fill("#model-label", "salary")
    ui.field("#model-form", "features").send_keys("Years:int:1")
    ui.field("#model-form", "predict").send_keys("Salary:float:1")
    ui.click("#model-submit")
    ui.until(lambda: ui.text_of("#model-done").startswith("Model salary is ready"), "configured")
    assert ui.css("#model-ctx").get_attribute("value") == "salary"
    assert ui.css("#train-sources input[value='salaries']").is_selected()

    ui.click("#train-submit")
    progress = ui.css("#train-progress")
    ui.until(lambda: progress.get_attribute("data-state") in ("done", "error"), "training ends")
    assert progress.get_attribute("data-state") == "done", ui.text_of("#train-error")
    assert progress.get_attribute("value") == progress.get_attribute("max")

    ui.click("#score-submit")
    ui.until(lambda: ui.text_of("#score-value").startswith("mse = "), "the score shows")
    assert 0 < float(ui.text_of("#score-value").removeprefix("mse = ")) < 50

    ui.click("#predict-run")
    points = "#plot-main circle.point"
    ui.until(lambda: len(ui.all(points)) == len(CSV_ROWS), "one point per record")
    keys = sorted(int(p.get_attribute("data-key")) for p in ui.all(points))
    assert keys == list(range(len(CSV_ROWS)))
    assert len(ui.all("#plot-residuals circle.residual")) == len(CSV_ROWS)
    assert ui.all("#plot-main line.ideal")
    assert ui.text_of("#plot-summary").startswith(f"{len(CSV_ROWS)} records plotted")

    years = ui.css("#predict-inputs input[name='Years']")
    years.send_keys("3")
    ui.click("#predict-one")
    ui.until(lambda: ui.text_of("#predict-answer").startswith("Salary: "), "one prediction")
    predicted = float(ui.text_of("#predict-answer").split()[1])
    assert abs(predicted - 40) < 5  # the data is 10·Years + 10 ± 7
    ui.photograph("models")
    assert ui.unlabelled_controls() == []

    # Modules: describe the CSV with a generated form; the output file is listed.
    ui.go("modules")
    ui.until(lambda: ui.all("#module-files input[value='salaries.csv']"), "files offered")
    ui.click("#module-files input[value='salaries.csv']")
    ui.click("#module-run")
    outputs = "#module-output article.run .outputs li"
    ui.until(lambda: ui.all(outputs), "the run's outputs are listed")
    (listed,) = [li.get_attribute("data-file") for li in ui.all(outputs)]
    assert listed.endswith("/salaries.describe.json")
    assert (tmp_path / "data" / listed).is_file()
    ui.photograph("modules")
    assert ui.unlabelled_controls() == []

    assert ui.script_errors() == []


SECRET = {"DFFML_SERVICE_HTTP_SECRET_KEY": "ui-test-secret-" + "k" * 32}


def test_dashboard_with_auth_token(browser: Any, shots: Path, tmp_path: Path) -> None:
    """-auth token: nothing but the login form until signed in, then the same work as above."""
    import subprocess
    import sys

    made = subprocess.run(
        [
            *(sys.executable, "-m", "service", "createuser", "-username", "ann"),
            *("-upload-dir", "data", "-password-stdin"),
        ],
        cwd=tmp_path,
        input="ann-password-1\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **SECRET},
    )
    assert made.returncode == 0, made.stderr
    args = ("-insecure", "-upload-dir", "data", "-auth", "token")
    with live_server(*args, cwd=tmp_path, env=SECRET) as server:
        ui = Page(browser, shots)
        browser.get(f"{server.url}/ui/")
        ui.until(lambda: ui.css("#login").is_displayed(), "the login form shows")
        assert ui.css("body").get_attribute("data-ready") is None
        assert browser.switch_to.active_element.get_attribute("id") == "login-username"

        ui.fill("#login-username", "ann")
        ui.fill("#login-password", "wrong-password")
        ui.click("#login-submit")
        ui.until(lambda: ui.css("#login-error").is_displayed(), "the refusal shows")
        refusal = ui.text_of("#login-error")
        assert refusal
        ui.photograph("login")

        ui.fill("#login-password", "ann-password-1")
        ui.click("#login-submit")
        ui.until(lambda: ui.css("body").get_attribute("data-ready") == "true", "signed in")
        assert not ui.css("#login").is_displayed()
        assert ui.text_of("#signed-in") == "Signed in as ann"
        token = browser.execute_script(
            "return sessionStorage.getItem('dffml-service-http-ui/token')"
        )
        assert token
        assert token not in browser.current_url

        ui.css("#upload-input").send_keys(str(CSV))
        done = "#upload-list li[data-file='salaries.csv'][data-state='done']"
        ui.until(lambda: ui.all(done), "the upload finishes")
        row = "#files-table tr[data-file='salaries.csv']"
        ui.until(lambda: ui.all(row), "the file is listed")
        ui.click(f"{row} button[aria-label^='Configure a source']")
        ui.click("#source-submit")
        ui.until(lambda: ui.text_of("#source-done").startswith("Source salaries is ready"), "ok")
        ui.click("#preview-first")
        ui.until(lambda: len(ui.all("#preview-table tbody tr")) == 10, "a page of records")

        ui.go("models")
        ui.until(lambda: ui.all("#model-form [name='features']"), "the model form")
        ui.field("#model-form", "features").send_keys("Years:int:1")
        ui.field("#model-form", "predict").send_keys("Salary:float:1")
        ui.click("#model-submit")
        ui.until(lambda: ui.text_of("#model-done").startswith("Model mymodel is ready"), "ok")
        ui.click("#train-submit")
        progress = ui.css("#train-progress")
        ui.until(lambda: progress.get_attribute("data-state") in ("done", "error"), "trained")
        assert progress.get_attribute("data-state") == "done", ui.text_of("#train-error")
        ui.click("#predict-run")
        points = "#plot-main circle.point"
        ui.until(lambda: len(ui.all(points)) == len(CSV_ROWS), "one point per record")

        # A reload keeps the tab signed in (sessionStorage), without asking again.
        browser.refresh()
        ui.until(lambda: ui.css("body").get_attribute("data-ready") == "true", "still in")
        assert not ui.css("#login").is_displayed()
        ui.click("#logout")
        # The page reloads: ask the new document, not an element of the old one.
        login_open = "const d = document.getElementById('login'); return Boolean(d && d.open)"
        ui.until(lambda: browser.execute_script(login_open), "signed out")
        assert (
            browser.execute_script("return sessionStorage.getItem('dffml-service-http-ui/token')")
            is None
        )
        assert ui.script_errors() == []
