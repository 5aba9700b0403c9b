"""Client errors in the log: one line each, and only so many a minute.

A request the HTTP parser rejects (a bad header, an over-long line) is the client's mistake, not
the server's, yet aiohttp logs each with a full traceback: a thousand such requests added
megabytes to the log. This filter turns those records into one line naming the problem and lets
at most ``burst`` of them through per ``window`` seconds; when the window reopens, one line says
how many were left out. Records marked ``extra={"client_error": True}`` (a plugin refusing
a client's configuration, say) are counted the same way. Nothing else is touched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

# aiohttp's request handler logs protocol errors here.
AIOHTTP_SERVER = "aiohttp.server"
BURST = 20
WINDOW = 60.0


class ClientErrorFilter(logging.Filter):
    def __init__(
        self,
        *,
        burst: int = BURST,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._window_start = -float("inf")
        self._passed = 0
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._is_client_error(record):
            return True
        with self._lock:
            now = self.clock()
            if now - self._window_start >= self.window:
                if self._suppressed:
                    record.args = (record.getMessage(),)
                    record.msg = (
                        f"%s ({self._suppressed} more client errors were not logged in the"
                        f" last {self.window:g} s)"
                    )
                self._window_start, self._passed, self._suppressed = now, 0, 0
            if self._passed >= self.burst:
                self._suppressed += 1
                return False
            self._passed += 1
        return True

    @staticmethod
    def _is_client_error(record: logging.LogRecord) -> bool:
        if getattr(record, "client_error", False):
            record.exc_info = None
            record.exc_text = None
            return True
        if record.name != AIOHTTP_SERVER or not record.exc_info:
            return False
        exc = record.exc_info[1]
        if not isinstance(exc, HttpProcessingError):
            return False
        detail = " ".join(str(exc.message).split())
        if len(detail) > 200:
            detail = detail[:197] + "..."
        record.args = (record.getMessage(), exc.code, detail)
        record.msg = "%s: %d %s"
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install(filter_: ClientErrorFilter | None = None) -> ClientErrorFilter:
    """Attach one filter to every handler of the root logger (records of every logger reach
    those, which a filter on a logger would not see); replaces one installed before."""
    chosen = filter_ or ClientErrorFilter()
    for handler in logging.getLogger().handlers:
        for existing in handler.filters:
            if isinstance(existing, ClientErrorFilter):
                handler.removeFilter(existing)
        handler.addFilter(chosen)
    return chosen
