"""Connections: a cap on how many are open, and a deadline for each request's header.

aiohttp has neither. Without them, 500 clients that send half a header and stop stay connected
for minutes, and a thousand use up the process's descriptors so that ``/health`` stops
answering. Every connection the listening socket accepts is wrapped in :class:`GuardedProtocol`
(a thin proxy in front of aiohttp's own request handler) so that:

- a connection must finish each request header within ``header_timeout`` seconds of its first
  byte (of connecting, for the first request): otherwise it is answered 408 and closed;
- at most ``max_connections`` are open. A new connection beyond that closes the oldest one that
  is not being answered (half a header, or idle between requests): a flood of slow or idle
  connections therefore never locks out a real client. Only when every open connection has a
  request in progress is the new one refused, with 503.

Slow bodies are the handlers' business (``-body-timeout`` for JSON bodies,
``-upload-idle-timeout`` for uploads); aiohttp drains the unread body of a request whose handler
has answered for at most its lingering time (10 s) before it closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


def _raw_response(status: str, message: str) -> bytes:
    body = b'{"error":"' + message.encode() + b'"}'
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class ConnectionGuard:
    """Every open connection of one server, oldest first."""

    def __init__(self, *, max_connections: int, header_timeout: float) -> None:
        if max_connections < 1 or not header_timeout > 0:
            raise ValueError("max_connections must be >= 1 and header_timeout > 0")
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self._open: OrderedDict[GuardedProtocol, None] = OrderedDict()
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def __len__(self) -> int:
        return len(self._open)

    def factory(self, inner: Callable[[], Any]) -> Callable[[], GuardedProtocol]:
        def make() -> GuardedProtocol:
            return GuardedProtocol(self, inner())

        return make

    def admit(self, protocol: GuardedProtocol) -> bool:
        """Room for ``protocol``: False when every open connection is busy (refuse it)."""
        while len(self._open) >= self.max_connections:
            victim = next((p for p in self._open if not p.busy), None)
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            self.forget(victim)
            victim.close()
        self._open[protocol] = None
        return True

    def forget(self, protocol: GuardedProtocol) -> None:
        self._open.pop(protocol, None)

    def touch(self, protocol: GuardedProtocol) -> None:
        """``protocol`` was just used: the last to be evicted."""
        if protocol in self._open:
            self._open.move_to_end(protocol)


class GuardedProtocol(asyncio.Protocol):
    """aiohttp's request handler with a header deadline, counted by its guard."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        # When the header now being received began (None: none is being received).
        self._waiting_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def busy(self) -> bool:
        """A request is being answered (its header is in; its handler runs)."""
        return (
            self._waiting_since is None
            and getattr(self._inner, "_current_request", None) is not None
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not self._guard.admit(self):
            transport.write(_raw_response("503 Service Unavailable", "Too many connections"))
            transport.close()
            self._transport = None
            return
        self._inner.connection_made(transport)
        self._start_waiting()

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return
        before = getattr(self._inner, "_request_count", 0)
        self._inner.data_received(data)
        self._guard.touch(self)
        if getattr(self._inner, "_request_count", 0) > before:
            self._stop_waiting()  # a header is complete; its handler takes it from here
        elif self._waiting_since is None and getattr(self._inner, "_current_request", 1) is None:
            self._start_waiting()  # the first bytes of the next request's header

    def eof_received(self) -> bool | None:
        if self._transport is None:
            return None
        result: bool | None = self._inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        self._guard.forget(self)
        if self._transport is not None:
            self._transport = None
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._inner.resume_writing()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _start_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._waiting_since = started
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(self._guard.header_timeout, self._expire, started)

    def _stop_waiting(self) -> None:
        self._waiting_since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, started: float) -> None:
        self._timer = None
        transport = self._transport
        if self._waiting_since != started or transport is None or transport.is_closing():
            return
        self._guard.timed_out += 1
        timeout = self._guard.header_timeout
        transport.write(
            _raw_response(
                "408 Request Timeout",
                f"Request header not received within {timeout:g} s (-header-timeout)",
            )
        )
        transport.close()


class GuardedSite(web.TCPSite):
    """A TCP site whose every connection goes through ``guard``."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, **kwargs: Any) -> None:
        self.guard: ConnectionGuard = kwargs.pop("guard")
        super().__init__(runner, host, port, **kwargs)

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            self.guard.factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
            # A TLS handshake that never completes holds its socket this long at most.
            ssl_handshake_timeout=self.guard.header_timeout if self._ssl_context else None,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
        else:
            self._bound_port = self._port
