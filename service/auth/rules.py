"""Endpoint rules: a request named ``kind/name/action`` must fully match one of them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

ENV_RULES = "DFFML_SERVICE_HTTP_RULES"
FORBIDDEN = "Forbidden by the server's rules"


class RuleError(ValueError):
    pass


class Rules:
    def __init__(self, patterns: Iterable[str]) -> None:
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
        self.allows = lru_cache(maxsize=4096)(self._allows)

    def _allows(self, name: str) -> bool:
        """Anchored at both ends: ``model/foo`` does not allow ``model/foobar/predict``."""
        return any(rule.fullmatch(name) for rule in self._compiled)


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
