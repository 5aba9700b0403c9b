"""The server's log: ``-log-format text|json``, the request id on every line, a cheap access log.

Every line written while a request is handled carries its id (a filter reads it from the
context variable :data:`service.observability.requestid.current`). ``json`` writes one object a
line: ``time``, ``level``, ``logger``, ``message``, ``request_id``, and for access lines
``method``, ``route``, ``path``, ``status``, ``duration_ms``, ``bytes`` and ``remote``.

Writes go through a buffer flushed at least every :data:`FLUSH_SECONDS`, at once for warnings
and errors, and at exit: a line per request written straight to stderr was most of what the
default log cost (docs/observability.md has the figures).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import sys
import threading
import time
import traceback
from typing import IO, Any

import orjson

from service.observability.requestid import current

ACCESS_LOGGER = "service.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
FLUSH_SECONDS = 0.5
BUFFER_BYTES = 64 * 1024
# Fields an access line carries beyond the message (extra= of the logging call).
ACCESS_FIELDS = ("method", "route", "path", "status", "duration_ms", "bytes", "remote")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name in ACCESS_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return orjson.dumps(out, default=str).decode()


class BufferedStreamHandler(logging.StreamHandler[IO[str]]):
    """A StreamHandler that flushes on a timer (and at once from WARNING up), not every line.

    Access lines skip the logging machinery (a LogRecord, a Formatter: most of their cost)
    when this handler is the one that would write them: :meth:`access` formats them itself,
    in the same layout the formatter gives every other line.
    """

    def __init__(self, stream: IO[str], fmt: str = "text", interval: float = FLUSH_SECONDS) -> None:
        super().__init__(stream)
        self.json = fmt == "json"
        self.setFormatter(JsonFormatter() if self.json else logging.Formatter(TEXT_FORMAT))
        self._pending = False
        self._interval = interval
        self._timer: threading.Timer | None = None
        self._second = -1
        self._stamp = ""

    def access(
        self,
        request_id: str,
        remote: str,
        method: str,
        path: str,
        route: str,
        status: int,
        sent: int,
        elapsed: float,
    ) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:  # the date part changes once a second, not per line
            self._second = second
            if self.json:
                self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            else:
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        millis = int((now - second) * 1000)
        if self.json:
            line = orjson.dumps(
                {
                    "time": f"{self._stamp}.{millis:03d}Z",
                    "level": "INFO",
                    "logger": ACCESS_LOGGER,
                    "message": f'{remote} "{method} {path}" {status} {sent} {elapsed * 1000:.2f}ms',
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "bytes": sent,
                    "remote": remote,
                }
            ).decode()
        else:
            line = (
                f"{self._stamp},{millis:03d} INFO {ACCESS_LOGGER} "
                f'[{request_id}] {remote} "{method} {path}" {status} {sent} '
                f"{elapsed * 1000:.2f}ms"
            )
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(line + self.terminator)
            except (OSError, ValueError):
                return
            self._schedule()

    def _schedule(self) -> None:
        if not self._pending:
            self._pending = True
            timer = threading.Timer(self._interval, self._flush_now)
            timer.daemon = True
            self._timer = timer
            timer.start()

    def flush(self) -> None:
        pass  # logging calls this after every record; _flush_now is the real one

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.levelno >= logging.WARNING:
            self._flush_now()
        else:
            with self.lock:  # type: ignore[union-attr]
                self._schedule()

    def _flush_now(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._pending = False
            with contextlib.suppress(OSError, ValueError):  # stderr closed at exit
                self.stream.flush()

    def close(self) -> None:
        self._flush_now()
        if self._timer is not None:
            self._timer.cancel()
        super().close()


def configure(level: int, fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one buffered handler in format ``fmt``."""
    target = stream if stream is not None else sys.stderr
    if stream is None and hasattr(sys.stderr, "buffer"):
        # stderr is unbuffered for text; give it a buffer so lines are written in batches.
        target = open(  # noqa: SIM115  (closed by the handler at exit)
            sys.stderr.fileno(), "w", buffering=BUFFER_BYTES, encoding="utf-8",
            errors="backslashreplace", closefd=False,
        )  # fmt: skip
    handler = BufferedStreamHandler(target, fmt)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    atexit.register(handler.close)
    return handler


class AccessLog:
    """One line per request on the ``service.access`` logger, at INFO.

    When the root logger's only handler is a :class:`BufferedStreamHandler` (the server's own
    configuration, :func:`configure`) and nothing else listens on ``service.access``, the line
    goes straight to that handler; otherwise (an embedding application's logging) it is an
    ordinary log record with the access fields as attributes.
    """

    def __init__(self) -> None:
        self.logger = logging.getLogger(ACCESS_LOGGER)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def write(
        self,
        request_id: str,
        remote: str,
        method: str,
        path: str,
        route: str,
        status: int,
        sent: int,
        elapsed: float,
    ) -> None:
        handlers = logging.root.handlers
        if (
            len(handlers) == 1
            and isinstance(handlers[0], BufferedStreamHandler)
            and not self.logger.handlers
            and self.logger.propagate
        ):
            handlers[0].access(request_id, remote, method, path, route, status, sent, elapsed)
            return
        self.logger.info(
            '%s "%s %s" %d %d %.2fms',
            remote,
            method,
            path,
            status,
            sent,
            elapsed * 1000,
            extra={
                "request_id": request_id,
                "method": method,
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "bytes": sent,
                "remote": remote,
            },
        )
