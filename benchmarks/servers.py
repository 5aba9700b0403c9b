"""Start and stop the servers under test, and read their memory and CPU from /proc.

Three servers answer the same routes: this project's, the original DFFML HTTP service (in its own
Python 3.8 virtualenv, created on first use outside the repository), and a bare aiohttp + orjson
app (benchmarks/ceiling.py). Every one listens on 127.0.0.1 only and is stopped by ``stop()``,
which the runner calls from ``finally`` blocks (so also on Ctrl-C and errors).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ORIGINAL_PYTHON = Path(
    os.environ.get("DFFML_ORIGINAL_PYTHON", "/root/.pyenv/versions/3.8.18/bin/python")
)
ORIGINAL_VENV = Path(
    os.environ.get("DFFML_ORIGINAL_VENV", Path.home() / ".cache" / "dffml-bench" / "original-venv")
)
# numpy < 1.24 because dffml-model-scikit 0.1.0 still uses numpy.typeDict.
ORIGINAL_PACKAGES = ("dffml", "dffml-service-http", "dffml-model-scikit", "numpy<1.24")
START_SECONDS = 600  # the original parses a 1M-row CSV into memory before it listens (~30 s)
STOP_SECONDS = 30
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Server:
    """A running server process and where it listens."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    uses_location: bool = True  # the original calls a model's directory "directory"
    sampler: RssSampler | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        """Resident set size in bytes."""
        with open(f"/proc/{self.process.pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE

    def cpu_seconds(self) -> float:
        """User + system CPU time consumed so far, by the server and its child processes (the
        audit log's writer): the work of serving, wherever it runs."""
        pid = self.process.pid
        total = _cpu_ticks(pid)
        for child in children(pid):
            with contextlib.suppress(OSError):  # it may have just exited
                total += _cpu_ticks(child)
        return total / CLOCK_TICKS

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in {STOP_SECONDS}s: killing it")
                self.process.kill()
                self.process.wait()


class RssSampler:
    """Samples a server's RSS every few milliseconds while a workload runs: its peak."""

    def __init__(self, server: Server, interval: float = 0.02) -> None:
        self.server = server
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.peak = self.server.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        with contextlib.suppress(OSError):  # the server may have just exited
            self.peak = max(self.peak, self.server.rss())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


def children(pid: int) -> list[int]:
    """The child processes of ``pid``, whichever of its threads started them."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the thread may have just ended
            found += map(int, (task / "children").read_text().split())
    return found


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # Fields after the command name, which may contain spaces, start after ")".
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_portfile(process: subprocess.Popen[bytes], portfile: Path, log_path: Path) -> int:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if portfile.exists() and portfile.read_text().strip():
            return int(portfile.read_text())
        _check_alive(process, log_path, deadline)
        time.sleep(0.05)


def _wait_for_http(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return  # answering at all means listening
        except OSError:
            _check_alive(process, log_path, deadline)
            time.sleep(0.2)


def _check_alive(process: subprocess.Popen[bytes], log_path: Path, deadline: float) -> None:
    if process.poll() is not None:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"server exited with {process.returncode}:\n{tail}")
    if time.monotonic() > deadline:
        process.kill()
        process.wait()
        raise RuntimeError(f"server did not listen within {START_SECONDS}s")


def _spawn(
    args: list[str], cwd: Path, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in the terminal reaches only the runner, which then stops
            # each server itself, in order.
            start_new_session=True,
        )


def start_this(
    work: Path,
    csv: Path,
    with_csv: bool,
    with_slr: bool,
    *,
    name: str = "this",
    log_level: str | None = "30",
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> Server:
    """This project's server, preloaded like the original: s1 = csv, m1 = slr (each when this
    checkout has the plugin). ``log_level`` None keeps the server's default log; ``extra``
    options and ``env`` variables are added; ``prefix`` runs it under another command
    (valgrind, for instructions.py).

    Every server gets the same PYTHONHASHSEED (unless ``env`` sets one): with random seeds two
    servers of the same code lay out their dictionaries differently. Under callgrind two
    identical servers then differed by about 1% in instructions per request; with one seed
    they execute the same to within 0.1%, so a comparison is of the options, not the seeds."""
    upload_dir = work / "upload"
    upload_dir.mkdir(parents=True, exist_ok=True)
    portfile = work / "port"
    log_path = work / "server.log"
    args = [
        *prefix,
        *(sys.executable, "-m", "service", "server", "-port", "0", "-addr", "127.0.0.1"),
        *("-portfile", str(portfile), "-insecure", "-upload-dir", str(upload_dir)),
    ]
    if log_level is not None:
        args += ["-log", log_level]
    if with_csv:
        args += ["-sources", "s1=csv", "-source-s1-filename", str(csv)]
    if with_slr:
        args += ["-models", "m1=slr", "-model-m1-features", "Years:int:1"]
        args += ["-model-m1-predict", "Salary:int:1", "-model-m1-location", str(upload_dir / "m1")]
    args += extra
    process = _spawn(args, REPO, log_path, {"PYTHONHASHSEED": "0", **(env or {})})
    try:
        port = _wait_for_portfile(process, portfile, log_path)
    except BaseException:
        _reap(process)
        raise
    return Server(name, process, port, log_path)


def original_available() -> str | None:
    """None when the original can run here, else why not."""
    if not ORIGINAL_PYTHON.exists():
        return f"no Python 3.8 at {ORIGINAL_PYTHON} (set DFFML_ORIGINAL_PYTHON)"
    return None


def ensure_original_venv() -> Path:
    """The original's ``dffml`` command, installing it into its own venv on first use."""
    dffml = ORIGINAL_VENV / "bin" / "dffml"
    marker = ORIGINAL_VENV / ".complete"
    if marker.exists():
        return dffml
    log(f"creating the original's virtualenv in {ORIGINAL_VENV} (first use; takes a minute)")
    subprocess.run([str(ORIGINAL_PYTHON), "-m", "venv", str(ORIGINAL_VENV)], check=True)
    subprocess.run(
        [str(ORIGINAL_VENV / "bin" / "pip"), "install", "-q", *ORIGINAL_PACKAGES],
        check=True,
        timeout=1800,
    )
    marker.write_text(" ".join(ORIGINAL_PACKAGES) + "\n")
    return dffml


def start_original(work: Path, csv: Path) -> Server:
    """The original service, started as its documentation says. It has no portfile."""
    dffml = ensure_original_venv()
    upload_dir = work / "upload"
    upload_dir.mkdir(parents=True, exist_ok=True)
    log_path = work / "server.log"
    port = free_port()
    args = [
        *(str(dffml), "service", "http", "server", "-insecure", "-port", str(port)),
        *("-upload-dir", str(upload_dir), "-log", "30"),
        *("-sources", "s1=csv", "-source-s1-filename", str(csv)),
        *("-models", "m1=slr", "-model-m1-features", "Years:int:1"),
        *("-model-m1-predict", "Salary:int:1", "-model-m1-directory", str(upload_dir / "m1")),
    ]
    # It resolves relative paths against its working directory, so run it in the upload dir to
    # let the same relative file names work against both servers.
    process = _spawn(args, upload_dir, log_path)
    try:
        _wait_for_http(process, f"http://127.0.0.1:{port}/list/sources", log_path)
    except BaseException:
        _reap(process)
        raise
    return Server("original", process, port, log_path, uses_location=False)


def start_ceiling(work: Path, csv: Path, list_models: Path | None) -> Server:
    """The bare aiohttp + orjson app serving the same payloads from memory."""
    upload_dir = work / "upload"
    upload_dir.mkdir(parents=True, exist_ok=True)
    portfile = work / "port"
    log_path = work / "server.log"
    args = [
        *(sys.executable, str(REPO / "benchmarks" / "ceiling.py")),
        *("--portfile", str(portfile), "--csv", str(csv), "--upload-dir", str(upload_dir)),
    ]
    if list_models is not None:
        args += ["--list-models", str(list_models)]
    process = _spawn(args, REPO, log_path)
    try:
        port = _wait_for_portfile(process, portfile, log_path)
    except BaseException:
        _reap(process)
        raise
    return Server("ceiling", process, port, log_path)


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
