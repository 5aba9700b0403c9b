"""``createsuperuser``, ``createuser``, ``createtoken``, ``disableuser``, ``enableuser`` and
``deleteuser``: users and tokens from a shell.

They open the server's state store themselves (``-state FILE``, or the default the server uses
for ``-upload-dir DIR``), so run from the server's directory with its options they find its
users; SQLite lets them do so while the server runs.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from service.auth import secret
from service.auth.accounts import ACTIVE, DELETED, DISABLED, Accounts
from service.auth.logins import Logins
from service.auth.tokens import MAX_TTL, Tokens
from service.engine.state import MEMORY, StateError, StateStore
from service.engine.state.location import StateLocationError, key_path, state_path
from service.kernel.duration import Duration
from service.kernel.errors import ServiceError
from service.settings import Settings

# The users' status changes: the server refuses the user's tokens within a second.
STATUS_COMMANDS = {
    "disableuser": (DISABLED, "disable a user: no login, its tokens refused within a second"),
    "enableuser": (ACTIVE, "enable a disabled user again"),
    "deleteuser": (
        DELETED,
        "delete a user: its tokens refused within a second, its name never given again",
    ),
}
COMMANDS = ("createsuperuser", "createuser", "createtoken", *STATUS_COMMANDS)


class CommandError(Exception):
    pass


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    for name, what in (
        ("createsuperuser", "create an admin user (sees and manages everything)"),
        ("createuser", "create a user"),
        ("createtoken", "print an access token for a user, for scripts"),
    ):
        sub = commands.add_parser(
            name,
            help=what,
            allow_abbrev=False,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        sub.add_argument("-username", "--username", required=True, help="the user's name")
        _store_options(sub)
        if name == "createtoken":
            sub.add_argument(
                "-ttl",
                "--ttl",
                type=Duration,
                default=Duration(3600),
                help="token lifetime, at most 24h (3600, 30m, 8h)",
            )
            defaults = Settings()
            sub.add_argument(
                "-token-key-file",
                "--token-key-file",
                type=Path,
                default=defaults.token_key_file,
                help="the server's signing key (unless DFFML_SERVICE_HTTP_SECRET_KEY is set)",
            )
            sub.add_argument("-token-issuer", "--token-issuer", default=defaults.token_issuer)
            sub.add_argument("-token-audience", "--token-audience", default=defaults.token_audience)
        else:
            sub.add_argument(
                "-password-stdin",
                "--password-stdin",
                action="store_true",
                help="read the password from the first line of stdin instead of a prompt",
            )
            sub.add_argument(
                "-rule",
                "--rule",
                action="append",
                default=[],
                metavar="REGEX",
                help="the user's own endpoint rule (repeatable): each request must also fully"
                " match one of them (docs/auth.md)",
            )

    for name, (_, what) in STATUS_COMMANDS.items():
        sub = commands.add_parser(
            name,
            help=what,
            allow_abbrev=False,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        sub.add_argument("-username", "--username", required=True, help="the user's name")
        _store_options(sub)


def _store_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "-state", "--state", default=None, help="the server's state file (default: the server's)"
    )
    sub.add_argument(
        "-upload-dir",
        "--upload-dir",
        type=Path,
        default=None,
        help="the server's -upload-dir, which places the default state file",
    )


def run(ns: argparse.Namespace) -> int:
    try:
        if ns.command == "createtoken" and ns.ttl > MAX_TTL:
            raise CommandError(f"--ttl {ns.ttl}: tokens must expire within 24h")
        path = state_path(ns.state, ns.upload_dir)
        if path == MEMORY:
            raise CommandError("give -state FILE or -upload-dir DIR: the server's users live there")
        asks = ns.command not in ("createtoken", *STATUS_COMMANDS)
        password = _password(ns) if asks else ""
        return asyncio.run(_run(ns, path, password))
    except (CommandError, StateLocationError, StateError, secret.SecretError) as exc:
        print(f"dffml-service-http {ns.command}: error: {exc}", file=sys.stderr)
        return 2


def _key_beside(state: str) -> Path:
    path = key_path(state)
    assert path is not None  # run() refused a state kept in memory
    return path


def _password(ns: argparse.Namespace) -> str:
    if ns.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise CommandError("no terminal to prompt for the password: use --password-stdin")
    first = getpass.getpass(f"Password for {ns.username}: ")
    if first != getpass.getpass("Password (again): "):
        raise CommandError("the passwords differ")
    return first


async def _run(ns: argparse.Namespace, path: str, password: str) -> int:
    store = StateStore(path)
    Accounts.register(store)
    await store.open()
    try:
        accounts = Accounts(store)
        if ns.command in STATUS_COMMANDS:
            status = STATUS_COMMANDS[ns.command][0]
            if not await accounts.set_status(ns.username, status):
                raise CommandError(
                    f"no user {ns.username!r} in {store.describe()} (or deleted already)"
                )
            print(f"user {ns.username} {status} in {store.describe()}")
            return 0
        if ns.command == "createtoken":
            account = await accounts.get(ns.username)
            if account is None or account.status != ACTIVE:
                state = "" if account is None else f" ({account.status})"
                raise CommandError(f"no active user {ns.username!r} in {store.describe()}{state}")
            key = secret.from_environment(os.environ.get(secret.ENV_SECRET))
            tokens = Tokens(
                key or secret.load_or_create(ns.token_key_file or _key_beside(path)),
                issuer=ns.token_issuer,
                audience=ns.token_audience,
                ttl=float(ns.ttl),
            )
            print(tokens.issue(account.user).token)
            return 0
        tokens = Tokens(b"-" * 32, issuer="-", audience="-", ttl=60)  # issues nothing here
        logins = Logins(accounts, tokens)
        try:
            user = await logins.create(
                ns.username, password, admin=ns.command == "createsuperuser", rules=ns.rule
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        role = "admin" if user.admin else "user"
        ruled = f" with {len(user.rules)} rule(s) of its own" if user.rules else ""
        print(f"created {role} {user.name}{ruled} in {store.describe()}")
        return 0
    finally:
        await store.aclose()
