"""Access tokens: JWTs the server issues (HS256) and verifies, cached until they expire.

PyJWT does the cryptography and the claim checks. What is ours: the algorithm is never taken
from the token (``algorithms=["HS256"]``, RS256 only for keys of the operator's ``-jwks``
file, so ``alg: none`` and key-confusion tokens fail), every registered claim is required, a
token may not live longer than 24 h whatever it says, and a revoked ``jti`` is refused even
while its verification is cached.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from service.auth.rules import RuleError, Rules, compiled, user_rules
from service.kernel.users import User, valid_username

# The GC API standard: access tokens expire in under 24 hours.
MAX_TTL = 24 * 3600.0
# Clock skew tolerated between this server and a token's issuer, in seconds.
LEEWAY = 30.0
# Verified tokens kept (least recently used goes first): bounds the cache's memory at about
# a kilobyte each.
CACHE_MAX = 10_000
REQUIRED = ["exp", "iat", "nbf", "sub", "jti", "iss", "aud"]
ADMIN_CLAIM = "adm"
RULES_CLAIM = "rul"  # the user's own endpoint rules (users.py), when they have some


class InvalidToken(Exception):
    """Refused: malformed, expired, not yet valid, tampered, revoked or of a foreign kind."""


@dataclasses.dataclass(frozen=True)
class Issued:
    token: str
    jti: str
    expires_in: int
    expires_at: float


@dataclasses.dataclass(frozen=True)
class Verified:
    user: User
    jti: str
    expires_at: float
    issued_at: float


# What the guard keeps of a verified Authorization header: the user, the token's (jti, expiry),
# the time until which it is accepted (its expiry and the leeway) and the user's own rules
# (None: only the server's apply).
Admitted = tuple[User, tuple[str, float], float, "Rules | None"]


class Tokens:
    def __init__(
        self,
        secret: bytes,
        *,
        issuer: str,
        audience: str,
        ttl: float,
        jwks: jwt.PyJWKSet | None = None,
        jwks_issuer: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._jwks = jwks
        self._jwks_issuer = jwks_issuer
        self.clock = clock
        self._cache: OrderedDict[str, Verified] = OrderedDict()
        # jti → its token's expiry: kept only as long as the token could still be presented.
        self.revoked: dict[str, float] = {}
        # user → tokens issued (iat) before this second are refused: the password changed.
        self.not_before: dict[str, int] = {}
        # Users disabled or deleted (accounts.py): every token naming them is refused.
        self.blocked: frozenset[str] = frozenset()
        # Authorization header → Admitted, the guard's one lookup per request. Emptied (in
        # place: the guard holds this dict) whenever a token may stop being valid before it
        # expires (a revocation, a password change), so an entry needs only its time checked.
        self.admitted: dict[str, Admitted] = {}

    def issue(self, user: User, ttl: float | None = None) -> Issued:
        ttl = self.ttl if ttl is None else ttl
        if not 0 < ttl <= MAX_TTL:
            raise ValueError("a token lives more than 0 s and at most 24 h")
        now = int(self.clock())
        expires_at = now + int(ttl)
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            "sub": user.name,
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "jti": jti,
            "iss": self.issuer,
            "aud": self.audience,
        }
        if user.admin:
            claims[ADMIN_CLAIM] = True
        if user.rules:
            claims[RULES_CLAIM] = list(user.rules)
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        return Issued(token, jti, int(ttl), float(expires_at))

    def verify(self, token: str) -> Verified:
        now = self.clock()
        # Keyed by the token itself: hashing it again with SHA-256 cost more than the rest of
        # the check, and the token is in this process's memory with the request anyway.
        verified = self._cache.get(token)
        if verified is None:
            verified = self._decode(token)
            self._cache[token] = verified
            if len(self._cache) > CACHE_MAX:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(token)
        if verified.expires_at + LEEWAY <= now:
            self._cache.pop(token, None)
            raise InvalidToken("token expired")
        if verified.jti in self.revoked:
            raise InvalidToken("token revoked")
        if verified.issued_at < self.not_before.get(verified.user.name, 0):
            raise InvalidToken("token issued before the password changed")
        if verified.user.name in self.blocked:
            raise InvalidToken("user disabled or deleted")
        return verified

    def remember(self, header: str, verified: Verified) -> Admitted:
        """What the guard keeps of ``header``, which carried the ``verified`` token."""
        if len(self.admitted) >= CACHE_MAX:  # bounded like the cache of verified tokens
            self.admitted.clear()
        rules = verified.user.rules
        admitted = self.admitted[header] = (
            verified.user,
            (verified.jti, verified.expires_at),
            verified.expires_at + LEEWAY,
            compiled(rules) if rules else None,
        )
        return admitted

    def revoke(self, jti: str, expires_at: float) -> None:
        self.revoked[jti] = expires_at
        self.admitted.clear()
        self.forget_expired()

    def refuse_issued_before(self, user: str, second: int) -> None:
        """Tokens of ``user`` issued before ``second`` stop working (the password changed)."""
        self.not_before[user] = second
        self.admitted.clear()

    def block(self, names: frozenset[str]) -> None:
        """The users disabled or deleted now: their tokens stop working at once."""
        if names != self.blocked:
            self.blocked = names
            self.admitted.clear()

    def restore(self, revoked: dict[str, float], password_changes: dict[str, int]) -> None:
        """At start-up: the revocations and password changes of earlier runs."""
        self.revoked.update(revoked)
        self.not_before.update(password_changes)
        self.admitted.clear()

    def forget_expired(self) -> None:
        """Drop revocations and cache entries of tokens that have expired anyway."""
        now = self.clock()
        self.revoked = {j: exp for j, exp in self.revoked.items() if exp + LEEWAY > now}
        for token, verified in list(self._cache.items()):
            if verified.expires_at + LEEWAY <= now:
                del self._cache[token]

    def _decode(self, token: str) -> Verified:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "RS256" and self._jwks is not None:
                claims = self._decode_external(token, header)
            else:
                claims = jwt.decode(
                    token,
                    self._secret,
                    algorithms=["HS256"],
                    audience=self.audience,
                    issuer=self.issuer,
                    leeway=LEEWAY,
                    options={"require": REQUIRED},
                )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc) or type(exc).__name__) from None
        sub, jti, exp, iat = claims["sub"], claims["jti"], claims["exp"], claims["iat"]
        if not (isinstance(sub, str) and sub and isinstance(jti, str) and jti):
            raise InvalidToken("sub and jti must be non-empty strings")
        # sub names the user's namespace and directory (users/SUB/): an external issuer's
        # must follow this server's user name rules like any other ("." or "../x" never).
        if not valid_username(sub):
            raise InvalidToken("sub is not a user name this server accepts")
        if float(exp) - float(iat) > MAX_TTL + LEEWAY:
            raise InvalidToken("token lives longer than 24 h")
        ours = header.get("alg") == "HS256"  # signed with this server's key, not -jwks
        admin = claims.get(ADMIN_CLAIM) is True and ours
        try:
            rules = user_rules(claims.get(RULES_CLAIM, [])) if ours else ()
        except RuleError as exc:
            raise InvalidToken(f"{RULES_CLAIM}: {exc}") from None
        return Verified(User(sub, admin=admin, rules=rules), jti, float(exp), float(iat))

    def _decode_external(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        assert self._jwks is not None
        kid = header.get("kid")
        try:
            key = next(k for k in self._jwks.keys if kid is None or k.key_id == kid)
        except StopIteration:
            raise InvalidToken(f"no key {kid!r} in -jwks") from None
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=self.audience,
            issuer=self._jwks_issuer,
            leeway=LEEWAY,
            options={"require": REQUIRED},
        )
        return claims


def load_jwks(path: Path) -> jwt.PyJWKSet:
    """The operator's JWKS file; its RSA keys verify external (OpenID Connect) tokens."""
    try:
        return jwt.PyJWKSet.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read -jwks {path}: {exc.strerror or exc}") from None
    except jwt.PyJWTError as exc:
        raise ValueError(f"-jwks {path}: {exc}") from None
