"""Readiness: not ready until start-up (preloads, state restore) is done, nor once shutdown begins.

Start-up work that finishes after the app has started (a restore in the background) holds
readiness with :meth:`Readiness.hold` and lets go with :meth:`Readiness.release`.
"""

from __future__ import annotations

from aiohttp import web

STARTING = "starting"
STOPPING = "shutting down"


class Readiness:
    def __init__(self) -> None:
        self._holds: list[str] = [STARTING]

    @property
    def ready(self) -> bool:
        return not self._holds

    @property
    def reason(self) -> str:
        """Why not ready ("" when ready)."""
        return ", ".join(self._holds)

    def hold(self, reason: str) -> None:
        self._holds.append(reason)

    def release(self, reason: str) -> None:
        if reason in self._holds:
            self._holds.remove(reason)

    async def started(self, app: web.Application) -> None:
        """on_startup: runs after every cleanup context's start (preloads among them)."""
        self.release(STARTING)

    async def stopping(self, app: web.Application) -> None:
        """on_shutdown: from here on, load balancers are told to look elsewhere."""
        if STOPPING not in self._holds:
            self._holds.insert(0, STOPPING)
