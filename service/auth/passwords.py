"""Password hashing (argon2id) and the throttling of failed logins.

A failed login costs the same whether the user exists or not: an unknown name is verified
against a dummy hash made once, so timing does not tell which names exist, and both failures
answer the same message. Hashing runs in a thread, at most ``HASHING_AT_ONCE`` verifications
and ``NEW_HASHES_AT_ONCE`` hashes of new passwords at a time: each argon2id hash takes
``MEMORY_KIB`` of memory, so that bounds what many concurrent logins and sign-ups can make the
server use (and the CPU they take from everything else), and sign-ups never queue logins.

Parameters: OWASP's password storage cheat sheet's first argon2id configuration (m = 19 MiB,
t = 2, p = 1). argon2-cffi's own default (64 MiB, p = 4) takes over a second per login on a busy
2-core machine. Hashes record their parameters, so raising them later keeps old hashes valid.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHING_AT_ONCE = 2
# Hashes of new passwords (registration, password change) have slots of their own: sign-ups,
# however many, never take the slots logins verify in.
NEW_HASHES_AT_ONCE = 1
MEMORY_KIB = 19 * 1024
TIME_COST = 2
# Longest password accepted, in bytes: argon2 takes any length, but hashing megabytes of
# "password" is a cheap way to make the server work.
MAX_PASSWORD_BYTES = 1024
MIN_PASSWORD_CHARS = 8


class Passwords:
    def __init__(self) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=1, type=argon2.Type.ID
        )
        self._slots = asyncio.Semaphore(HASHING_AT_ONCE)
        self._new_slots = asyncio.Semaphore(NEW_HASHES_AT_ONCE)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """A new password's hash, in the slots of new passwords."""
        async with self._new_slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; ``None`` (no such user) costs the same."""
        if stored is None:
            if self._dummy is None:
                async with self._slots:
                    self._dummy = await asyncio.to_thread(
                        self._hasher.hash, "not a password of anyone"
                    )
            stored = self._dummy
            password = password + "\x00"  # never matches the dummy, even by chance
        async with self._slots:
            return await asyncio.to_thread(self._check, stored, password)

    def _check(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def password_problem(password: object) -> str | None:
    """Why ``password`` cannot be a password, or None."""
    if not isinstance(password, str):
        return "password must be a string"
    if len(password) < MIN_PASSWORD_CHARS:
        return f"password must be at least {MIN_PASSWORD_CHARS} characters"
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        return f"password must be at most {MAX_PASSWORD_BYTES} bytes"
    return None


class Throttle:
    """At most ``limit`` failures per key within ``window`` seconds; then wait.

    Keys are user names and client addresses (separate instances). At most ``max_keys`` are
    remembered (the least recently failed go first), so a flood of names cannot grow it.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        failures = self._recent(key)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window - self._clock())

    def failed(self, key: str) -> None:
        failures = self._recent(key)
        if failures is None:
            failures = self._failures[key] = deque(maxlen=self.limit)
        failures.append(self._clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        cutoff = self._clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures
