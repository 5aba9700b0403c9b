"""Who is asking: the user a request's token names."""

from __future__ import annotations

import dataclasses
import re

# User names become directory names (users/U/ in the upload dir) and appear in audit lines.
# Always matched whole (fullmatch): with re.match, "$" also matches before a final newline, so
# "admin\n" would pass. The anchors stay for the OpenAPI schema's pattern (ECMA-262 has no \Z).
# ASCII only, so no Unicode normalisation applies; names are case-sensitive, and a new name equal
# to an existing one but for case is refused (service/auth/accounts.py).
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    admin: bool = False
    # The user's own endpoint rules (service/auth/rules.py), on top of the server's: each
    # request must fully match one of them too. Empty: only the server's rules apply.
    rules: tuple[str, ...] = ()


def valid_username(name: object) -> bool:
    return isinstance(name, str) and USERNAME.fullmatch(name) is not None
