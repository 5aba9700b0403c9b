"""The dashboard end to end in headless Chromium against the real CLI, as a person uses it.

Every page is also photographed at a desktop (1280 px) and a phone (390 px) width into a temp
dir (or $UI_SCREENSHOTS, to keep them), so the pictures can be looked at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser import chromium
from tests.live import LiveServer, create_user, live_server
from tests.ui_page import (
    WAIT,
    Page,
    configure_forest,
    run_two_task_pipeline,
    train_watching_progress,
)

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "examples" / "data" / "salaries.csv"
CSV_ROWS = CSV.read_text().splitlines()[1:]


# Drop a file on an element: the dragenter, dragover and drop events a person's drag makes.
DROP = """
const [selector, name, text] = arguments;
const zone = document.querySelector(selector);
const transfer = new DataTransfer();
transfer.items.add(new File([text], name, {type: "text/plain"}));
for (const type of ["dragenter", "dragover", "drop"]) {
  const init = {bubbles: true, cancelable: true, dataTransfer: transfer};
  zone.dispatchEvent(new DragEvent(type, init));
}
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One browser for both tests (each server has its own origin, so nothing is shared)."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with chromium(profile, flags=("--hide-scrollbars",)) as driver:
        driver.set_script_timeout(WAIT)
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = Path(os.environ.get("UI_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server("-insecure", "-upload-dir", "data", cwd=tmp_path) as running:
        yield running


def test_dashboard_end_to_end(
    server: LiveServer, browser: Any, shots: Path, tmp_path: Path
) -> None:
    # A source another client configured: the pages list the server's labels (GET /labels).
    records = {"a": {"features": {"Years": 1, "Salary": 20}}}
    for method, path, body in (
        ("POST", "/configure/source/memory/elsewhere", {"records": records}),
        ("GET", "/context/source/elsewhere/elsewhere", None),
    ):
        response = requests.request(method, f"{server.url}{path}", json=body, timeout=WAIT)
        assert response.status_code == 200, response.text
    ui = Page(browser, shots)
    browser.get(f"{server.url}/ui")
    assert browser.current_url == f"{server.url}/ui/"
    ui.until(lambda: ui.css("body").get_attribute("data-ready") == "true", "the app starts")
    offered = [o.get_attribute("value") for o in ui.all("#preview-source option")]
    assert offered == ["elsewhere"]
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

    # A file dropped on the box uploads the same way (the drop made as the browser makes one).
    browser.execute_script(DROP, "#drop-zone", "dropped.txt", "dropped by the test\n")
    dropped = "#upload-list li[data-file='dropped.txt'][data-state='done']"
    ui.until(lambda: ui.all(dropped), "the dropped file is uploaded")
    assert (tmp_path / "data" / "dropped.txt").read_text() == "dropped by the test\n"
    ui.until(lambda: ui.all("#files-table tr[data-file='dropped.txt']"), "and listed")

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
    configure_forest(ui, "salary", 300)
    assert ui.css("#train-sources input[value='salaries']").is_selected()
    values = train_watching_progress(ui)
    assert len(values) >= 3, values
    trained = ui.css("#train-progress").get_attribute("data-task")

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
    assert abs(predicted - 40) < 10  # the data is 10·Years + 10 ± 7
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

    # Tasks: the training is listed as done; a long one is followed live and cancelled here,
    # and the Models page says so beside its button.
    ui.go_by_keyboard("tasks", "Tasks")
    done_row = f"#tasks-table tr[data-task='{trained}']"
    ui.until(lambda: ui.all(done_row), "the training task is listed")
    assert ui.css(done_row).get_attribute("data-status") == "SUCCESS"
    bar = ui.css(f"{done_row} progress")
    assert bar.get_attribute("value") == bar.get_attribute("max")
    ui.click(f"{done_row} button[aria-label='Details of task {trained}']")
    ui.until(lambda: ui.all("#task-detail pre.log"), "the task's details show")
    assert ui.text_of("#task-detail h3") == f"Task {trained}"
    assert ui.text_of("#task-detail p").startswith("train of model/salary: SUCCESS, ran on local:")
    assert ui.text_of("#task-detail pre.log") == '{\n  "error": null\n}'
    configure_forest(ui, "big", 10_000)
    ui.click("#train-submit")
    ui.until(lambda: ui.css("#train-cancel").is_displayed(), "the training task exists")
    long_task = ui.css("#train-progress").get_attribute("data-task")
    ui.go("tasks")
    row = f"#tasks-table tr[data-task='{long_task}']"
    ui.until(lambda: ui.all(row), "the long training is listed")
    ui.until(lambda: ui.css(row).get_attribute("data-status") == "RUNNING", "it runs")
    ui.until(lambda: ui.css(f"{row} small").text != "", "its progress message shows")
    ui.press_enter(f"{row} button[aria-label='Cancel task {long_task}']")
    ui.until(lambda: ui.css(row).get_attribute("data-status") == "CANCELLED", "cancelled")
    ui.photograph("tasks")
    ui.accessible()
    ui.go("models")
    bar = ui.css("#train-progress")
    ui.until(lambda: bar.get_attribute("data-state") == "cancelled", "the page hears it")
    assert ui.text_of("#train-error") == "Training was cancelled"
    # And from the Models page's own button.
    assert ui.css("#model-ctx").get_attribute("value") == "big"
    ui.click("#train-submit")
    ui.until(lambda: ui.css("#train-cancel").is_displayed(), "the training task exists again")
    again = ui.css("#train-progress").get_attribute("data-task")
    assert again != long_task
    ui.click("#train-cancel")
    ui.until(lambda: bar.get_attribute("data-state") == "cancelled", "cancelled from here")
    assert not ui.css("#train-cancel").is_displayed()
    task = requests.get(f"{server.url}/task/{again}", timeout=WAIT).json()
    assert task["status"] == "CANCELLED"

    # A training that fails shows the server's message beside the Train button.
    ui.select("#model-plugin", "slr")
    ui.fill("#model-label", "wrong")
    ui.fill("#model-form [name='features']", "Nope:int:1")
    ui.fill("#model-form [name='predict']", "Salary:float:1")
    ui.click("#model-submit")
    ui.until(lambda: ui.text_of("#model-done").startswith("Model wrong is ready"), "configured")
    ui.click("#train-submit")
    ui.until(lambda: bar.get_attribute("data-state") == "error", "the training fails")
    failed = requests.get(f"{server.url}/tasks?status=FAILURE", timeout=WAIT).json()["tasks"]
    assert [t["target"] for t in failed] == ["model/wrong"]
    assert ui.text_of("#train-error") == failed[0]["error"]
    assert ui.css("#train-progress").get_attribute("data-task") == failed[0]["task_id"]

    run_two_task_pipeline(ui, tmp_path / "data", keyboard=True)
    ui.photograph("pipelines")
    ui.accessible()

    assert ui.script_errors() == []


SECRET = {"DFFML_SERVICE_HTTP_SECRET_KEY": "ui-test-secret-" + "k" * 32}


def test_dashboard_with_auth_token(browser: Any, shots: Path, tmp_path: Path) -> None:
    """-auth token: nothing but the login form until signed in, then the same work as above."""

    made = create_user("ann", "ann-password-1", tmp_path, env=SECRET)
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

        configure_forest(ui, "mymodel", 300)
        train_watching_progress(ui)
        ui.click("#predict-run")
        points = "#plot-main circle.point"
        ui.until(lambda: len(ui.all(points)) == len(CSV_ROWS), "one point per record")

        # Tasks and runs are the user's own: the token goes with every event stream too.
        run_two_task_pipeline(ui, tmp_path / "data" / "users" / "ann")
        # Deleting the pipeline keeps its run listed (a run holds its own copy of the tasks).
        ui.click("#pipelines-list li button[aria-label='Delete pipeline split-describe']")
        ui.until(lambda: ui.text_of("#pipelines-total") == "No pipelines yet: build one.", "gone")
        assert len(ui.all("#runs-list article.run[data-status='FINISHED']")) == 1
        ui.go("tasks")
        ui.until(lambda: ui.all("#tasks-table tr[data-status='SUCCESS']"), "the training")

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
