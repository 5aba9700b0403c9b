"""Black-box helper: run the real CLI on port 0 with -portfile, stop it with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STARTUP_SECONDS = 30


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    scheme: str
    stderr_path: Path | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``signum`` and wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        """Everything the server wrote to stderr so far (its log)."""
        if self.stderr_path is None:
            return ""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def run_cli(
    *args: str, cwd: Path, timeout: float = 60, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def create_user(
    name: str,
    password: str,
    cwd: Path,
    *extra: str,
    command: str = "createuser",
    env: Mapping[str, str] | None = None,
    cli: Sequence[str] = (sys.executable, "-m", "service"),
) -> subprocess.CompletedProcess[str]:
    """``dffml-service-http createuser -username NAME -upload-dir data -password-stdin EXTRA``
    in ``cwd`` (``command``: createsuperuser), the password on stdin; its result, unchecked."""
    return user_command(command, name, cwd, *extra, password=password, env=env, cli=cli)


def user_command(
    command: str,
    name: str,
    cwd: Path,
    *extra: str,
    password: str | None = None,
    env: Mapping[str, str] | None = None,
    cli: Sequence[str] = (sys.executable, "-m", "service"),
) -> subprocess.CompletedProcess[str]:
    """``dffml-service-http COMMAND -username NAME -upload-dir data EXTRA`` in ``cwd`` (a user
    command: createuser, disableuser, deleteuser, createtoken, ...); with ``password``, also
    ``-password-stdin`` and the password on stdin. Its result, unchecked."""
    stdin = ["-password-stdin"] if password is not None else []
    return subprocess.run(
        [*cli, command, "-username", name, "-upload-dir", "data", *stdin, *extra],
        cwd=cwd,
        input="" if password is None else password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


@contextlib.contextmanager
def live_server(
    *args: str,
    cwd: Path,
    scheme: str = "http",
    env: Mapping[str, str] | None = None,
    command: Sequence[str] = (sys.executable, "-m", "service"),
) -> Iterator[LiveServer]:
    """Start ``dffml-service-http server ARGS -port 0`` in ``cwd``; yield once it listens.

    The server's stderr goes to a file in ``cwd`` (a pipe nobody reads could fill up and stall
    it); ``LiveServer.stderr()`` reads it. ``env`` adds to the environment. ``command`` runs
    the CLI (an installed ``dffml-service-http`` script, say).
    """
    stamp = time.monotonic_ns()
    portfile = cwd / f"port-{stamp}"
    stderr_path = cwd / f"stderr-{stamp}.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [
                *command,
                *("server", "-port", "0"),
                *("-portfile", str(portfile), "-addr", "127.0.0.1", "-log", "WARNING"),
                *args,
            ],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    server = LiveServer(process, 0, scheme, stderr_path)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not portfile.exists():
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}: {server.stderr()}")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in time")
            time.sleep(0.05)
        server.port = int(portfile.read_text())
        yield server
    finally:
        try:
            server.stop()
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
