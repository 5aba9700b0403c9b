"""Settings → the Guard and its middlewares; the audit writer's start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from service.api.keys import AUTH, METRICS, STATE
from service.auth import names, secret
from service.auth.accounts import Accounts
from service.auth.audit import AuditLog
from service.auth.guard import Guard
from service.auth.logins import Logins
from service.auth.rules import Rules
from service.auth.tokens import LEEWAY, Tokens, load_jwks
from service.engine.state import StateUnavailable
from service.engine.state.location import StateLocationError, key_path, state_path
from service.kernel.errors import SetupError
from service.observability.ratelimit import RateLimit
from service.routes import UI_ROUTES
from service.settings import Settings

log = logging.getLogger(__name__)
# How soon a user disabled or deleted from the command line loses its tokens (the admin route
# takes effect at once).
BLOCKED_REFRESH_SECONDS = 1.0

# With a state store several hosts share (-state postgresql://…), how often each host reads the
# revocations and password changes the others made (docs/scaling.md): a logout or a password
# change on one host is refused by every other within this many seconds.
SHARED_REVOCATIONS_EVERY_S = 2.0


class AuthSetupError(SetupError):
    """Auth settings that cannot work (unreadable key or JWKS); the server does not start."""


def needed(settings: Settings) -> bool:
    """With none of the features on, no middleware is installed: nothing changes."""
    return bool(
        settings.auth == "token" or settings.rule or settings.audit_log or settings.allowed_hosts
    )


def build_guard(
    settings: Settings, routes: Iterable[web.RouteDef], limit: RateLimit | None = None
) -> Guard:
    """``limit``: the -rate-limit the guard checks once it knows who sent the request."""
    tokens = None
    if settings.auth == "token":
        try:
            key = settings.secret_key or _signing_key(settings)
            jwks = load_jwks(settings.jwks) if settings.jwks is not None else None
        except (secret.SecretError, StateLocationError, ValueError) as exc:
            raise AuthSetupError(str(exc)) from None
        tokens = Tokens(
            key,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            ttl=float(settings.token_ttl),
            jwks=jwks,
            jwks_issuer=settings.jwks_issuer,
        )
    return Guard(
        routes,
        tokens=tokens,
        rules=Rules(settings.rule) if settings.rule else None,
        limit=limit,
        audit=AuditLog(settings.audit_log) if settings.audit_log is not None else None,
        allowed_hosts=settings.allowed_hosts,
        registration_open=settings.registration == "open",
        # The dashboard's files hold no data (its page has the login form) and -redirects only
        # point elsewhere: both stay reachable without a token.
        public_pages=[
            *(names.parse(route.method, route.path).canonical for route in UI_ROUTES),
            *(redirect.source for redirect in settings.redirects),
        ],
    )


def _signing_key(settings: Settings) -> bytes:
    """-token-key-file, else the key beside the state store; a state kept in memory (no users
    survive a restart either) gets a key in memory."""
    path = settings.token_key_file or key_path(state_path(settings.state, settings.upload_dir))
    return secret.load_or_create(path) if path is not None else secret.ephemeral()


def install(app: web.Application) -> None:
    """The guard's state and start-up, when create_app built one (app[AUTH]: it wires the
    guard's ``admit`` into the error middleware and ``audit_finished`` into the observe one).

    With tokens, users live in the state store (component "auth"), which must be in the app
    already: its schema is registered before the store opens."""
    if AUTH not in app:
        return
    guard = app[AUTH]
    audit = guard.audit
    if audit is not None:
        app[METRICS].counter(
            "dffml_audit_lines_dropped",
            "Audit log lines dropped (queue full, or no writer could take them) since start",
            (),
            lambda: [((), audit.dropped)],
        )
    if guard.tokens is not None:
        Accounts.register(app[STATE])
        guard.logins = Logins(Accounts(app[STATE]), guard.tokens)
    app.cleanup_ctx.append(_running)


async def _running(app: web.Application) -> AsyncIterator[None]:
    audit = app[AUTH].audit
    if audit is not None:
        try:
            await asyncio.to_thread(audit.start)
        except OSError as exc:
            detail = exc.strerror or exc
            raise AuthSetupError(f"cannot open -audit-log {audit.path}: {detail}") from None
    logins = app[AUTH].logins
    watcher: asyncio.Task[None] | None = None
    follow: asyncio.Task[None] | None = None
    if logins is not None:  # the state store is open by now (its cleanup context came first)
        await logins.restore()
        watcher = asyncio.create_task(_watch_blocked(logins), name="auth-blocked-users")
        if app[STATE].dialect == "postgresql":
            follow = asyncio.create_task(_follow_other_hosts(logins))
    try:
        yield
    finally:
        for task in (watcher, follow):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if audit is not None:
            await asyncio.to_thread(audit.close)


async def _watch_blocked(logins: Logins) -> None:
    """Users disabled or deleted by the CLI (another process, the same state store): their
    tokens are refused within ``BLOCKED_REFRESH_SECONDS``. One query of the users table a
    second; a failure is logged once (not every second) and tried again."""
    failing = False
    while True:
        await asyncio.sleep(BLOCKED_REFRESH_SECONDS)
        try:
            await logins.refresh_blocked()
        except StateUnavailable:
            continue  # the database is unreachable for now (the store logged it)
        except Exception:
            if not failing:
                log.exception("cannot read disabled users from the state store")
            failing = True
        else:
            failing = False


async def _follow_other_hosts(logins: Logins) -> None:
    """Take up the revocations and password changes other hosts wrote to the shared store.
    Only what is new is applied: applying clears the tokens' admission cache."""
    tokens = logins.tokens
    while True:
        await asyncio.sleep(SHARED_REVOCATIONS_EVERY_S)
        try:
            revoked = await logins.accounts.revoked()
            changes = await logins.accounts.password_changes()
        except StateUnavailable:
            # The database is unreachable for now (the store logged it): this host keeps what
            # it knows and reads again later.
            continue
        except Exception:
            log.exception("cannot read revocations from the shared state store")
            continue
        now = tokens.clock()
        new_revoked = {
            jti: at
            for jti, at in revoked.items()
            # A revocation of a token that has expired anyway the tokens forget: not new.
            if jti not in tokens.revoked and at + LEEWAY > now
        }
        new_changes = {
            name: math.floor(at)
            for name, at in changes.items()
            if tokens.not_before.get(name) != math.floor(at)
        }
        if new_revoked or new_changes:
            tokens.restore(new_revoked, new_changes)
