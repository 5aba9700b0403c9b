"""Every JavaScript test stands alone: `node --test --test-name-pattern '^NAME$' FILE` passes for
each test of tests/js/ and examples/js/ (issue 13, "Every test stands alone").

scripts/test runs each file whole, in its own order; this runs each test by itself, so a test
that leans on what an earlier one set up (a model trained, a source configured) fails here.
Each run starts its own server (the file's ``before``), so the runs go two at a time, each
within RUN_SECONDS; docs/testing.md gives the figures and why every test, not a sample.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FILES = sorted([*REPO.glob("tests/js/*.test.js"), *REPO.glob("examples/js/*.test.js")])
# A test's name: the string literal opening `test("...", ...)` at the start of a line.
TEST_NAME = re.compile(r'^\s*test\(\s*"((?:[^"\\]|\\.)*)"', re.MULTILINE)
RUN_SECONDS = 240
PARALLEL = 2

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def names(file: Path) -> list[str]:
    found = [
        bytes(name, "utf-8").decode("unicode_escape")
        for name in TEST_NAME.findall(file.read_text())
    ]
    assert found, f"no test found in {file}"
    assert len(set(found)) == len(found), f"two tests of {file} share a name"
    return found


def pattern(name: str) -> str:
    """A JavaScript RegExp source matching exactly ``name`` (re.escape's escapes are valid JS)."""
    return "^" + re.escape(name) + "$"


def run_alone(file: Path, name: str) -> tuple[str, int, str]:
    """(name, exit status, TAP output) of ``name`` run by itself."""
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["node", "--test", "--test-reporter=tap", "--test-name-pattern", pattern(name), str(file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )
    return name, done.returncode, done.stdout + done.stderr


def counts(tap: str) -> dict[str, int]:
    return {key: int(value) for key, value in re.findall(r"^# (\w+) (\d+)$", tap, re.MULTILINE)}


def test_every_js_test_file_is_found() -> None:
    relative = {file.relative_to(REPO).as_posix() for file in FILES}
    assert {"tests/js/api.test.js", "examples/js/salaries.test.js"} <= relative
    assert sum(len(names(file)) for file in FILES) >= 30


@pytest.mark.parametrize("file", FILES, ids=lambda file: file.relative_to(REPO).as_posix())
def test_each_js_test_passes_alone(file: Path) -> None:
    tests = names(file)
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda name: run_alone(file, name), tests))
    failures = []
    for name, status, tap in results:
        seen = counts(tap)
        # Exactly this test ran and passed; node counted the others (skipped by the pattern),
        # so the names read from the source are all the file's tests.
        expected = {"tests": len(tests), "pass": 1, "fail": 0, "cancelled": 0}
        if status != 0 or {key: seen.get(key) for key in expected} != expected:
            failures.append(f"--- {name!r} (exit {status}, counts {seen}):\n{tap[-3000:]}")
    assert not failures, f"{len(failures)} of {len(tests)} fail alone:\n" + "\n".join(failures)
