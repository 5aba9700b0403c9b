"""The request guard: allowed hosts, the caller's token, the endpoint rules, the audit line.

Two middlewares. ``guard`` runs inside the error middleware, so each refusal it raises is the
JSON envelope; it resolves the caller (``request[USER]``) once, names the request
``kind/name/action`` from the route table and applies the rules. ``audit`` wraps the error
middleware, so it sees the status and size every client actually got.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from service.auth import names, scope
from service.auth.audit import AuditLog
from service.auth.rules import FORBIDDEN, Rules
from service.auth.tokens import InvalidToken, Tokens
from service.auth.users import User, valid_username
from service.errors import BadRequest, Forbidden, Unauthorized
from service.keys import REQUEST_NAME, USER
from service.observability.requestid import HEADER as REQUEST_ID_HEADER
from service.observability.requestid import REQUEST_ID

if TYPE_CHECKING:
    from service.auth.logins import Logins
    from service.observability.ratelimit import RateLimit

# /v1/… aliases of the route table are the same routes.
_VERSION = re.compile(r"^/v\d+(?=/)")
# Reachable without a token: liveness, the API's description, and getting a token.
PUBLIC = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("POST", "/auth/login"),
    }
)
REGISTRATION = ("POST", "/auth/registration")
# Routes outside the table that hold no data: the JS client, the docs pages, -static files
# (mounted at /{path:.*}). Any other route outside the table needs a token: fail closed.
PUBLIC_PAGES = frozenset({"/api.js", "/docs", "/redoc", "/{path}"})
NO_TOKEN = "Authorization: Bearer <token> required"
INVALID_TOKEN = "Invalid or expired token"
# The verified token's (jti, expiry), for /auth/logout.
TOKEN_ID: web.RequestKey[tuple[str, float]] = web.RequestKey("token_id")


class Guard:
    def __init__(
        self,
        routes: Iterable[web.RouteDef],
        *,
        tokens: Tokens | None,
        rules: Rules | None,
        audit: AuditLog | None,
        limit: RateLimit | None = None,
        allowed_hosts: Iterable[str] = (),
        registration_open: bool = False,
        public_pages: Iterable[str] = (),
    ) -> None:
        self.tokens = tokens
        # Set once the state store exists (-auth token): users, passwords, logins.
        self.logins: Logins | None = None
        self.registration_open = registration_open
        self.rules = rules
        self.audit = audit
        self.limit = limit
        self.templates = names.templates(routes)
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self.public = PUBLIC | {REGISTRATION} if registration_open else PUBLIC
        self.public_pages = PUBLIC_PAGES | frozenset(public_pages)
        # (method, resource's canonical path) → the table's entry: the /v1 prefix and HEAD
        # are worked out once per route, not once per request.
        self._matched: dict[tuple[str, str], names.Template | None] = {}
        # Whether each matched route needs a token, by the same key.
        self._needs: dict[tuple[str, str] | None, bool] = {None: False}
        # A user's own scope, made once (a frozen dataclass costs to build per request).
        self._scopes: dict[User, scope.Scope] = {}

    def template(self, request: web.Request) -> names.Template | None:
        """The route table's entry the request matched (None: static files, unrouted)."""
        resource = request.match_info.route.resource
        if resource is None:
            return None
        key = (request.method, resource.canonical)
        try:
            return self._matched[key]
        except KeyError:
            pass
        method = "GET" if request.method == hdrs.METH_HEAD else request.method
        found = self.templates.get((method, _VERSION.sub("", key[1], count=1)))
        if len(self._matched) < 10_000:  # bounded: one entry per route and method
            self._matched[key] = found
        return found

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.allowed_hosts and not self._host_allowed(request.host):
            raise BadRequest(f"Host {request.host!r} is not allowed (-allowed-hosts)")
        template = self.template(request)
        name = template.name(request.match_info) if template is not None else "page/-/-"
        request[REQUEST_NAME] = name
        user: User | None = None
        acting = scope.OPERATOR
        if self.tokens is not None:
            acting = scope.NOBODY
            if self._needs_token(request, template):
                user = self._authenticate(request)
                if user.admin:
                    acting = scope.of(user, owner=_owner(request), see_all=_all(request))
                else:
                    acting = self._scopes.get(user) or self._scope_of(user)
        request[USER] = user
        if self.rules is not None and not self.rules.allows(name):
            raise Forbidden(FORBIDDEN)
        if self.limit is not None:  # per user once known, else per address
            self.limit.check(request, f"user:{user.name}" if user is not None else None)
        entered = scope.enter(acting)
        try:
            return await handler(request)
        finally:
            scope.leave(entered)

    def _scope_of(self, user: User) -> scope.Scope:
        if len(self._scopes) >= 10_000:  # bounded: users seen since it was last cleared
            self._scopes.clear()
        made = self._scopes[user] = scope.of(user)
        return made

    def _needs_token(self, request: web.Request, template: names.Template | None) -> bool:
        resource = request.match_info.route.resource
        key = (request.method, resource.canonical) if resource is not None else None
        needs = self._needs.get(key)
        if needs is None:
            needs = self._decide(request, template)
            if len(self._needs) < 10_000:
                self._needs[key] = needs
        return needs

    def _decide(self, request: web.Request, template: names.Template | None) -> bool:
        if template is not None:
            return not (
                template.path.startswith("/health")
                or (template.method, template.canonical) in self.public
            )
        resource = request.match_info.route.resource
        if resource is None:  # nothing matched: the 404 or 405 tells nothing
            return False
        return resource.canonical not in self.public_pages

    def _authenticate(self, request: web.Request) -> User:
        assert self.tokens is not None
        header = request.headers.get(hdrs.AUTHORIZATION)
        if header is None:
            raise Unauthorized(NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
        try:
            verified = self.tokens.verify(token)
        except InvalidToken as exc:
            self.event(request, "token_refused", user=None, reason=str(exc))
            raise Unauthorized(
                INVALID_TOKEN, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from None
        request[TOKEN_ID] = (verified.jti, verified.expires_at)
        return verified.user

    def _host_allowed(self, host: str) -> bool:
        host = host.lower()
        bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host in self.allowed_hosts or bare in self.allowed_hosts:
            return True
        # Django's ALLOWED_HOSTS convention: ".example.com" allows it and its subdomains.
        return any(
            allowed.startswith(".") and (bare.endswith(allowed) or bare == allowed[1:])
            for allowed in self.allowed_hosts
        )

    @web.middleware
    async def audit_requests(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # redirects the error middleware lets through
            status = exc.status
            raise
        finally:
            if request.get(REQUEST_NAME, "").split("/", 1)[0] != "health":
                self._audit_request(request, status, response, time.perf_counter() - started)

    def _audit_request(
        self,
        request: web.Request,
        status: int,
        response: web.StreamResponse | None,
        seconds: float,
    ) -> None:
        assert self.audit is not None
        template = self.template(request)
        # Raw values only: the writer thread names, rounds and encodes them (audit.py).
        self.audit.request(
            (
                _name(user_of(request)),
                request.remote or "-",
                request.method,
                template.canonical if template is not None else _canonical(request),
                request.get(REQUEST_NAME, "page/-/-"),
                status,
                _size(response),
                seconds,
                _request_id(request),
                request.match_info.get("path"),
            )
        )

    def event(self, request: web.Request, event: str, *, user: str | None, **fields: Any) -> None:
        """An auth event (login, login_failed, logout, token_refused, …) for the audit log."""
        if self.audit is None:
            return
        self.audit.write(
            event,
            user=user or "-",
            address=request.remote or "-",
            request_id=_request_id(request),
            **fields,
        )


def _canonical(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "-"


def _owner(request: web.Request) -> str | None:
    """An admin's ``?owner=U``: act on U's resources."""
    owner = request.query.get("owner")
    if owner is None:
        return None
    if not valid_username(owner):
        raise BadRequest(f"owner must be a user name, got {owner!r}")
    return owner


def _all(request: web.Request) -> bool:
    return request.query.get("all", "").lower() in ("1", "true", "yes")


def user_of(request: web.Request) -> User | None:
    """The caller (None with -auth none and on public routes)."""
    user: User | None = request.get(USER, None)
    return user


def _name(user: User | None) -> str:
    return "-" if user is None else user.name


def _size(response: web.StreamResponse | None) -> int | None:
    if response is None:
        return None
    if response.prepared:  # streamed by the handler: what was written
        return response.body_length
    return response.content_length


def _request_id(request: web.Request) -> str:
    """The id the request-id middleware gave the request (else the client's header)."""
    value = request.get(REQUEST_ID) or request.headers.get(REQUEST_ID_HEADER)
    return str(value) if value else "-"
