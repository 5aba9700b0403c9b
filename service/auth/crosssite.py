"""``-auth none``: requests another site's page makes a browser send are refused.

Without tokens, whoever can make a browser on the operator's machine send a request can use the
server: a page on another site can POST uploads, configurations, record updates and pipelines
with bodies that need no CORS preflight (``text/plain``, ``multipart/form-data``), and a page
whose name an attacker re-points at 127.0.0.1 (DNS rebinding) talks to it as its own origin.
Browsers say where a request comes from, and DFFML's own clients (Python, curl, the same-origin
dashboard) say nothing or their own origin, so two checks stop both without changing them:

- a state-changing request (any method but GET, HEAD, OPTIONS) with an ``Origin`` that is not
  the server's own (``Origin: null`` included), or with ``Sec-Fetch-Site: cross-site``, is
  refused with 403 unless ``-cors-domains`` allows that origin (``*``: every one);
- bound to a loopback address (the default 127.0.0.1), only loopback host names are accepted
  in ``Host`` (``localhost``, ``127.x.x.x``, ``[::1]``, any port), as Jupyter does; with
  ``-allowed-hosts`` the guard checks ``Host`` against that list instead.

With ``-auth token`` neither applies: a browser never adds the bearer token by itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from service.kernel.errors import BadRequest, Forbidden
from service.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, without port or brackets) is this machine's."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bare_host(host: str) -> str:
    """``host`` without its port and IPv6 brackets."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class CrossSite:
    def __init__(self, cors_domains: Iterable[str], *, loopback_hosts_only: bool) -> None:
        self.allowed = frozenset(origin.rstrip("/").lower() for origin in cors_domains)
        self.loopback_hosts_only = loopback_hosts_only

    def check(self, request: web.Request) -> None:
        """Before the handler, inside the error middleware: its refusals are the envelope."""
        if self.loopback_hosts_only:
            host = request.headers.get(hdrs.HOST)
            if host is not None and not is_loopback(_bare_host(host)):
                raise BadRequest(
                    f"Host {host!r} is not allowed: the server listens on a loopback address"
                    " (-allowed-hosts names others)"
                )
        if request.method in SAFE_METHODS:
            return
        headers = request.headers
        origin = headers.get(hdrs.ORIGIN)
        cross = headers.get("Sec-Fetch-Site", "").lower() == "cross-site"
        if origin is None and not cross:
            return  # not a browser's cross-site request: DFFML clients, curl, scripts
        if not cross and origin is not None and self._own(request, origin):
            return
        if "*" in self.allowed or (origin is not None and origin.lower() in self.allowed):
            return
        raise Forbidden(
            f"Cross-site request refused: origin {origin or '(none)'!r} is not allowed"
            " (-cors-domains allows others)"
        )

    @staticmethod
    def _own(request: web.Request, origin: str) -> bool:
        """Whether ``origin`` is the server's own: the same host and port as ``Host``."""
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        return bool(parts.netloc) and parts.netloc.lower() == request.host.lower()


def from_settings(settings: Settings) -> CrossSite | None:
    """The check for these settings (None with -auth token)."""
    if settings.auth != "none":
        return None
    loopback_only = is_loopback(settings.addr) and not settings.allowed_hosts
    return CrossSite(settings.cors_domains, loopback_hosts_only=loopback_only)
