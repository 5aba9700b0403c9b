"""``dffml-service-http``: ``server`` runs the service, ``createtls`` makes TLS files.

Options are single-dash like DFFML's (``-port 8080``); the double-dash spelling works too. Server
options come from :class:`service.settings.Settings`, so each appears in ``--help`` with its
default. Per-label plugin options (``-source-LABEL-FIELD VALUE…``) and ``-config`` preloads are
:mod:`service.commandline.preloads`' business.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from service.auth import commands as auth_commands
from service.auth import options as auth_options
from service.commandline.parser import build_parser, log_level, settings_from_args
from service.kernel.errors import ServiceError
from service.net import tls
from service.net.connections import ConnectionGuard, GuardedSite
from service.observability import clientlog, logs
from service.settings import Settings

log = logging.getLogger("service")


async def serve(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM, then close every context and exit 0."""
    from service.app import create_app
    from service.kernel.errors import SetupError

    ssl_context = None
    if not settings.insecure:
        try:
            ssl_context = tls.server_context(settings.cert, settings.key, settings.ca)
        except tls.TLSSetupError as exc:
            return _fail(str(exc))
    if settings.upload_dir is not None:
        try:
            settings.upload_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return _fail(f"cannot create -upload-dir {settings.upload_dir}: {exc.strerror or exc}")
    # Installed before the preloads run, so a signal while they load (a big model, say) stops
    # the server cleanly instead of raising KeyboardInterrupt somewhere inside them.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        app = create_app(settings)
    except SetupError as exc:
        return _fail(str(exc))
    # access_log=None: service/observability/middleware.py writes the access log itself.
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    try:
        try:
            await runner.setup()
        except SetupError as exc:
            return _fail(str(exc))
        except ServiceError as exc:
            return _fail(f"preload failed: {exc.message}")
        except Exception as exc:
            # A plugin bug, not a usage error: the traceback goes to the log for its author.
            log.exception("preload failed")
            return _fail(f"preload failed: {type(exc).__name__}: {exc}", status=1)
        if stop.is_set():
            return 0
        guard = ConnectionGuard(
            max_connections=settings.max_connections, header_timeout=settings.header_timeout
        )
        site = GuardedSite(
            runner, settings.addr, settings.port, ssl_context=ssl_context, guard=guard
        )
        try:
            await site.start()
        except OSError as exc:
            return _fail(f"cannot listen on {settings.addr}:{settings.port}: {exc.strerror or exc}")
        port = runner.addresses[0][1]
        scheme = "http" if ssl_context is None else "https"
        log.info("Serving on %s://%s:%d", scheme, settings.addr, port)
        auth_options.warn_if_open(settings)
        if settings.portfile is not None:
            try:
                _write_atomically(settings.portfile, f"{port}\n")
            except OSError as exc:
                return _fail(f"cannot write -portfile {settings.portfile}: {exc.strerror or exc}")
        await stop.wait()
        log.info("Shutting down")
    finally:
        await runner.cleanup()
    return 0


def _fail(message: str, status: int = 2) -> int:
    print(f"dffml-service-http: error: {message}", file=sys.stderr)
    return status


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if args and args[0] == "server":
        settings = settings_from_args(args[1:])
        logs.configure(log_level(settings.log) or logging.INFO, settings.log_format)
        clientlog.install()
        return asyncio.run(serve(settings))
    ns = parser.parse_args(args)
    if ns.command in auth_commands.COMMANDS:
        return auth_commands.run(ns)
    try:
        if ns.which == "server":
            tls.create_server(
                ns.cert, ns.key, common_name=ns.cn, bits=ns.bits, days=ns.days, force=ns.force
            )
        else:
            tls.create_client(
                ns.cert,
                ns.key,
                server_cert=ns.server_cert,
                server_key=ns.server_key,
                common_name=ns.cn,
                bits=ns.bits,
                days=ns.days,
                force=ns.force,
                csr=ns.csr,
            )
    except tls.TLSSetupError as exc:
        return _fail(str(exc))
    if getattr(ns, "csr", None) is not None:
        print(f"wrote {ns.key}, {ns.cert} and {ns.csr}")
    else:
        print(f"wrote {ns.key} and {ns.cert}")
    return 0
