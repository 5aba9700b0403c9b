"""The audit log: one JSON object a line, encoded and written by a process of its own.

A request only appends its raw values and the time to a bounded deque (an atomic C operation, no
lock, no wake-up, no encoding). A thread takes everything queued every ``FLUSH_SECONDS`` and
sends it, ``marshal``-ed in one frame (0.1 µs a line), down a pipe to the writer process
(service/auth/audit_writer.py), which formats the times and the JSON and writes the file with
logrotate's semantics (``WatchedFileHandler``). Encoding in a thread of the server cost 2-4 µs a
line, all of it holding the GIL the event loop needs; in the writer process it runs on another
core, and the server keeps only the hand-over.

If the writer process dies, the thread starts another one and sends it the batch again; if
that fails too, the batch is dropped and counted (with an error in the server log). Past
``QUEUE_MAX`` waiting lines (the disk or the writer stalls), new lines are dropped and counted
rather than making requests wait. Either way the count is in the server log and in /metrics
(``dffml_audit_lines_dropped_total``).

Every value a client could have chosen is made safe before it is queued
(service/auth/audittext.py): encodable text, control characters escaped, capped in length, so
no request can make the writer fail on another request's line.

Lines carry names, never secrets: no password, token or Authorization header is ever passed in,
so none can be written.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import marshal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from service.auth.audittext import clean, clean_value

# Lines waiting for the writer: about 300 bytes each in memory, so at most ~30 MB if the disk
# stalls.
QUEUE_MAX = 100_000
FLUSH_SECONDS = 0.05
REQUEST = "request"
STOP_SECONDS = 30  # for the writer to drain at shutdown before it is killed

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.dropped = 0
        # (time, event, values) waiting for the thread; the guard appends request lines itself
        # (its hot path: no call) while there are fewer than QUEUE_MAX, else calls request().
        self.lines: collections.deque[tuple[float, str, Any]] = collections.deque()
        self._writer: subprocess.Popen[bytes] | None = None
        self._stopping = False  # set by close(); the thread sees it within FLUSH_SECONDS
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)

    @property
    def writer_pid(self) -> int | None:
        return self._writer.pid if self._writer is not None else None

    def start(self) -> None:
        """Start the writer process, which opens the file (OSError if it cannot), and the
        thread that feeds it (blocks briefly: call it off the loop)."""
        self._writer = self._spawn()
        self._thread.start()

    def close(self) -> None:
        """Send what is queued, stop the thread and the writer, which writes it all first
        (blocks: call it off the loop or at shutdown)."""
        self._stopping = True
        if self._thread.is_alive():
            self._thread.join()
        self._send_pending()
        writer, self._writer = self._writer, None
        if writer is not None:
            _finish(writer)

    def write(self, event: str, **fields: Any) -> None:
        """An event line (login, logout, token_refused, …)."""
        if len(self.lines) >= QUEUE_MAX:
            self._drop(1, "queue full")
            return
        # Made safe here, before the queue: a reason may quote what a client sent.
        plain = {k: clean_value(v) for k, v in fields.items()}
        self.lines.append((time.time(), clean(event), plain))

    def request(self, values: tuple[Any, ...]) -> None:
        """A request line from the guard: user, address, method, route, resource, status,
        bytes, the duration in seconds, request id and path (None when the route has none), in
        that order (the hot path: one tuple), its text already made safe (audittext.py)."""
        if len(self.lines) >= QUEUE_MAX:
            self._drop(1, "queue full")
            return
        self.lines.append((time.time(), REQUEST, values))

    def _run(self) -> None:
        # time.sleep, one C call, rather than Event.wait with a timeout (a Condition, a new
        # lock and a dozen Python calls each time): this wakes 20 times a second for good.
        while not self._stopping:
            time.sleep(FLUSH_SECONDS)
            self._send_pending()

    def _send_pending(self) -> None:
        if not self.lines:
            return
        pending = self.lines
        batch = [pending.popleft() for _ in range(min(len(pending), QUEUE_MAX))]
        try:
            payload = marshal.dumps(batch)
        except ValueError as exc:  # a value marshal cannot carry: a bug, but never the thread's end
            self._drop(len(batch), f"cannot send: {exc}")
            return
        frame = len(payload).to_bytes(4, "big") + payload
        for attempt in (1, 2):
            writer = self._writer
            try:
                if writer is None or writer.poll() is not None:
                    writer = self._writer = self._restart(writer)
                assert writer.stdin is not None
                writer.stdin.write(frame)
                writer.stdin.flush()
                return
            except OSError as exc:  # the writer died (BrokenPipe) or cannot be started
                if attempt == 2:
                    self._drop(len(batch), f"writer failed: {exc}")

    def _restart(self, old: subprocess.Popen[bytes] | None) -> subprocess.Popen[bytes]:
        status = old.poll() if old is not None else None
        log.error(
            "audit log %s: the writer process exited (%s); starting another", self.path, status
        )
        if old is not None:
            _finish(old)
        return self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        writer = subprocess.Popen(
            [sys.executable, "-m", "service.auth.audit_writer", str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Its own session: a Ctrl-C in the terminal reaches the server only, which drains
            # the writer before it stops.
            start_new_session=True,
        )
        assert writer.stdout is not None
        answer = writer.stdout.readline().decode("utf-8", "replace").strip()
        writer.stdout.close()
        if answer != "ok":
            _finish(writer)
            raise OSError(answer.removeprefix("error: ") or "the audit log writer did not start")
        return writer

    def _drop(self, lines: int, why: str) -> None:
        first = self.dropped == 0
        before, self.dropped = self.dropped, self.dropped + lines
        if first or before // 1000 != self.dropped // 1000 or lines > 1:
            log.error("audit log %s: %s: %d line(s) dropped so far", self.path, why, self.dropped)


def _finish(writer: subprocess.Popen[bytes]) -> None:
    """Close the writer's input (it writes what it has and exits); kill it if it does not."""
    stdin: IO[bytes] | None = writer.stdin
    if stdin is not None:
        with contextlib.suppress(OSError):  # it is gone already
            stdin.close()
    try:
        writer.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        log.error("audit log writer %d did not stop in %d s: killing it", writer.pid, STOP_SECONDS)
        writer.kill()
        writer.wait()
