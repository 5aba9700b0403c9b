"""The dashboard in a browser, for tests/test_ui_browser.py: a page object that waits (never
sleeps) and the steps both of its tests take (train with progress, run a pipeline)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WAIT = 30  # seconds any one step may take on a loaded 2-core machine
WIDTHS = (1280, 390)
# axe-core from npm (package.json; scripts/setup runs npm ci): the accessibility checker.
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
# Violations of these impacts fail a test; "moderate" and "minor" ones are reported only.
AXE_FAILS = ("serious", "critical")

# Runs axe over the whole document (hidden pages are not checked: they are not shown) and
# answers its violations, each with up to five of the elements it found.
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then(
  (result) => done(result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + ": " + n.failureSummary)}))),
  (error) => done([{id: "axe-failed", impact: "critical", help: String(error), nodes: []}]));
"""

# Records every value the training bar takes (value and max attributes, in order), so a test
# sees the intermediate ones however quickly they pass.
WATCH_PROGRESS = """
const bar = document.querySelector(arguments[0]);
window.seenProgress = [];
window.progressWatch?.disconnect();
window.progressWatch = new MutationObserver(() =>
  window.seenProgress.push([bar.getAttribute("value"), bar.getAttribute("max")]));
window.progressWatch.observe(bar, {attributes: true, attributeFilter: ["value", "max"]});
"""


class Page:
    """The dashboard in the browser: waits with timeouts, never sleeps."""

    def __init__(self, driver: Any, shots: Path) -> None:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.shots = shots
        # Lists are drawn again as events arrive: an element found a moment ago may be gone,
        # so a condition is asked again rather than failing on it.
        self.wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def until(self, condition: Callable[[], Any], what: str) -> Any:
        return self.wait.until(lambda _: condition(), message=what)

    def click(self, selector: str) -> None:
        """Click as a person would: scrolled to the middle, clear of the sticky header (found
        again if a redraw replaced it meanwhile)."""

        def press() -> bool:
            element = self.css(selector)
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            element.click()
            return True

        self.until(press, f"{selector} is clicked")

    def select(self, selector: str, value: str) -> None:
        """Choose an option of a <select> by its value, once it is offered."""
        from selenium.webdriver.support.ui import Select

        options = f"{selector} option[value='{value}']"
        self.until(lambda: self.all(options), f"{value} offered in {selector}")
        Select(self.css(selector)).select_by_value(value)

    def text_of(self, selector: str) -> str:
        return str(self.css(selector).text)

    def fill(self, selector: str, value: str) -> None:
        element = self.css(selector)
        element.clear()
        element.send_keys(value)

    def field(self, form: str, name: str) -> Any:
        return self.css(f"{form} [name='{name}']")

    def go_by_keyboard(self, page: str, title: str) -> None:
        """Enter on the page's link: the page shows and focus lands on its heading."""
        from selenium.webdriver.common.keys import Keys

        self.css(f"#nav-{page}").send_keys(Keys.ENTER)
        self.until(lambda: self.css(f"#page-{page}").is_displayed(), f"the {page} page shows")
        active = self.driver.switch_to.active_element
        assert (active.tag_name, active.text) == ("h1", title)

    def press_enter(self, selector: str) -> None:
        """Activate a control from the keyboard, as a person without a mouse does."""
        from selenium.webdriver.common.keys import Keys

        self.until(lambda: self.css(selector).send_keys(Keys.ENTER) or True, f"{selector} pressed")

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

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's violations on the page as it is shown now (every one, any impact)."""
        if not AXE.is_file():
            pytest.fail("axe-core is missing: run scripts/setup (it runs npm ci)")
        if not self.driver.execute_script("return typeof axe === 'object'"):
            # Injected through the driver, not a <script>: the page's CSP allows only itself.
            self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        return list(self.driver.execute_async_script(RUN_AXE))

    def accessible(self) -> None:
        """Every shown control of the page has a name a screen reader can say, and axe-core
        finds nothing serious or critical."""
        assert self.unlabelled_controls() == []
        failing = [v for v in self.axe() if v["impact"] in AXE_FAILS]
        assert failing == [], failing


def configure_forest(ui: Page, label: str, trees: int) -> None:
    """A scikitrfr model of ``trees`` trees from the generated form: a forest grows in ten
    steps and reports each (docs/tasks.md), so its bar moves through values between 0 and max."""
    ui.go("models")
    ui.until(lambda: ui.all("#model-form [name='features']"), "the model form is generated")
    ui.select("#model-plugin", "scikitrfr")
    ui.until(lambda: ui.all("#model-form [name='n_estimators']"), "the forest's options")
    ui.fill("#model-label", label)
    ui.fill("#model-form [name='features']", "Years:int:1")
    ui.fill("#model-form [name='predict']", "Salary:float:1")
    ui.fill("#model-form [name='n_estimators']", str(trees))
    ui.fill("#model-form [name='random_state']", "0")
    ui.click("#model-submit")
    ui.until(lambda: ui.text_of("#model-done").startswith(f"Model {label} is ready"), "configured")
    assert ui.css("#model-ctx").get_attribute("value") == label


def train_watching_progress(ui: Page) -> list[tuple[float, float]]:
    """Train the chosen model; return the (value, max) pairs the bar showed on the way."""
    ui.driver.execute_script(WATCH_PROGRESS, "#train-progress")
    ui.click("#train-submit")
    bar = ui.css("#train-progress")
    ui.until(lambda: bar.get_attribute("data-state") in ("done", "error"), "training ends")
    assert bar.get_attribute("data-state") == "done", ui.text_of("#train-error")
    assert bar.get_attribute("value") == bar.get_attribute("max")
    seen = ui.driver.execute_script("return window.seenProgress")
    values = [(float(v), float(m)) for v, m in seen if v is not None]
    assert any(0 < v < m for v, m in values), f"no value between 0 and max: {seen}"
    assert values[-1][0] == values[-1][1], seen
    return values


def run_two_task_pipeline(ui: Page, data: Path, *, keyboard: bool = False) -> None:
    """Build split → describe from the generated forms, run it over the CSV, watch both jobs
    finish and their outputs appear as download links (with ``keyboard``, reach the page and
    add the tasks and start the run from the keyboard)."""
    if keyboard:
        ui.go_by_keyboard("pipelines", "Pipelines")
    else:
        ui.go("pipelines")
    press = ui.press_enter if keyboard else ui.click
    ui.until(lambda: ui.all("#pipeline-module option"), "the modules are listed")
    module = ui.css("#pipeline-module")
    wanted = [o.get_attribute("value") for o in ui.all("#pipeline-module option")]
    ui.select("#pipeline-module", next(v for v in wanted if v.endswith(":dataset")))
    assert module.get_attribute("value").endswith(":dataset")
    ui.select("#pipeline-function", "split")
    ui.until(lambda: ui.all("#pipeline-form [name='ratio']"), "split's options form")
    ui.fill("#pipeline-form [name='ratio']", "0.75")
    press("#pipeline-add")
    ui.until(lambda: len(ui.all("#pipeline-tasks li")) == 1, "the first task is listed")
    ui.select("#pipeline-function", "describe")
    press("#pipeline-add")
    ui.until(lambda: len(ui.all("#pipeline-tasks li")) == 2, "the second task is listed")
    steps = [li.get_attribute("data-function") for li in ui.all("#pipeline-tasks li")]
    assert steps == ["split", "describe"]
    assert '"ratio":0.75' in ui.text_of("#pipeline-tasks li[data-function='split']")
    ui.fill("#pipeline-name", "split-describe")
    press("#pipeline-submit")
    made = "Pipeline split-describe created"
    ui.until(lambda: ui.text_of("#pipeline-done").startswith(made), "the pipeline is made")
    ui.until(lambda: ui.all("#pipelines-list li"), "the pipeline is listed")
    assert "dataset.split → dataset.describe" in ui.text_of("#pipelines-list li")

    ui.until(lambda: ui.all("#run-files input[value='salaries.csv']"), "the CSV is offered")
    ui.click("#run-files input[value='salaries.csv']")
    press("#run-start")
    run = "#runs-list article.run"
    ui.until(lambda: ui.all(run), "the run is listed")
    ui.until(lambda: ui.css(run).get_attribute("data-status") in ("FINISHED", "FAILED"), "it ends")
    assert ui.css(run).get_attribute("data-status") == "FINISHED", ui.text_of(run)
    jobs = ui.all(f"{run} tr[data-job]")
    assert [j.get_attribute("data-status") for j in jobs] == ["FINISHED", "FINISHED"]
    outputs = [
        [li.get_attribute("data-file") for li in ui.all(f"{run} tr[data-task='{n}'] .outputs li")]
        for n in (0, 1)
    ]
    names = [sorted(name.rsplit("/", 1)[-1] for name in files) for files in outputs]
    assert names == [
        ["salaries.test.csv", "salaries.train.csv"],
        ["salaries.test.describe.json", "salaries.train.describe.json"],
    ]
    for name in outputs[0] + outputs[1]:
        assert (data / name).is_file(), name
        link = ui.css(f"{run} .outputs li[data-file='{name}'] a")
        assert link.get_attribute("href").endswith(f"/service/files/{name}")
    log = ui.text_of(f"{run} tr[data-task='0'] pre.log")
    assert "salaries.csv: 15 train, 5 test rows" in log
