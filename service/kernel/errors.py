"""The one error hierarchy.

Code anywhere below the handlers raises a ServiceError; the error middleware turns it into
``{"error": message}`` with ``status``. Nothing else builds error responses.
"""

from __future__ import annotations


class SetupError(Exception):
    """Settings that cannot become a running app (at create_app or at start-up, before the
    server listens); the CLI reports it like a usage error, without a traceback."""


class ServiceError(Exception):
    status = 500
    # Response headers the error needs (WWW-Authenticate on a 401, Retry-After on a 429).
    headers: dict[str, str] | None = None

    def __init__(
        self, message: str, *, status: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if headers is not None:
            self.headers = headers


class BadRequest(ServiceError):
    status = 400


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class RequestTimeout(ServiceError):
    """The client stopped sending a request body it had started."""

    status = 408


class PayloadTooLarge(ServiceError):
    status = 413


class InsufficientStorage(ServiceError):
    """The server could not store what the request would keep: a save of a read-write source
    that failed, or the update spools' -spool-max-bytes budget spent (docs/limits.md)."""

    status = 507


class NotAllowed(ServiceError):
    """A feature the operator did not enable (no -upload-dir, …): 501 like the original."""

    status = 501


class PathTraversal(BadRequest):
    def __init__(self, detail: str = "") -> None:
        super().__init__("Attempted path traversal" + (f": {detail}" if detail else ""))


class ConfigError(BadRequest):
    """A plugin configuration that cannot be accepted (missing, wrong type, unknown field)."""


class Unavailable(ServiceError):
    """A resource the server depends on is busy or failing for now; the client may retry."""

    status = 503


class TimedOut(ServiceError):
    """Work that exceeded the operator's time limit (-module-timeout) and was stopped."""

    status = 504


class Unauthorized(ServiceError):
    """No usable credentials (-auth token); ``headers`` carries the WWW-Authenticate challenge."""

    status = 401


class Forbidden(ServiceError):
    status = 403


class TooManyRequests(ServiceError):
    """A limit reached (-rate-limit); Retry-After says when to try again."""

    status = 429


class TooManyAttempts(TooManyRequests):
    """Login attempts throttled; Retry-After says when to try again."""
