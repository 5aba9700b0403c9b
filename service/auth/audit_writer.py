"""The audit log's writer process: ``python -m service.auth.audit_writer FILE``.

The server (service/auth/audit.py) sends it batches of raw lines on its stdin, each a 4-byte
big-endian length and a ``marshal`` of ``[(time, event, values), ...]``; this process formats
the times and the JSON (the costly part: 2-3 µs a line, which in the server would hold its GIL)
and writes each batch with one ``write`` and one ``flush``, through a
``logging.handlers.WatchedFileHandler`` stream reopened when logrotate has moved or removed
the file (``reopenIfNeeded``, once per batch).

It answers ``ok`` on stdout once the file is open (else ``error: …`` and exit status 1), then
runs until its stdin closes: the server closes it at shutdown, and the kernel does if the
server dies, so it never outlives it. It ignores SIGINT and SIGTERM (a Ctrl-C or a service
manager's stop reaches the server, which drains it first) and imports nothing of the service
but this module, so it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import datetime
import logging.handlers
import marshal
import signal
import sys
from typing import Any, BinaryIO

import orjson

REQUEST = "request"
# A batch is at most QUEUE_MAX (100,000) lines of ~60 bytes marshalled: far below this.
MAX_FRAME = 64 * 1024 * 1024


class Formatter:
    def __init__(self) -> None:
        self._second, self._prefix = -1, ""

    def lines(self, batch: list[tuple[float, str, Any]]) -> bytes:
        # Each line is appended as soon as it is encoded: a list of encoded lines joined at
        # the end kept hundreds of orjson's output buffers alive at once, 6x the cost a line.
        out = bytearray()
        iso = self.iso
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        for at, event, fields in batch:
            try:
                if event == REQUEST:
                    out += dumps(request_line(iso(at), fields), option=newline)
                else:
                    out += dumps({"time": iso(at), "event": event, **fields}, option=newline)
            except (TypeError, ValueError, orjson.JSONEncodeError):
                # The server cleans every value before queueing it (audittext.py); should one
                # still not encode, the line is kept in ASCII rather than losing the batch.
                out += dumps({"time": iso(at), "event": event, "unencodable": ascii(fields)})
                out += b"\n"
        return bytes(out)

    def iso(self, at: float) -> str:
        """UTC, ISO 8601, to the millisecond; the seconds part is formatted once a second,
        the milliseconds are looked up."""
        second = int(at)
        if second != self._second:
            moment = datetime.datetime.fromtimestamp(second, datetime.timezone.utc)
            self._second, self._prefix = second, moment.strftime("%Y-%m-%dT%H:%M:%S")
        return self._prefix + _MILLISECONDS[int((at - second) * 1000)]


_MILLISECONDS = tuple(f".{ms:03d}+00:00" for ms in range(1000))


def request_line(time: str, values: Any) -> dict[str, Any]:
    """The object of a request line (built in one literal: a dict of ``zip`` and a merge cost
    twice as much a line)."""
    user, address, method, route, resource, status, sent, seconds, request_id, path = values
    line = {
        "time": time,
        "event": REQUEST,
        "user": user,
        "address": address,
        "method": method,
        "route": route,
        "resource": resource,
        "status": status,
        "bytes": sent,
        # To the microsecond; round(x, 3) formats and parses a string, 4x the cost.
        "duration_ms": round(seconds * 1_000_000) / 1000,
        "request_id": request_id,
    }
    if path is not None:
        line["path"] = path
    return line


def read_frame(source: BinaryIO) -> list[tuple[float, str, Any]] | None:
    """The next batch, or None at the end of the input."""
    header = _read_exactly(source, 4)
    if header is None:
        return None
    size = int.from_bytes(header, "big")
    if size > MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes (at most {MAX_FRAME})")
    payload = _read_exactly(source, size)
    if payload is None:
        return None
    batch: list[tuple[float, str, Any]] = marshal.loads(payload)
    return batch


def _read_exactly(source: BinaryIO, size: int) -> bytes | None:
    data = source.read(size)
    if len(data) < size:
        return None  # closed, possibly mid-frame: the server died
    return data


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    (path,) = argv
    try:
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", flush=True)
        return 1
    print("ok", flush=True)
    formatter = Formatter()
    source = sys.stdin.buffer
    try:
        while (batch := read_frame(source)) is not None:
            text = formatter.lines(batch)
            try:
                handler.reopenIfNeeded()  # logrotate moved it: a new file at the same path
                stream = handler.stream
                assert stream is not None  # opened above, reopened by reopenIfNeeded
                stream.buffer.write(text)
                stream.buffer.flush()
            except OSError as exc:
                print(f"audit log {path}: {len(batch)} line(s) not written: {exc}", file=sys.stderr)
    finally:
        handler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
