"""-rate-limit: a token bucket per client, 429 with Retry-After beyond it.

Each client (its address, or its user once auth has found who sent the request) has a bucket of
``burst`` tokens refilled at ``rate`` a second; a request takes one. ``/health`` and
``/health/*`` are never limited: load balancers and orchestrators must always get their answer.
At most ``max_clients`` buckets are kept, so memory stays bounded whatever number of addresses
send requests: past that, buckets that have refilled go first (they would come back full), then
those of the clients first seen.

The check is a plain call made where the key is known, not a middleware layer of its own: the
auth guard makes it once it knows the user, else the error middleware makes it first
(:func:`service.app.create_app` chooses).
"""

from __future__ import annotations

import itertools
import math
import time
from typing import TYPE_CHECKING

from aiohttp import web

from service.kernel.errors import TooManyRequests

if TYPE_CHECKING:
    from service.settings import Settings


class TokenBuckets:
    def __init__(self, rate: float, burst: int, max_clients: int) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("rate > 0, burst >= 1 and max_clients >= 1 are required")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        # key -> [tokens left, when they were counted], changed in place (no allocation a
        # request); insertion order = first seen.
        self._buckets: dict[str, list[float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> float:
        """Take a token for ``key``: 0.0 if it was there, else the seconds until one is."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._make_room(now)
            bucket = self._buckets[key] = [float(self.burst), now]
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def _make_room(self, now: float) -> None:
        """Drop the buckets that have refilled (they would come back full: nothing is lost),
        then, if that freed less than a quarter, the first seen of the rest, so the next sweep
        is at least a quarter of ``max_clients`` new clients away."""
        buckets, burst, rate = self._buckets, self.burst, self.rate
        full = [
            key for key, (tokens, when) in buckets.items() if tokens + (now - when) * rate >= burst
        ]
        for key in full:
            del buckets[key]
        short = max(1, self.max_clients // 4) - len(full)
        if short > 0:
            for key in list(itertools.islice(buckets, short)):
                del buckets[key]


def exempt(path: str) -> bool:
    """``/health``, ``/health/...`` and their ``/v1`` aliases (``path`` decoded)."""
    if not path.startswith(_HEALTH):  # one test for nearly every request
        return False
    if path.startswith("/v1/"):
        path = path[3:]
    return path == "/health" or path.startswith("/health/")


_HEALTH = ("/health", "/v1/health")


class RateLimit:
    def __init__(self, buckets: TokenBuckets) -> None:
        self.buckets = buckets
        self._shown = f"{buckets.rate:g}/s with a burst of {buckets.burst}"
        self._clock = time.monotonic

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimit | None:
        """The limit the settings ask for: None without -rate-limit."""
        if settings.rate_limit is None:
            return None
        burst = settings.rate_limit_burst or max(1, math.ceil(settings.rate_limit))
        return cls(TokenBuckets(settings.rate_limit, burst, settings.rate_limit_clients))

    def check(self, request: web.Request, key: str | None = None) -> None:
        """Take a token from the bucket of ``key`` (default: the client's address), or raise
        TooManyRequests with Retry-After."""
        raw = request.raw_path  # as sent: request.path would decode it, for every request
        if (raw.startswith(_HEALTH) or "%" in raw) and exempt(request.path):
            return
        wait = self.buckets.take(key or request.remote or "-", self._clock())
        if wait:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(
                f"Too many requests: the limit is {self._shown} (-rate-limit); "
                f"retry after {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
