"""The CLI's checks of the auth options, and what it reads from the environment for them."""

from __future__ import annotations

import argparse
import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from service.auth import rules as endpoint_rules
from service.auth import secret
from service.auth.tokens import MAX_TTL
from service.settings import Settings

log = logging.getLogger("service")


def check(ns: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings fields the namespace and environment give; ValueError says what is wrong."""
    if ns.auth not in ("none", "token"):
        raise ValueError(f"-auth must be none or token, got {ns.auth!r}")
    if ns.registration not in ("open", "closed"):
        raise ValueError(f"-registration must be open or closed, got {ns.registration!r}")
    if ns.registration == "open" and ns.auth != "token":
        raise ValueError("-registration open needs -auth token")
    if ns.token_ttl > MAX_TTL:
        raise ValueError(
            f"-token-ttl {ns.token_ttl}: tokens must expire within 24h (GC API standard)"
        )
    if ns.jwks is not None and (ns.auth != "token" or not ns.jwks_issuer):
        raise ValueError("-jwks needs -auth token and -jwks-issuer (the issuer's iss)")
    rules = list(ns.rule or ())
    try:
        if ns.rules is not None:
            rules += endpoint_rules.read_rules_file(ns.rules)
        rules += endpoint_rules.from_environment(environ.get(endpoint_rules.ENV_RULES))
        endpoint_rules.Rules(rules)
        key = secret.from_environment(environ.get(secret.ENV_SECRET))
    except (endpoint_rules.RuleError, secret.SecretError) as exc:
        raise ValueError(str(exc)) from None
    return {"rule": tuple(rules), "secret_key": key}


def warn_if_open(settings: Settings) -> None:
    """Loudly, at start-up: anyone who can reach a non-loopback address may use everything."""
    if settings.auth != "none" or _loopback(settings.addr):
        return
    banner = "!" * 72
    log.warning(
        "%s\nNO AUTHENTICATION: listening on %s with -auth none. Anyone who can reach this "
        "address may configure plugins, read and delete every file and run modules. Use "
        "-auth token (docs/auth.md) or listen on 127.0.0.1.\n%s",
        banner,
        settings.addr,
        banner,
    )


def _loopback(addr: str) -> bool:
    if addr == "localhost":
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
