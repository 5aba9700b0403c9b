"""The request guard: allowed hosts, the caller's token, the endpoint rules, the audit line.

``admit`` runs first thing inside the error middleware, so each refusal it raises is the JSON
envelope; it resolves the caller (``user_of(request)``) once, names the request
``kind/name/action`` from the route table, applies the rules and enters the caller's scope.
The audit line is handed over by the outermost observe middleware (``audit_finished``), which
already has the status, size, duration and request id every client actually got. Neither has
a middleware layer of its own.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import AbstractResource

from service.auth import names
from service.auth.audit import QUEUE_MAX, REQUEST, AuditLog
from service.auth.audittext import clean
from service.auth.rules import FORBIDDEN, FORBIDDEN_FOR_USER, Rules
from service.auth.tokens import Admitted, InvalidToken, Tokens
from service.kernel import scope
from service.kernel.errors import BadRequest, Forbidden, Unauthorized
from service.kernel.users import User, valid_username
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
# What the guard found of a request, in one tuple set once (one assignment costs less than
# four): the caller (None with -auth none and on public routes), the request's
# kind/name/action name, the verified token's (jti, expiry) for /auth/me and /auth/logout, and
# the route's entry. Absent when the guard refused the request before knowing the caller.
Admission = tuple["User | None", str, "tuple[str, float] | None", "_Route"]
ADMISSION: web.RequestKey[Admission] = web.RequestKey("admission")


class _Route:
    """What the guard needs of one matched route and method, worked out once."""

    __slots__ = (
        "account",
        "after",
        "audited",
        "before",
        "needs_token",
        "route",
        "template",
        "variable",
    )

    def __init__(self, template: names.Template | None, route: str, needs_token: bool) -> None:
        self.template = template
        self.route = route  # the audit line's route: the table's template
        self.needs_token = needs_token
        # /health* answers load balancers many times a second and reads nothing.
        self.audited = template is None or template.plan[0] != (False, "health")
        # /auth/*: the caller's own account (who am I, log out, change the password), which a
        # user's own rules never forbid.
        self.account = template is not None and template.plan[0] == (False, "auth")
        # The request's name around its one variable (names.Template.pieces), for admit to
        # inline; requests outside the table are page/-/-.
        self.before, self.variable, self.after = (
            template.pieces if template is not None else ("page/-/-", None, "")
        )

    def name(self, match_info: names.MatchInfo) -> str:
        return self.template.name(match_info) if self.template is not None else self.before


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
        # Authorization header → tokens.Admitted (user, token id, accepted until, the user's
        # own rules): tokens.py empties it in place when a revocation or a password change
        # could refuse one of them.
        self._admitted: dict[str, Admitted] = tokens.admitted if tokens is not None else {}
        # Set once the state store exists (-auth token): users, passwords, logins.
        self.logins: Logins | None = None
        self.registration_open = registration_open
        self.rules = rules
        self.audit = audit
        self._audit_lines = audit.lines if audit is not None else collections.deque()
        self.limit = limit
        self.templates = names.templates(routes)
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self.public = PUBLIC | {REGISTRATION} if registration_open else PUBLIC
        self.public_pages = PUBLIC_PAGES | frozenset(public_pages)
        # Matched route (one per method, so one lookup; routes of any method "*" by
        # (method, route)) → what the guard and the audit line need of it.
        self._routes: dict[object, _Route] = {}
        # A user's own scope by name, made once (a frozen dataclass costs to build and to hash
        # per request); only non-admins', whose scope depends on nothing else.
        self._scopes: dict[str, scope.Scope] = {}
        # Requests without a user (-auth none, public routes) are judged by the server's rules
        # alone wherever they name a resource (scope.require).
        self._server_judge = self._judge(None)
        judged = self._server_judge is not None
        self._operator = scope.Scope(judge=self._server_judge) if judged else scope.OPERATOR
        self._nobody = (
            scope.Scope(namespace=scope.NOBODY.namespace, judge=self._server_judge)
            if judged
            else scope.NOBODY
        )

    def template(self, request: web.Request) -> names.Template | None:
        """The route table's entry the request matched (None: static files, unrouted); the
        /v1 prefix and HEAD are worked out once per route (``_route`` keeps the answer)."""
        resource = request.match_info.route.resource
        if resource is None:
            return None
        method = "GET" if request.method == hdrs.METH_HEAD else request.method
        return self.templates.get((method, _VERSION.sub("", resource.canonical, count=1)))

    def _route(self, request: web.Request) -> _Route:
        matched = request.match_info.route
        resource = matched.resource
        if resource is None:  # nothing matched: the 404 or 405 tells nothing
            return _UNMATCHED
        key = (request.method, matched) if matched.method == hdrs.METH_ANY else matched
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

    def admit(self, request: web.Request) -> None:
        """Before the handler, inside the error middleware (so each refusal raised here is the
        JSON envelope; no middleware layer of its own): allowed hosts, the caller, the rules,
        the rate limit; then enters the caller's scope."""
        # Every request passes here: lookups are inlined rather than helper calls.
        if self.allowed_hosts and not self._host_allowed(request.host):
            raise BadRequest(f"Host {request.host!r} is not allowed (-allowed-hosts)")
        match_info = request.match_info
        route = self._routes.get(match_info.route) or self._route(request)
        variable = route.variable
        if variable is not None:  # names.Template.name, inlined
            value = match_info.get(variable)
            name = route.before + (value.replace("/", "%2F") if value else "-") + route.after
        else:
            name = route.name(match_info)
        user: User | None = None
        token_id: tuple[str, float] | None = None
        own_rules: Rules | None = None
        acting = self._operator
        tokens = self.tokens
        if tokens is not None:
            acting = self._nobody
            if route.needs_token:
                # A header seen before: one lookup and the time (tokens.py empties the table
                # when one of them could be refused early).
                header = request.headers.get(hdrs.AUTHORIZATION, "")
                admitted = self._admitted.get(header)
                if admitted is None or admitted[2] <= tokens.clock():
                    admitted = self._authenticate(request, header)
                user, token_id, _, own_rules = admitted
                if user.admin:
                    acting = scope.of(
                        user,
                        owner=_owner(request),
                        see_all=_all(request),
                        judge=self._judge(own_rules),
                    )
                else:
                    acting = self._scopes.get(user.name) or self._scope_of(user, own_rules)
        request[ADMISSION] = (user, name, token_id, route)
        if self.rules is not None and not self.rules.allows(name):
            raise Forbidden(FORBIDDEN)
        if own_rules is not None and not route.account and not own_rules.allows(name):
            raise Forbidden(FORBIDDEN_FOR_USER)
        if self.limit is not None:  # per user once known, else per address
            self.limit.check(request, f"user:{user.name}" if user is not None else None)
        # No reset afterwards: the request's task has a context of its own (middlewares.py).
        current = scope.CURRENT
        if acting is not current.get():
            current.set(acting)

    def _scope_of(self, user: User, own_rules: Rules | None) -> scope.Scope:
        if len(self._scopes) >= 10_000:  # bounded: users seen since it was last cleared
            self._scopes.clear()
        made = self._scopes[user.name] = scope.of(user, judge=self._judge(own_rules))
        return made

    def _judge(self, own_rules: Rules | None) -> scope.Judge | None:
        """The rules every resource a request names must pass: the server's, then the
        user's own (None: no rules at all)."""
        server = self.rules
        if own_rules is None:
            if server is None:
                return None
            return lambda name: None if server.allows(name) else FORBIDDEN
        own = own_rules

        def judge(name: str) -> str | None:
            if server is not None and not server.allows(name):
                return FORBIDDEN
            return None if own.allows(name) else FORBIDDEN_FOR_USER

        return judge

    def _decide(self, template: names.Template | None, resource: AbstractResource) -> bool:
        """Whether requests to this route need a token."""
        if template is not None:
            return not (
                template.path.startswith("/health")
                or (template.method, template.canonical) in self.public
            )
        return resource.canonical not in self.public_pages

    def _authenticate(self, request: web.Request, header: str) -> Admitted:
        """The first request with ``header`` (or one whose token has expired since)."""
        assert self.tokens is not None
        if not header:
            raise Unauthorized(NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
        self._admitted.pop(header, None)  # expired since it was kept, if it was
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
        if not token.isascii():  # a JWT is base64url and dots (RFC 7519): refused unread
            self.event(request, "token_refused", user=None, reason="token is not ASCII")
            raise Unauthorized(
                INVALID_TOKEN, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        try:
            verified = self.tokens.verify(token)
        except InvalidToken as exc:
            self.event(request, "token_refused", user=None, reason=str(exc))
            raise Unauthorized(
                INVALID_TOKEN, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from None
        return self.tokens.remember(header, verified)

    def user_if_any(self, request: web.Request) -> User | None:
        """The caller, also on a public route when it sent a token (401 if that is bad)."""
        user = user_of(request)
        if user is not None or self.tokens is None:
            return user
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        return self._authenticate(request, header)[0] if header else None

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
        try:
            user, name, _, route = request[ADMISSION]
        except KeyError:  # refused before the guard knew the caller (or never guarded)
            user, route = None, self._route(request)
            name = route.name(request.match_info)
        if not route.audited:
            return
        # Raw values only: the writer process rounds and encodes them (audit_writer.py). What
        # the client chose (a name from -jwks, the method, the route's variables, the path) is
        # made safe first (audittext.py); the route template and the request id already are.
        path = request.match_info.get("path")
        values = (
            "-" if user is None else clean(user.name),
            clean(request.remote or "-"),
            clean(request.method),
            route.route,
            clean(name),
            status,
            size,
            seconds,
            rid,
            None if path is None else clean(path),
        )
        lines = self._audit_lines
        if len(lines) < QUEUE_MAX:  # AuditLog.request, inlined
            lines.append((time.time(), REQUEST, values))
        else:
            assert self.audit is not None
            self.audit.request(values)  # drops it, and counts it

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
    admission: Admission | None = request.get(ADMISSION)
    return None if admission is None else admission[0]


def token_of(request: web.Request) -> tuple[str, float]:
    """The (jti, expiry) of the token the request was admitted with (routes needing one)."""
    admission: Admission | None = request.get(ADMISSION)
    if admission is None or admission[2] is None:
        raise Unauthorized(NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    return admission[2]


def _request_id(request: web.Request) -> str:
    """The id the request-id middleware gave the request (else the client's header)."""
    value = request.get(REQUEST_ID) or request.headers.get(REQUEST_ID_HEADER)
    return str(value) if value else "-"


# Requests no route matched (404, 405): named page/-/-, no token needed (the refusal tells
# nothing), audited under route "-".
_UNMATCHED = _Route(None, "-", False)
