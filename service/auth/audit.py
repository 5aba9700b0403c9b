"""The audit log: one JSON object a line, written by a thread, never by the event loop.

A request only puts its line on a bounded queue (``put_nowait``); a ``QueueListener`` thread
writes the lines through a ``WatchedFileHandler``, which reopens the file when logrotate moves
it. Lines carry names, never secrets: no password, token or Authorization header is ever
passed in, so none can be written.
"""

from __future__ import annotations

import datetime
import logging
import logging.handlers
import queue
from pathlib import Path
from typing import Any

import orjson

# Lines waiting for the writer thread. If the disk stalls long enough to fill it, further
# lines are counted and dropped (with a warning in the server log) rather than blocking
# requests: about 500 bytes a line, so at most ~50 MB of memory.
QUEUE_MAX = 100_000

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(QUEUE_MAX)
        self._file = logging.handlers.WatchedFileHandler(path, encoding="utf-8", delay=True)
        self._file.setFormatter(logging.Formatter("%(message)s"))
        self._listener = logging.handlers.QueueListener(self._queue, self._file)

    def start(self) -> None:
        self._listener.start()

    def close(self) -> None:
        """Write what is queued, stop the thread and close the file (blocks: call it off the
        loop or at shutdown)."""
        self._listener.stop()
        self._file.close()

    def write(self, event: str, **fields: Any) -> None:
        line = orjson.dumps({"time": _now(), "event": event, **fields}).decode("utf-8")
        try:
            self._queue.put_nowait(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("audit log queue full: %d line(s) dropped", self.dropped)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
