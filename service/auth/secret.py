"""The HS256 signing key: from DFFML_SERVICE_HTTP_SECRET_KEY, or a 0600 file made once."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

ENV_SECRET = "DFFML_SERVICE_HTTP_SECRET_KEY"
# RFC 7518 3.2: an HS256 key must be at least as long as the hash, 256 bits.
MIN_SECRET_BYTES = 32


class SecretError(Exception):
    """The key cannot be used or made; the server refuses to start."""


def from_environment(value: str | None) -> bytes | None:
    if value is None:
        return None
    secret = value.encode("utf-8")
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            f"{ENV_SECRET} is {len(secret)} bytes; it must be at least {MIN_SECRET_BYTES}"
        )
    return secret


def ephemeral() -> bytes:
    """A key for this process alone: its tokens die with it (a state store kept in memory)."""
    return secrets.token_hex(32).encode("ascii")


def load_or_create(path: Path) -> bytes:
    """The key in ``path``; if there is none, a new random one written there with mode 0600.

    An existing file that others can read is refused: anyone who reads it can mint tokens.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise SecretError(f"cannot create -token-key-file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32) + "\n")
    return _read(path)


def _read(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                f"-token-key-file {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                "chmod 600 it"
            )
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise SecretError(f"cannot read -token-key-file {path}: {exc.strerror or exc}") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(f"-token-key-file {path} holds fewer than {MIN_SECRET_BYTES} bytes")
    return secret
