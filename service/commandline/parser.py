"""The command line's grammar: every server option from Settings, and the other commands.

Options are single-dash like DFFML's (``-port 8080``); the double-dash spelling works too. Server
options come from :class:`service.settings.Settings`, so each appears in ``--help`` with its
default. Per-label plugin options (``-source-LABEL-FIELD VALUE…``) and ``-config`` preloads are
:mod:`service.commandline.preloads`' business.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from service import __version__
from service.auth import commands as auth_commands
from service.auth import options as auth_options
from service.commandline.preloads import (
    PRELOAD_KINDS,
    PerLabel,
    PreloadError,
    collect_preloads,
    split_per_label,
)
from service.settings import Redirect, Settings

log = logging.getLogger("service")


class UsageError(Exception):
    pass


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line usage error (the full usage is one ``--help`` away)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _flags(name: str) -> list[str]:
    dashed = name.replace("_", "-")
    return [f"-{dashed}", f"--{dashed}"]


def _shown_default(default: Any) -> str:
    if default is None or default == ():
        return "none"
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        return " ".join(map(str, default))
    return str(default)


def _metavar(name: str, annotation: Any, metadata: Mapping[str, Any]) -> str:
    if "metavar" in metadata:
        return str(metadata["metavar"])
    if annotation is Path:
        return "FILE"
    if annotation is int:
        return "N"
    return name.upper()


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(Settings)
    for f in dataclasses.fields(Settings):
        if "help" not in f.metadata:
            continue
        annotation = hints[f.name]
        if isinstance(annotation, types.UnionType):  # X | None
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        help_text = f"{f.metadata['help']} (default: {_shown_default(f.default)})"
        if annotation is bool and f.default is True:
            # A switch that is on by default takes a value: "-ui off".
            parser.add_argument(
                *_flags(f.name), type=_on_off, default=True, help=help_text, metavar="on|off"
            )
        elif annotation is bool:
            parser.add_argument(*_flags(f.name), action="store_true", help=help_text)
        elif typing.get_origin(annotation) is tuple:
            (item,) = typing.get_args(annotation)[:1]
            parser.add_argument(
                *_flags(f.name),
                nargs="+",
                action="extend",
                default=None,
                help=help_text,
                metavar=_metavar(f.name, item, f.metadata),
            )
        else:
            parser.add_argument(
                *_flags(f.name),
                type=annotation,
                default=f.default,
                help=help_text,
                metavar=_metavar(f.name, annotation, f.metadata),
            )


def _on_off(value: str) -> bool:
    switch = {"on": True, "off": False}.get(value.lower())
    if switch is None:
        raise argparse.ArgumentTypeError(f"expected on or off, got {value!r}")
    return switch


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="dffml-service-http",
        description="Serve DFFML-style sources, models, scorers and modules over HTTP.",
        allow_abbrev=False,
    )
    parser.add_argument("-version", "--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    _add_server_options(commands.add_parser("server", help="run the HTTP service", **SERVER_PARSER))
    auth_commands.add_parsers(commands)  # createsuperuser, createuser, createtoken
    createtls = commands.add_parser("createtls", help="create TLS keys and certificates")
    which = createtls.add_subparsers(dest="which", required=True, parser_class=ArgumentParser)
    for role, default_cn in (("server", "127.0.0.1"), ("client", "client")):
        sub = which.add_parser(
            role,
            help=f"create a {role} key and certificate",
            allow_abbrev=False,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        sub.add_argument(*_flags("bits"), type=int, default=2048, help="RSA key size")
        sub.add_argument(*_flags("days"), type=int, default=365, help="validity in days")
        sub.add_argument(*_flags("cn"), default=default_cn, help="certificate common name")
        sub.add_argument(
            *_flags("key"), type=Path, default=Path(f"{role}.key"), help="private key to write"
        )
        sub.add_argument(
            *_flags("cert"), type=Path, default=Path(f"{role}.pem"), help="certificate to write"
        )
        sub.add_argument(
            *_flags("force"),
            action="store_true",
            help="replace the key and certificate if they exist",
        )
        if role == "client":
            sub.add_argument(
                *_flags("csr"),
                type=Path,
                default=None,
                help="also write the certificate signing request for the client key here"
                " (default: none)",
            )
            sub.add_argument(
                *_flags("server_key"),
                type=Path,
                default=Path("server.key"),
                help="key that signs the client certificate",
            )
            sub.add_argument(
                *_flags("server_cert"),
                type=Path,
                default=Path("server.pem"),
                help="certificate of the signing key (the server's -ca)",
            )
    return parser


SERVER_PARSER: dict[str, Any] = {
    "allow_abbrev": False,
    "epilog": (
        "Per-label options: -source-LABEL-FIELD VALUE…, -model-LABEL-FIELD VALUE…, "
        "-scorer-LABEL-FIELD VALUE… set config field FIELD of a label given to "
        "-sources/-models/-scorers (a bare boolean field means true)."
    ),
}


def server_parser() -> argparse.ArgumentParser:
    """``dffml-service-http server``'s own parser, so usage errors show the server's usage."""
    parser = ArgumentParser(prog="dffml-service-http server", **SERVER_PARSER)
    _add_server_options(parser)
    return parser


def _add_server_options(server: argparse.ArgumentParser) -> None:
    _add_settings_options(server)
    for kind in PRELOAD_KINDS:
        server.add_argument(
            *_flags(kind + "s"),
            nargs="+",
            action="extend",
            default=[],
            metavar="LABEL=PLUGIN",
            help=f"{kind}s to configure at start-up, each with a context of the same label; "
            "repeatable (default: none)",
        )
    server.add_argument(
        *_flags("config"),
        type=Path,
        metavar="FILE.yaml",
        help="YAML file of preloads: {sources|models|scorers|modules: {LABEL: "
        "{plugin: NAME, config: {...}}}}; labels given on the command line win (default: none)",
    )
    server.add_argument(
        *_flags("redirect"),
        nargs="+",
        action="extend",
        default=[],
        metavar="METHOD SRC DST",
        help="answer METHOD SRC with a 307 redirect to DST (method and body kept); triples,"
        " repeatable (default: none)",
    )


def settings_from_args(argv: Sequence[str]) -> Settings:
    parser = server_parser()
    rest, per_label = split_per_label(argv)
    ns = parser.parse_args(rest)
    try:
        return _settings(ns, per_label)
    except (UsageError, PreloadError) as exc:
        parser.error(str(exc))


def _settings(ns: argparse.Namespace, per_label: list[PerLabel]) -> Settings:
    preloads = collect_preloads(
        ns.config, {kind: getattr(ns, kind + "s") for kind in PRELOAD_KINDS}, per_label
    )
    redirects = _redirects(ns.redirect)
    if log_level(ns.log) is None:
        raise UsageError(f"-log: unknown level {ns.log!r}")
    if ns.port < 0 or ns.port > 65535:
        raise UsageError("-port must be between 0 and 65535")
    if ns.max_body_size < 1:
        raise UsageError("-max-body-size must be at least 1 byte")
    if not (0 < ns.iterkey_ttl < float("inf")):
        raise UsageError("-iterkey-ttl must be a positive number of seconds")
    if ns.iterkey_max < 1:
        raise UsageError("-iterkey-max must be at least 1")
    if ns.iterkey_max_bytes < 1:
        raise UsageError("-iterkey-max-bytes must be at least 1")
    if not ns.module_timeout > 0:
        raise UsageError("-module-timeout must be a positive number of seconds")
    if ns.max_connections < 1:
        raise UsageError("-max-connections must be at least 1")
    for name in ("header_timeout", "body_timeout"):
        if not (0 < getattr(ns, name) < float("inf")):
            raise UsageError(f"-{name.replace('_', '-')} must be a positive number of seconds")
    if ns.max_labels < 1:
        raise UsageError("-max-labels must be at least 1")
    if ns.spool_max_bytes < 0:
        raise UsageError("-spool-max-bytes must not be negative")
    if ns.module_workers < 1:
        raise UsageError("-module-workers must be at least 1")
    if ns.task_queue < 1:
        raise UsageError("-task-queue must be at least 1")
    if ns.task_workers < 1:
        raise UsageError("-task-workers must be at least 1")
    if ns.keep_versions < 0:
        raise UsageError("-keep-versions must be 0 or more")
    if ns.max_batch_size < 0 or ns.max_batch_queue < 1:
        raise UsageError("-max-batch-size must be 0 or more, -max-batch-queue at least 1")
    if not (0 <= ns.max_batch_time < float("inf")):
        raise UsageError("-max-batch-time must be 0 or a positive number of seconds")
    if not ns.max_batch_queue >= ns.max_batch_size:
        raise UsageError("-max-batch-queue must be at least -max-batch-size")
    if not (0 < ns.task_ttl < float("inf")):
        raise UsageError("-task-ttl must be a positive number of seconds")
    _check_executor(ns.executor, ns.dask_workers)
    if not (0 < ns.dask_timeout < float("inf")):
        raise UsageError("-dask-timeout must be a positive number of seconds")
    if ns.portfile is not None and not ns.portfile.absolute().parent.is_dir():
        raise UsageError(f"-portfile {ns.portfile}: {ns.portfile.parent} is not a directory")
    if ns.static is not None and not ns.static.is_dir():
        raise UsageError(f"-static {ns.static}: not a directory")
    for name in ("metrics", "access_log"):
        if getattr(ns, name) not in ("on", "off"):
            raise UsageError(
                f"-{name.replace('_', '-')} takes on or off, got {getattr(ns, name)!r}"
            )
    if ns.log_format not in ("text", "json"):
        raise UsageError(f"-log-format takes text or json, got {ns.log_format!r}")
    if ns.rate_limit_burst is not None and ns.rate_limit_burst < 1:
        raise UsageError("-rate-limit-burst must be at least 1")
    if ns.rate_limit_burst is not None and ns.rate_limit is None:
        raise UsageError("-rate-limit-burst needs -rate-limit")
    if ns.rate_limit_clients < 1:
        raise UsageError("-rate-limit-clients must be at least 1")
    if ns.insecure and ns.ca is not None:
        raise UsageError("-ca requires HTTPS: drop -insecure to require client certificates")
    try:
        auth_fields = auth_options.check(ns, os.environ)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if "help" in f.metadata:
            value = getattr(ns, f.name)
            fields[f.name] = tuple(value or f.default) if isinstance(f.default, tuple) else value
    fields.update(auth_fields)
    return Settings(**fields, redirects=redirects, preloads=preloads)


_EXECUTOR = re.compile(r"^(local|dask|dask://[^\s/:]+:\d{1,5})$")


def _check_executor(executor: str, dask_workers: int) -> None:
    if not _EXECUTOR.match(executor):
        raise UsageError(f"-executor must be local, dask or dask://HOST:PORT, got {executor!r}")
    if dask_workers < 1:
        raise UsageError("-dask-workers must be at least 1")
    if executor != "local":
        try:
            import distributed  # noqa: F401  (the optional extra: imported only when chosen)
        except ImportError:
            raise UsageError(
                f"-executor {executor} needs Dask, the 'dask' extra:"
                " pip install 'dffml-service-http[dask]'"
            ) from None


# An HTTP method is an RFC 9110 token.
_METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _redirects(values: list[str]) -> tuple[Redirect, ...]:
    if len(values) % 3:
        raise UsageError(
            f"-redirect takes METHOD SRC DST triples, got {len(values)} value(s): "
            + " ".join(values)
        )
    redirects: list[Redirect] = []
    for i in range(0, len(values), 3):
        method, source, destination = values[i].upper(), values[i + 1], values[i + 2]
        if not _METHOD.match(method):
            raise UsageError(f"-redirect: {values[i]!r} is not an HTTP method")
        if not source.startswith("/"):
            raise UsageError(f"-redirect {method} {source}: SRC must start with /")
        redirects.append(Redirect(method, source, destination))
    return tuple(redirects)


def log_level(value: str) -> int | None:
    if value.isdigit():
        return int(value)
    level = logging.getLevelName(value.upper())
    return level if isinstance(level, int) else None
