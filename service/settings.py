"""Every server option, its default and its help text, in one frozen dataclass.

The CLI builds Settings from argv (and -config), create_app() reads only Settings.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from service.kernel.duration import Duration
from service.kernel.rate import Rate
from service.sdk.base import Kind


def opt(default: Any, help: str, *, metavar: str | None = None) -> Any:
    """A setting with the help text the CLI shows for it (and its value's name, ``-cert FILE``)."""
    metadata = {"help": help} if metavar is None else {"help": help, "metavar": metavar}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Preload:
    """A plugin configured at start-up under ``label``, with a context of the same label."""

    kind: Kind
    label: str
    plugin: str
    config: dict[str, Any]
    from_cli: bool = False


@dataclasses.dataclass(frozen=True)
class Redirect:
    method: str
    source: str
    destination: str


@dataclasses.dataclass(frozen=True)
class Settings:
    port: int = opt(8080, "port to listen on; 0 picks any free port")
    addr: str = opt("127.0.0.1", "address to bind")
    upload_dir: Path | None = opt(
        None, "directory clients upload to and name data and model files in", metavar="DIR"
    )
    upload_max_size: int = opt(
        1024 * 1024 * 1024, "largest file a client may upload, in bytes (413 above)"
    )
    upload_idle_timeout: float = opt(
        60.0, "seconds an upload may receive nothing before it is abandoned (408)"
    )
    static: Path | None = opt(None, "directory served at / after the API routes", metavar="DIR")
    js: bool = opt(False, "serve the JavaScript client at /api.js")
    # Dashboard (issue 16): on by default, "-ui off" turns it off.
    ui: bool = opt(True, "serve the dashboard at /ui/ (docs/dashboard.md)")
    insecure: bool = opt(False, "serve plain HTTP instead of HTTPS")
    cert: Path = opt(Path("server.pem"), "TLS certificate (PEM)")
    key: Path = opt(Path("server.key"), "TLS private key (PEM)")
    ca: Path | None = opt(
        None,
        "CA certificate; when given, clients must present a certificate it signed",
        metavar="FILE",
    )
    cors_domains: tuple[str, ...] = opt(
        (), "origins allowed to make cross-origin requests", metavar="ORIGIN"
    )
    allow_caching: bool = opt(False, "do not send the no-cache headers")
    portfile: Path | None = opt(None, "write the listening port to this file once listening")
    log: str = opt("INFO", "log level (name or number)")
    max_body_size: int = opt(64 * 1024 * 1024, "largest JSON request body in bytes (413 above)")
    iterkey_ttl: float = opt(600.0, "seconds an unused iterkey lives before it expires")
    iterkey_max: int = opt(10_000, "most iterkeys alive at once; the least recently used goes")
    iterkey_max_bytes: int = opt(
        256 * 1024 * 1024,
        "most bytes all iterkeys may hold together (a paged predict body is counted by its"
        " size); beyond, the least recently used go",
    )
    module_timeout: float = opt(
        600.0, "seconds a module function may run before its worker is stopped (504)"
    )
    module_workers: int = opt(
        os.cpu_count() or 1, "module functions running at once, each in its own process"
    )
    # Hardening bounds (docs/limits.md gives each one's worst-case cost).
    max_labels: int = opt(
        256,
        "most plugin labels configured at once, and separately most contexts open at once"
        " (each may hold a descriptor; 409 beyond)",
    )
    spool_max_bytes: int = opt(
        1024 * 1024 * 1024,
        "most bytes updates may add to the csv/json sources' spool files, all sources together"
        " (the spools are append-only; 507 beyond, until a source label is released)",
    )
    max_connections: int = opt(
        512,
        "most client connections open at once; beyond, the oldest idle or half-sent one is"
        " closed (503 only when every one is being answered)",
    )
    header_timeout: float = opt(
        20.0, "seconds a client may take to send a request header (408 and closed after)"
    )
    body_timeout: float = opt(
        60.0, "seconds a client may take to send a JSON request body (408 after)"
    )
    task_queue: int = opt(100, "most tasks waiting to run (?async=1); beyond, 503 with Retry-After")
    task_workers: int = opt(
        os.cpu_count() or 1, "tasks running at once; the others wait in the queue"
    )
    task_ttl: float = opt(86400.0, "seconds a finished task is kept before it is pruned")
    # Observability and limits (issue 15; docs/observability.md).
    metrics: str = opt("on", "count requests and serve /metrics: on or off")
    log_format: str = opt("text", "log lines as text or json (one object a line)")
    access_log: str = opt("on", "log a line per request (at INFO): on or off")
    rate_limit: Rate | None = opt(
        None,
        "requests per second a client may send (N/s, N/m or N/h); beyond it 429, with the"
        " seconds to wait; /health and /health/* are exempt",
        metavar="RATE",
    )
    rate_limit_burst: int | None = opt(
        None,
        "requests a client may send at once on top of the rate (default: one second's worth,"
        " at least 1)",
        metavar="N",
    )
    rate_limit_clients: int = opt(
        100_000,
        "clients whose rate is tracked at once; beyond, refilled buckets go first, then the"
        " clients first seen",
    )
    # Issue 14: users, tokens, endpoint rules, audit log (docs/auth.md).
    auth: str = opt(
        "none", "none: the open DFFML API; token: every route needs a Bearer JWT", metavar="MODE"
    )
    token_ttl: Duration = opt(
        Duration(3600),
        "lifetime of the access tokens the server issues, at most 24h",
        metavar="DURATION",
    )
    token_key_file: Path | None = opt(
        None,
        "HS256 signing key, created (mode 0600) on first start unless "
        "DFFML_SERVICE_HTTP_SECRET_KEY is set; default: beside the state store "
        "(./data.jwt-key for -upload-dir ./data), in memory when the state is",
        metavar="FILE",
    )
    token_issuer: str = opt("dffml-service-http", "iss of the tokens issued and accepted")
    token_audience: str = opt("dffml-service-http", "aud of the tokens issued and accepted")
    jwks: Path | None = opt(
        None, "also accept RS256 tokens signed by a key of this JWKS file (OpenID Connect)"
    )
    jwks_issuer: str | None = opt(None, "iss of the -jwks tokens (required with -jwks)")
    registration: str = opt(
        "closed",
        "open: anyone may POST /auth/registration; closed: admins create users",
        metavar="MODE",
    )
    rules: Path | None = opt(None, "endpoint rules, one regular expression a line")
    rule: tuple[str, ...] = opt((), "an endpoint rule (repeatable)", metavar="REGEX")
    audit_log: Path | None = opt(None, "append one JSON line per request and auth event here")
    allowed_hosts: tuple[str, ...] = opt(
        (), "Host header values accepted (400 otherwise); none: any", metavar="HOST"
    )
    # From DFFML_SERVICE_HTTP_SECRET_KEY (read by the CLI); never shown.
    secret_key: bytes | None = dataclasses.field(default=None, repr=False)
    state: str | None = opt(
        None,
        "SQLite file keeping labels, contexts, tasks, pipelines and users across restarts,"
        " or a postgresql:// URL of a database several hosts share (docs/scaling.md);"
        " ':memory:' keeps nothing; default: DIR.state.sqlite3 beside -upload-dir DIR"
        " (':memory:' without one)",
        metavar="FILE|URL",
    )
    executor: str = opt(
        "local",
        "where module functions run: local (-module-workers processes here), dask (an"
        " in-process Dask cluster of -dask-workers processes) or dask://HOST:PORT (a running"
        " Dask scheduler; needs the dask extra)",
        metavar="WHERE",
    )
    dask_workers: int = opt(2, "worker processes of the in-process cluster of -executor dask")
    dask_timeout: float = opt(
        5.0,
        "seconds -executor dask://HOST:PORT waits for the scheduler to answer: at start-up, and"
        " for it to come back once lost (then each next run tries again)",
    )
    redirects: tuple[Redirect, ...] = ()
    preloads: tuple[Preload, ...] = ()
