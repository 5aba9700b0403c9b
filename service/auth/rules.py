"""Endpoint rules: a request named ``kind/name/action`` must fully match one of them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

ENV_RULES = "DFFML_SERVICE_HTTP_RULES"
FORBIDDEN = "Forbidden by the server's rules"
FORBIDDEN_FOR_USER = "Forbidden by this user's rules"
# A user's own rules: how many, how long each and in all. They travel in every token of the
# user, whose Authorization header must stay under aiohttp's 8,190-byte limit for a header.
MAX_USER_RULES = 64
MAX_RULE_CHARS = 500
MAX_RULES_CHARS = 4000


class RuleError(ValueError):
    pass


class Rules:
    def __init__(self, patterns: Iterable[str], *, verdicts: int = 4096) -> None:
        self.patterns = tuple(patterns)
        compiled = []
        for pattern in self.patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise RuleError(f"rule {pattern!r} is not a regular expression: {exc}") from None
        self._compiled = tuple(compiled)
        # Request names repeat (one per route and label); remembering the verdict for the last
        # few thousand keeps the check to a dict lookup.
        self.allows = lru_cache(maxsize=verdicts)(self._allows)

    def _allows(self, name: str) -> bool:
        """Anchored at both ends: ``model/foo`` does not allow ``model/foobar/predict``."""
        return any(rule.fullmatch(name) for rule in self._compiled)


def user_rules(value: object) -> tuple[str, ...]:
    """A user's rules as a client or the CLI gives them: a list of regular expressions."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(r, str) for r in value):
        raise RuleError("rules must be a list of regular expressions")
    if len(value) > MAX_USER_RULES:
        raise RuleError(f"at most {MAX_USER_RULES} rules a user")
    for pattern in value:
        if not pattern or len(pattern) > MAX_RULE_CHARS:
            raise RuleError(f"a rule has 1 to {MAX_RULE_CHARS} characters")
    if sum(len(pattern) for pattern in value) > MAX_RULES_CHARS:
        raise RuleError(f"at most {MAX_RULES_CHARS} characters of rules a user")
    patterns = tuple(value)
    compiled(patterns)  # RuleError if one is not a regular expression
    return patterns


@lru_cache(maxsize=1024)
def compiled(patterns: tuple[str, ...]) -> Rules:
    """One Rules per set of a user's rules, shared by their tokens (bounded: 1,024 sets, each
    remembering 256 verdicts)."""
    return Rules(patterns, verdicts=256)


def read_rules_file(path: Path) -> list[str]:
    """One regular expression a line; blank lines and lines starting with ``#`` are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        raise RuleError(f"cannot read -rules {path}: {detail}") from None
    lines = [line.strip() for line in text.splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    if not rules:
        raise RuleError(f"-rules {path} has no rules: it would forbid every request")
    return rules


def from_environment(value: str | None) -> list[str]:
    """DFFML_SERVICE_HTTP_RULES: rules separated by ``;``."""
    if not value:
        return []
    return [rule.strip() for rule in value.split(";") if rule.strip()]
