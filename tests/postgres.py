"""A real PostgreSQL server for the tests: initdb and pg_ctl from Debian's ``postgresql`` package
(scripts/system-deps installs it) in a temporary directory, on a free port of 127.0.0.1.

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user the package
creates (``runuser``), in a directory that user owns. Each test gets a database of its own
(:meth:`PostgresServer.new_database`), so tests on one server share nothing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

USER = "dffml"
PASSWORD = "s3cret-" + secrets.token_hex(4)


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> bool:
    return _bin("initdb") is not None and _bin("pg_ctl") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port

    def url(self, database: str = "postgres", *, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def postgres_server(*, fsync: bool = False) -> Iterator[PostgresServer]:
    """Start a server; stop it and delete its files at the end. Without ``fsync`` it never
    waits for the disk (tests need no durability; benchmarks ask for it)."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    assert initdb, "PostgreSQL is not installed: run scripts/system-deps"
    assert pg_ctl, "PostgreSQL is not installed: run scripts/system-deps"
    # Not under pytest's tmp_path: as root that is private to root, and the server runs as
    # postgres.
    root = Path(tempfile.mkdtemp(prefix="dffml-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        subprocess.run(
            _as_server_user(
                [
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    USER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        for _ in range(5):  # another process may take the free port before the server does
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
                " -c shared_buffers=16MB -c max_connections=50"
            )
            if not fsync:
                options += " -c fsync=off -c full_page_writes=off"
            result = subprocess.run(
                _as_server_user(
                    [
                        *(pg_ctl, "-D", str(data), "-l", str(root / "log")),
                        *("-o", options, "-w", "-t", "60", "start"),
                    ]
                ),
                capture_output=True,
                timeout=120,
            )
            if result.returncode == 0:
                started = True
                break
        assert started, (root / "log").read_text(errors="replace")
        yield PostgresServer(root, port)
    finally:
        if started:
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                timeout=120,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One server for the session (for each xdist worker)."""
    if not available():
        pytest.fail("PostgreSQL's server is missing: run scripts/system-deps")
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def state_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a state store lives, once for each backend: a new SQLite file, a new database."""
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()
