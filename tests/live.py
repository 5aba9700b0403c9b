"""Black-box helper: run the real CLI on port 0 with -portfile, stop it with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STARTUP_SECONDS = 30


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    scheme: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


def run_cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def live_server(*args: str, cwd: Path, scheme: str = "http") -> Iterator[LiveServer]:
    """Start ``dffml-service-http server ARGS -port 0`` in ``cwd``; yield once it listens."""
    portfile = cwd / f"port-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "service", "server", "-port", "0"),
            *("-portfile", str(portfile), "-addr", "127.0.0.1", "-log", "WARNING"),
            *args,
        ],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not portfile.exists():
            if process.poll() is not None:
                _, err = process.communicate()
                raise RuntimeError(f"server exited {process.returncode}: {err.decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in time")
            time.sleep(0.05)
        yield LiveServer(process, int(portfile.read_text()), scheme)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()
