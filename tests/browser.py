"""Headless Debian Chromium through selenium, set up once for every browser test.

tests/test_ui_browser.py, tests/test_examples.py and tests/test_openapi_pages.py drive pages
with it; each asks for the window size it needs and adds flags of its own (the docs pages'
test points every other host at a proxy that is not there, to prove the pages load nothing from
a CDN).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# No sandbox (containers), no GPU, nothing that phones home or updates itself mid-test.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


@contextlib.contextmanager
def chromium(
    profile: Path, *, width: int = 1280, height: int = 900, flags: tuple[str, ...] = ()
) -> Iterator[Any]:
    """A fresh headless Chromium (its profile in ``profile``), quit on leaving the block.

    The browser's console is logged at every level (``driver.get_log("browser")``)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Chromium and its driver are missing: run scripts/system-deps")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, *flags, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
