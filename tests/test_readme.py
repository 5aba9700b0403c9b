"""The README's walkthrough, run as a newcomer runs it: its shell blocks pasted in order into one
shell at the top of a fresh copy of the repository, each block's output compared with the text
block the README shows after it (``…`` stands for text that changes from run to run: iterkeys,
timestamps). The same for the complete programs on docs/clients.md.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import live_server

REPO = Path(__file__).parents[1]
BLOCK_SECONDS = 60
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def section(markdown: str, heading: str) -> str:
    start = markdown.index(f"\n## {heading}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else len(markdown)]


def steps(markdown: str) -> list[tuple[str, str | None]]:
    """(shell block, the text block right after it, if any), in order."""
    blocks = [(lang, body) for lang, body in FENCE.findall(markdown)]
    out: list[tuple[str, str | None]] = []
    for i, (lang, body) in enumerate(blocks):
        if lang == "sh":
            follows = blocks[i + 1] if i + 1 < len(blocks) else None
            out.append((body, follows[1] if follows and follows[0] == "text" else None))
    return out


def matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.strip("\n").split("…"))
    return re.fullmatch(pattern, actual.strip("\n"), re.DOTALL) is not None


def fresh_clone(tmp_path: Path) -> Path:
    """The repository's files as a clone has them (nothing made by running it), and the .venv
    that `scripts/setup` made."""
    clone = tmp_path / "clone"
    anywhere = shutil.ignore_patterns("__pycache__", "*.egg-info", "*_cache", "node_modules")
    at_top = shutil.ignore_patterns(
        ".venv",
        ".git",
        ".benchmarks",
        "build",
        "data",
        "data.state.sqlite3*",
        "server.port",
        "page1.json",
        "*.pem",
        "*.key",
        "*.csr",
    )

    def ignore(directory: str, names: list[str]) -> set[str]:
        made = set(at_top(directory, names)) if Path(directory) == REPO else set()
        return made | anywhere(directory, names)

    shutil.copytree(REPO, clone, ignore=ignore)
    (clone / ".venv").symlink_to(REPO / ".venv")
    return clone


class Shell:
    """One bash, fed blocks on stdin as a terminal would be; stdout read up to a marker."""

    def __init__(self, cwd: Path, stderr: Path) -> None:
        self._stderr = stderr.open("wb")
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            start_new_session=True,  # the server it starts is in its group: stopped with it
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def run(self, block: str, number: int) -> tuple[str, int]:
        assert self.process.stdin is not None
        marker = f"__block_{number}_done__"
        self.process.stdin.write(f"{block}\necho {marker} $?\n")
        self.process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + BLOCK_SECONDS
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"block {number} did not finish:\n{block}") from None
            if line is None:
                raise AssertionError(f"the shell exited during block {number}:\n{block}")
            if line.startswith(marker):
                return "".join(output), int(line.split()[1])
            output.append(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._reader.join(timeout=30)
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            stream.close()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    clone = fresh_clone(tmp_path)
    shell = Shell(clone, tmp_path / "stderr.log")
    try:
        yield shell
    finally:
        shell.close()


def test_the_walkthrough_has_the_steps_a_newcomer_needs() -> None:
    text = section((REPO / "README.md").read_text(), "Walkthrough")
    commands = "\n".join(block for block, _ in steps(text))
    for step in (
        "-portfile",
        "/service/upload/",
        "/configure/source/csv/",
        "/record/",
        "/records/$ITERKEY/",
        "/configure/model/",
        "/train",
        "/score",
        "/predict/",
        "kill $SERVER",
    ):
        assert step in commands, step
    assert all(expected is not None for _, expected in steps(text)), "every block shows its output"


def test_the_readme_walkthrough_runs_as_shown_twice_in_a_row(shell: Shell, tmp_path: Path) -> None:
    """Pasted a second time into the same clone (files, state and server.port of the first run
    left behind), every block prints what the README shows again."""
    text = section((REPO / "README.md").read_text(), "Walkthrough")
    for run in (1, 2):
        for number, (block, expected) in enumerate(steps(text)):
            output, status = shell.run(block, number)
            stderr = (tmp_path / "stderr.log").read_text(errors="replace")
            where = f"run {run}, block {number}"
            assert status == 0, f"{where} failed ({status}):\n{block}\n{output}\n{stderr}"
            if expected is not None:
                assert matches(expected, output), (
                    f"{where}:\n{block}\nshows:\n{expected}\nprinted:\n{output}\n{stderr}"
                )
    assert (tmp_path / "clone" / "data" / "models" / "salary").is_dir()  # the model was saved


def program(language: str) -> str:
    """The one complete program on docs/clients.md in ``language`` (its first fenced block)."""
    text = (REPO / "docs" / "clients.md").read_text()
    blocks = [body for lang, body in FENCE.findall(text) if lang == language]
    complete = [body for body in blocks if "DFFML_URL" in body]
    assert len(complete) == 1, f"one complete {language} program reading DFFML_URL"
    return complete[0]


@pytest.mark.parametrize(("language", "command"), [("python", [sys.executable]), ("js", ["node"])])
def test_the_clients_page_programs_run(language: str, command: list[str], tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    script = clone / f"walkthrough.{'py' if language == 'python' else 'js'}"
    script.write_text(program(language))
    with live_server("-insecure", "-js", "-upload-dir", "data", cwd=clone) as server:
        result = subprocess.run(
            [*command, str(script)],
            cwd=clone,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "DFFML_URL": server.url},
            check=False,
        )
    assert result.returncode == 0, result.stderr
    # Every program ends by printing the prediction the README's walkthrough shows.
    assert result.stdout.strip().splitlines()[-1] == "Salary for 25 years: 260"
