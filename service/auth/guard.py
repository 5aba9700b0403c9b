"""The request guard: allowed hosts, the caller's token, the endpoint rules, the audit line.

``guard`` is a middleware inside the error middleware, so each refusal it raises is the JSON
envelope; it resolves the caller (``request[USER]``) once, names the request
``kind/name/action`` from the route table and applies the rules. The audit line is handed over
by the outermost observe middleware (``audit_finished``), which already has the status, size,
duration and request id every client actually got: no middleware layer of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractResource

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
# The audit line's values the guard knows (user, method, route, resource, path), set once it
# knows the user; None: not audited (/health*). Absent when the guard refused the request
# before: then the line is made from the request itself.
AUDIT_ENTRY: web.RequestKey[tuple[str, str, str, str, str | None] | None] = web.RequestKey(
    "audit_entry"
)


class _Route:
    """What the guard needs of one matched route and method, worked out once."""

    __slots__ = ("audited", "needs_token", "route", "template")

    def __init__(self, template: names.Template | None, route: str, needs_token: bool) -> None:
        self.template = template
        self.route = route  # the audit line's route: the table's template
        self.needs_token = needs_token
        # /health* answers load balancers many times a second and reads nothing.
        self.audited = template is None or template.plan[0] != (False, "health")


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
        # (method, matched resource) → what the guard and the audit line need of it.
        self._routes: dict[tuple[str, AbstractResource], _Route] = {}
        # A user's own scope by name, made once (a frozen dataclass costs to build and to hash
        # per request); only non-admins', whose scope depends on nothing else.
        self._scopes: dict[str, scope.Scope] = {}

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

    def _route(self, request: web.Request) -> _Route:
        resource = request.match_info.route.resource
        if resource is None:  # nothing matched: the 404 or 405 tells nothing
            return _UNMATCHED
        key = (request.method, resource)
        found = self._routes.get(key)
        if found is None:
            template = self.template(request)
            found = _Route(
                template,
                template.canonical if template is not None else resource.canonical,
                self._decide(template, resource),
            )
            if len(self._routes) < 10_000:  # bounded: one entry per route and method
                self._routes[key] = found
        return found

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.allowed_hosts and not self._host_allowed(request.host):
            raise BadRequest(f"Host {request.host!r} is not allowed (-allowed-hosts)")
        route = self._route(request)
        template = route.template
        name = template.name(request.match_info) if template is not None else "page/-/-"
        request[REQUEST_NAME] = name
        user: User | None = None
        acting = scope.OPERATOR
        if self.tokens is not None:
            acting = scope.NOBODY
            if route.needs_token:
                user = self._authenticate(request)
                if user.admin:
                    acting = scope.of(user, owner=_owner(request), see_all=_all(request))
                else:
                    acting = self._scopes.get(user.name) or self._scope_of(user)
        request[USER] = user
        if self.audit is not None:
            request[AUDIT_ENTRY] = (
                (
                    "-" if user is None else user.name,
                    request.method,
                    route.route,
                    name,
                    request.match_info.get("path"),
                )
                if route.audited
                else None
            )
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
        made = self._scopes[user.name] = scope.of(user)
        return made

    def _decide(self, template: names.Template | None, resource: AbstractResource) -> bool:
        """Whether requests to this route need a token."""
        if template is not None:
            return not (
                template.path.startswith("/health")
                or (template.method, template.canonical) in self.public
            )
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

    def audit_finished(
        self, request: web.Request, status: int, size: int | None, seconds: float, rid: str
    ) -> None:
        """The observe middleware's hand-over, once the client has its answer: the request's
        line for the audit log. ``size``: the body's bytes (None when aiohttp answered)."""
        assert self.audit is not None
        try:
            entry = request[AUDIT_ENTRY]
        except KeyError:  # refused before the guard knew the user (or never guarded)
            entry = self._entry(request)
        if entry is None:
            return
        user, method, route, name, path = entry
        # Raw values only: the writer thread rounds and encodes them (audit.py).
        self.audit.request(
            (user, request.remote or "-", method, route, name, status, size, seconds, rid, path)
        )

    def _entry(self, request: web.Request) -> tuple[str, str, str, str, str | None] | None:
        route = self._route(request)
        if not route.audited:
            return None
        return (
            _name(user_of(request)),
            request.method,
            route.route,
            request.get(REQUEST_NAME, "page/-/-"),
            request.match_info.get("path"),
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


def _request_id(request: web.Request) -> str:
    """The id the request-id middleware gave the request (else the client's header)."""
    value = request.get(REQUEST_ID) or request.headers.get(REQUEST_ID_HEADER)
    return str(value) if value else "-"


# Requests no route matched (404, 405): named page/-/-, no token needed (the refusal tells
# nothing), audited under route "-".
_UNMATCHED = _Route(None, "-", False)
