"""Helpers several test files share: signing in as a user, and waiting for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from service.api.keys import AUTH
from service.kernel.users import User


def as_user(client: Any, name: str, *, admin: bool = False) -> dict[str, str]:
    """The Authorization header of a token the in-process app issued for ``name``."""
    token = client.app[AUTH].tokens.issue(User(name, admin=admin)).token
    return {"Authorization": f"Bearer {token}"}


async def until(
    condition: Callable[[], object], what: str = "the condition", seconds: float = 30
) -> None:
    """Poll ``condition`` while the server works on something the test cannot await."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.025)
