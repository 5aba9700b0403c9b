"""Who is asking: the user a request's token names."""

from __future__ import annotations

import dataclasses
import re

# User names become directory names (users/U/ in the upload dir) and appear in audit lines.
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    admin: bool = False
    # The user's own endpoint rules (service/auth/rules.py), on top of the server's: each
    # request must fully match one of them too. Empty: only the server's rules apply.
    rules: tuple[str, ...] = ()


def valid_username(name: object) -> bool:
    return isinstance(name, str) and USERNAME.match(name) is not None
