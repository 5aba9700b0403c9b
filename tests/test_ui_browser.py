"""The dashboard end to end in headless Chromium against the real CLI, as a person uses it.

Every page is also photographed at a desktop (1280 px) and a phone (390 px) width into a temp
dir (or $UI_SCREENSHOTS, to keep them), so the pictures can be looked at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser import chromium
from tests.live import LiveServer, create_user, live_server
from tests.ui_page import (
    AXE_FAILS,
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
    # Sources and a model another client configured, the model trained through the API (no
    # task): the pages list the server's labels (GET /labels) and the model's state.
    years = {str(n): {"features": {"Years": n, "Salary": 10 * n + 7 + n % 2 * 6}} for n in range(6)}
    slr = {"features": "Years:int:1", "predict": "Salary:float:1"}
    for method, path, body in (
        ("POST", "/configure/source/memory/elsewhere", {"records": {"a": {"features": {"H": 1}}}}),
        ("GET", "/context/source/elsewhere/elsewhere", None),
        ("POST", "/configure/source/memory/years", {"records": years}),
        ("GET", "/context/source/years/years", None),
        ("POST", "/configure/model/slr/api-model", slr),
        ("GET", "/context/model/api-model/api-model", None),
        ("POST", "/model/api-model/train", ["years"]),
    ):
        response = requests.request(method, f"{server.url}{path}", json=body, timeout=WAIT)
        assert response.status_code == 200, response.text
    ui = Page(browser, shots)
    browser.get(f"{server.url}/ui")
    assert browser.current_url == f"{server.url}/ui/"
    ui.until(lambda: ui.css("body").get_attribute("data-ready") == "true", "the app starts")
    offered = [o.get_attribute("value") for o in ui.all("#preview-source option")]
    assert offered == ["elsewhere", "years"]

    # The Models page as a newcomer finds it: the model's real state, and the source that has
    # its features offered (not the first, which has none), so predicting works at once.
    ui.go("models")
    ui.until(lambda: "Trained on years, last at " in ui.text_of("#model-state"), "its state")
    assert ui.css("#model-ctx").get_attribute("value") == "api-model"
    assert ui.css("#model-state").get_attribute("data-trained") == "true"
    ticked = "#train-sources input:checked"
    ui.until(lambda: [b.get_attribute("value") for b in ui.all(ticked)] == ["years"], "fits")
    ui.until(lambda: ui.css("#predict-source").get_attribute("value") == "years", "fits too")
    ui.click("#predict-run")
    ui.until(lambda: ui.text_of("#plot-summary").startswith(f"{len(years)} records"), "plotted")
    assert not ui.css("#predict-error").is_displayed()
    ui.go("data")
    ui.until(lambda: ui.text_of("#files-total") != "", "the file list loads")
    assert ui.text_of("#files-total") == "No files yet: upload one."

    # Upload the example CSV: its progress bar fills, the file is listed with its size.
    ui.css("#upload-input").send_keys(str(CSV))
    done = "#upload-list li[data-file='salaries.csv'][data-state='done']"
    ui.until(lambda: ui.all(done), "the upload finishes")
    bar = ui.css(f"{done} progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(CSV.stat().st_size)
    row = "#files-table li[data-file='salaries.csv']"
    ui.until(lambda: ui.all(row), "the file is listed")
    assert ui.css(f"{row} .size").text == f"{CSV.stat().st_size} B"
    assert ui.css(f"{row} time").get_attribute("datetime").endswith("Z")
    assert (tmp_path / "data" / "salaries.csv").read_bytes() == CSV.read_bytes()

    # A file dropped on the box uploads the same way (the drop made as the browser makes one).
    browser.execute_script(DROP, "#drop-zone", "dropped.txt", "dropped by the test\n")
    dropped = "#upload-list li[data-file='dropped.txt'][data-state='done']"
    ui.until(lambda: ui.all(dropped), "the dropped file is uploaded")
    assert (tmp_path / "data" / "dropped.txt").read_text() == "dropped by the test\n"
    text_row = "#files-table li[data-file='dropped.txt']"
    ui.until(lambda: ui.all(text_row), "and listed")
    # A text file is no source; it is shown in place.
    assert not ui.all(f"{text_row} button[aria-label^='Configure a source']")
    ui.click(f"{text_row} button[aria-label='Preview dropped.txt']")
    ui.until(lambda: ui.css(f"{text_row} .file-preview").text == "dropped by the test", "shown")

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
    # The CSV in place: its first rows as a table.
    ui.click(f"{row} button[aria-label='Preview salaries.csv']")
    cells = f"{row} .file-preview table tbody tr"
    ui.until(lambda: len(ui.all(cells)) == len(CSV_ROWS), "the CSV's rows")
    assert [td.text for td in ui.all(f"{cells}:first-child td")] == CSV_ROWS[0].split(",")
    # On a desktop the records sit beside the file list, not under it.
    files_card = ui.css("#files-table").rect
    records_card = ui.css("#preview-table").rect
    assert records_card["x"] >= files_card["x"] + files_card["width"]
    assert records_card["y"] < files_card["y"] + files_card["height"]
    ui.photograph("data")
    ui.accessible()

    # Models, reached from the keyboard: configure slr from its generated form, train, score,
    # predict, plot.
    from selenium.webdriver.common.keys import Keys

    ui.css("#nav-models").send_keys(Keys.ENTER)
    ui.until(lambda: ui.css("#page-models").is_displayed(), "the models page shows")
    active = browser.switch_to.active_element
    assert active.tag_name == "h1"
    assert active.text == "Models"
    configure_forest(ui, "salary", 300)
    salaries = "#train-sources input[value='salaries']"
    ui.until(lambda: ui.css(salaries).is_selected(), "the source that fits is ticked")
    values = train_watching_progress(ui)
    assert len(values) >= 3, values
    trained = ui.css("#train-progress").get_attribute("data-task")
    assert trained
    state = "scikitrfr model. Trained on salaries, last at "
    ui.until(lambda: ui.text_of("#model-state").startswith(state), "the state names the source")

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
    ui.accessible()

    # Modules: describe the CSV with a generated form; the output file is listed.
    ui.go("modules")
    ui.until(lambda: ui.all("#module-files input[value='salaries.csv']"), "files offered")
    ui.click("#module-files input[value='salaries.csv']")
    ui.click("#module-run")
    outputs = "#module-output article.run .outputs li"
    ui.until(lambda: ui.all(outputs), "the run's outputs are listed")
    (listed,) = [li.get_attribute("data-file") for li in ui.all(outputs)]
    assert listed.endswith("/salaries.describe.json")
    summary = json.loads((tmp_path / "data" / listed).read_text())
    # The statistics shown, not only offered as a download: a row per column.
    stats = "#module-output table.describe"
    ui.until(lambda: ui.all(stats), "the statistics table")
    names = [th.text for th in ui.all(f"{stats} tbody th")]
    assert names == list(summary["columns"])
    header = [th.text for th in ui.all(f"{stats} thead th")]
    mean = ui.all(f"{stats} tbody tr:first-child td")[header.index("mean") - 1].text
    assert float(mean) == pytest.approx(summary["columns"]["Years"]["mean"], rel=1e-5)
    assert "``" not in ui.text_of("#page-modules")

    # An evasion attack on the trained forest: its success rate shown with the outputs.
    ui.select("#module-plugin", "evasion")
    ui.until(lambda: ui.all("#module-form [name='goal']"), "evade's options")
    ui.fill("#module-form [name='model']", "salary")
    ui.select("#module-form [name='goal']", "increase")
    ui.fill("#module-form [name='features']", "Years")
    # Still ticked from the run before.
    assert ui.css("#module-files input[value='salaries.csv']").is_selected()
    ui.click("#module-run")
    rate = "#module-output article.run p.evasion"
    ui.until(lambda: ui.all(rate), "the success rate")
    report = ui.css(rate).get_attribute("data-file")
    attack = json.loads((tmp_path / "data" / report).read_text())
    # The page keeps the number and its % together with a no-break space.
    shown_rate = ui.text_of(rate).replace("\N{NO-BREAK SPACE}", " ")
    assert shown_rate.endswith(
        f"Success rate {100 * attack['success_rate']:.1f} %:"
        f" {attack['evaded']} of {attack['rows']} rows evaded."
    )
    ui.photograph("modules")
    ui.accessible()

    # The outputs land under outputs/, collapsed until opened.
    ui.go("data")
    folder = "#files-table details[data-folder='outputs']"
    ui.until(lambda: ui.all(folder), "the outputs folder")
    assert ui.css(folder).get_attribute("open") is None
    inside = f"#files-table li[data-file='{listed}']"
    assert not ui.css(inside).is_displayed()
    # Folders open from the keyboard too (a <summary> is a control of its own).
    parts = listed.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        ui.press_enter(f"#files-table details[data-folder='{'/'.join(parts[:depth])}'] > summary")
    ui.until(lambda: ui.css(inside).is_displayed(), "the describe output shows")
    assert not ui.all(f"{inside} button[aria-label^='Configure a source']")
    ui.click(f"{inside} button[aria-label='Preview {listed}']")
    pretty = f"{inside} .file-preview pre"
    ui.until(lambda: ui.all(pretty), "the JSON in place")
    assert json.loads(ui.text_of(pretty)) == summary
    assert ui.text_of(pretty).startswith('{\n  "file"')

    # Tasks: the training is listed as done; a long one is followed live and cancelled here,
    # and the Models page says so beside its button.
    ui.go_by_keyboard("tasks", "Tasks")
    done_row = f"#tasks-table tr[data-task='{trained}']"
    ui.until(lambda: ui.all(done_row), "the training task is listed")
    assert ui.css(done_row).get_attribute("data-status") == "SUCCESS"
    bar = ui.css(f"{done_row} progress")
    assert bar.get_attribute("value") == bar.get_attribute("max")
    ui.click(f"{done_row} button[aria-label='Details of task {trained}']")
    ui.until(lambda: ui.all("#task-result"), "the task's details show")
    assert ui.text_of("#task-detail h3") == f"Task {trained}"
    assert ui.text_of("#task-detail p").startswith("train of model/salary: SUCCESS, ran on local:")
    assert ui.text_of("#task-result") == "Finished without error."
    assert "null" not in ui.text_of("#task-detail")

    # A task another client starts appears without Refresh (the page polls for new ones).
    response = requests.post(
        f"{server.url}/model/api-model/train?async=1", json=["years"], timeout=WAIT
    )
    assert response.status_code == 202, response.text
    theirs = f"#tasks-table tr[data-task='{response.json()['task_id']}']"
    ui.until(lambda: ui.all(theirs), "another client's task is listed")
    ui.until(lambda: ui.css(theirs).get_attribute("data-status") == "SUCCESS", "and ends")
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
    # The Cancel button is readable (axe checks its contrast while it is shown).
    ui.accessible()
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
    (made,) = requests.get(f"{server.url}/pipelines", timeout=WAIT).json()["pipelines"]
    listed_pipeline = f"#pipelines-list li[data-pipeline='{made['id']}']"
    assert made["id"][:8] in ui.text_of(listed_pipeline)
    # A second pipeline of the same name: the page warns while the name is typed.
    ui.fill("#pipeline-name", "split-describ")
    ui.css("#pipeline-name").send_keys("e")
    ui.until(lambda: "already exists" in ui.text_of("#pipeline-name-warning"), "the warning")
    assert made["id"][:8] in ui.text_of("#pipeline-name-warning")
    # Pipelines and runs other clients make appear without Refresh.
    tasks = [{"module": "dataset", "function": "describe"}]
    body = {"name": "split-describe", "tasks": tasks}
    other = requests.post(f"{server.url}/pipelines", json=body, timeout=WAIT).json()
    theirs = f"#pipelines-list li[data-pipeline='{other['id']}']"
    ui.until(lambda: ui.all(theirs), "another client's pipeline is listed")
    assert ui.text_of(theirs) != ui.text_of(listed_pipeline)
    body = {"pipeline": other["id"], "files": ["salaries.csv"]}
    their_run = requests.post(f"{server.url}/runs", json=body, timeout=WAIT).json()
    run_row = f"#runs-list article.run[data-run='{their_run['id']}']"
    ui.until(lambda: ui.all(run_row), "another client's run is listed")
    ui.until(lambda: ui.css(run_row).get_attribute("data-status") == "FINISHED", "it ends")
    ui.photograph("pipelines")
    ui.accessible()

    # The dark scheme passes the same checks.
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    try:
        for name in ("data", "models", "modules", "pipelines", "tasks"):
            ui.go(name)
            ui.accessible()
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

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
        assert [v for v in ui.axe() if v["impact"] in AXE_FAILS] == []

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
        row = "#files-table li[data-file='salaries.csv']"
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


def test_model_versions_and_aliases(browser: Any, shots: Path, tmp_path: Path) -> None:
    """A model trained twice by another client with -keep-versions: the Models page lists both
    versions and where latest points; pointing champion at version 1 there is what the server
    then serves as salary@champion (a rollback)."""
    slr = {"features": "Years:int:1", "predict": "Salary:float:1", "location": "models/salary"}
    with live_server(
        "-insecure", "-upload-dir", "data", "-keep-versions", "3", cwd=tmp_path
    ) as server:
        first = {str(n): {"features": {"Years": n, "Salary": 10 * n}} for n in range(6)}
        second = {str(n): {"features": {"Years": n, "Salary": 20 * n}} for n in range(6)}
        for method, path, body in (
            ("POST", "/configure/source/memory/first", {"records": first}),
            ("GET", "/context/source/first/first", None),
            ("POST", "/configure/source/memory/second", {"records": second}),
            ("GET", "/context/source/second/second", None),
            ("POST", "/configure/model/slr/salary", slr),
            ("GET", "/context/model/salary/salary", None),
            ("POST", "/model/salary/train", ["first"]),
            ("POST", "/model/salary/train", ["second"]),
        ):
            response = requests.request(method, f"{server.url}{path}", json=body, timeout=WAIT)
            assert response.status_code == 200, response.text
        ui = Page(browser, shots)
        browser.get(f"{server.url}/ui/")
        ui.until(lambda: ui.css("body").get_attribute("data-ready") == "true", "the app starts")
        ui.go("models")
        rows = "#versions-table tbody tr"
        ui.until(lambda: len(ui.all(rows)) == 2, "both versions listed")
        listed = [
            [td.text for td in row.find_elements("css selector", "td")] for row in ui.all(rows)
        ]
        assert [(r[0], r[2], r[3]) for r in listed] == [
            ("2", "second", "latest"),
            ("1", "first", ""),
        ]
        assert "salary@latest" in ui.text_of("#versions-status")
        ui.accessible()
        ui.photograph("versions")

        ui.fill("#alias-name", "champion")
        ui.select("#alias-version", "1")
        ui.click("#alias-submit")
        one = "#versions-table tr[data-version='1'] td:last-child"
        ui.until(lambda: ui.text_of(one) == "champion", "champion beside version 1")
        # What the page set is what the server serves: the rolled-back model predicts 10 a year.
        predicted = requests.post(
            f"{server.url}/model/salary@champion/predict/0",
            json={"x": {"features": {"Years": 10}}},
            timeout=WAIT,
        ).json()
        assert round(predicted["records"]["x"]["prediction"]["Salary"]["value"]) == 100
        assert ui.script_errors() == []
