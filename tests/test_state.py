"""The state store: schemas and migrations per component, transactions, crash safety, -state."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from service.engine.state import MEMORY, Connection, StateError, StateStore
from service.engine.state.location import StateLocationError, key_path, state_path
from tests.live import live_server
from tests.postgres import PostgresServer, postgres, state_location

# The fixtures these tests take from tests/postgres.py: each store test runs on both backends.
__all__ = ["postgres", "state_location"]

NOTES_V1 = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"
NOTES_V2 = "ALTER TABLE notes ADD COLUMN author TEXT;\nCREATE INDEX notes_author ON notes (author);"


async def test_migrations_apply_once_in_order_and_versions_are_recorded(
    state_location: str,
) -> None:
    path = state_location
    store = StateStore(path)
    store.register_schema("notes", [NOTES_V1])
    await store.open()
    await store.execute("INSERT INTO notes (text) VALUES (?)", ("first",))
    await store.aclose()

    store = StateStore(path)
    store.register_schema("notes", [NOTES_V1, NOTES_V2])
    store.register_schema("other", ["CREATE TABLE other (x INTEGER);"])
    await store.open()
    try:
        await store.execute("INSERT INTO notes (text, author) VALUES (?, ?)", ("second", "ann"))
        rows = await store.fetchall("SELECT text, author FROM notes ORDER BY id")
        assert [tuple(r) for r in rows] == [("first", None), ("second", "ann")]
        versions = await store.fetchall("SELECT component, version FROM schema_versions")
        assert {r["component"]: r["version"] for r in versions} == {"notes": 2, "other": 1}
    finally:
        await store.aclose()


async def test_a_database_from_a_newer_release_is_refused(state_location: str) -> None:
    path = state_location
    store = StateStore(path)
    store.register_schema("notes", [NOTES_V1, NOTES_V2])
    await store.open()
    await store.aclose()
    older = StateStore(path)
    older.register_schema("notes", [NOTES_V1])
    with pytest.raises(StateError, match="newer release"):
        await older.open()


async def test_a_failing_transaction_leaves_nothing_and_a_failed_migration_is_retried(
    state_location: str,
) -> None:
    path = state_location
    broken = StateStore(path)
    broken.register_schema("notes", [NOTES_V1 + "\nINSERT INTO nowhere VALUES (1);"])
    with pytest.raises(StateError):
        await broken.open()
    store = StateStore(path)
    store.register_schema("notes", [NOTES_V1])
    await store.open()
    try:

        def half(conn: Connection) -> None:
            conn.execute("INSERT INTO notes (text) VALUES ('kept?')")
            raise ValueError("changed my mind")

        with pytest.raises(ValueError, match="changed my mind"):
            await store.transaction(half)
        assert await store.fetchall("SELECT * FROM notes") == []
        assert await store.fetchone("SELECT count(*) AS n FROM notes") is not None
    finally:
        await store.aclose()


async def test_registering_twice_or_after_opening_is_a_programming_error(
    state_location: str,
) -> None:
    store = StateStore(state_location)
    store.register_schema("notes", [NOTES_V1])
    with pytest.raises(ValueError, match="twice"):
        store.register_schema("notes", [NOTES_V1])
    await store.open()
    try:
        with pytest.raises(RuntimeError, match="after the state store opened"):
            store.register_schema("late", [NOTES_V1])
    finally:
        await store.aclose()
    with pytest.raises(RuntimeError, match="not open"):
        await store.fetchall("SELECT 1")


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    store = StateStore(path)
    store.register_schema("notes", [NOTES_V1])
    with pytest.raises(StateError, match="not a usable state database"):
        await store.open()


async def test_an_unreachable_postgresql_is_a_clear_error_that_hides_the_password(
    postgres: PostgresServer,
) -> None:
    wrong = postgres.url("postgres", password="not-the-password")
    store = StateStore(wrong)
    store.register_schema("notes", [NOTES_V1])
    with pytest.raises(StateError, match="cannot connect to") as refused:
        await store.open()
    assert "not-the-password" not in str(refused.value)
    assert "***" in str(refused.value)


async def test_memory_keeps_nothing_and_uses_no_file(tmp_path: Path) -> None:
    for _ in range(2):
        store = StateStore(MEMORY)
        store.register_schema("notes", [NOTES_V1])
        await store.open()
        assert await store.fetchall("SELECT * FROM notes") == []
        await store.execute("INSERT INTO notes (text) VALUES ('gone')")
        assert await store.size() == 0
        await store.aclose()


def test_a_process_killed_mid_writes_leaves_a_store_that_opens(tmp_path: Path) -> None:
    """SIGKILL while a writer commits in a loop: every committed row is there, the file opens."""
    path = tmp_path / "state.sqlite3"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from service.engine.state import StateStore
        async def main():
            store = StateStore({str(path)!r})
            store.register_schema("notes", [{NOTES_V1!r}])
            await store.open()
            n = 0
            while True:
                n += 1
                await store.execute("INSERT INTO notes (text) VALUES (?)", (str(n),))
                if n == 50:
                    print("ready", flush=True)
        asyncio.run(main())
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[1]
    )
    with process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == b"ready"
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        texts = [int(r[0]) for r in conn.execute("SELECT text FROM notes ORDER BY id")]
        assert len(texts) >= 50
        assert texts == list(range(1, len(texts) + 1))  # committed rows, none torn or missing
    finally:
        conn.close()


def test_state_location_defaults_beside_the_upload_dir_and_never_inside(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    url = "postgresql://u:pw@db.example:5432/state"
    assert state_path(url, data) == url  # a database, not a file: nothing to place
    with pytest.raises(StateLocationError, match="-token-key-file"):
        key_path(url)  # every host must sign with one key: the operator names it
    assert state_path(None, data) == str(tmp_path / "data.state.sqlite3")
    assert state_path(None, None) == MEMORY
    assert state_path(MEMORY, data) == MEMORY
    assert state_path(str(tmp_path / "s.db"), data) == str(tmp_path / "s.db")
    for inside in (data / "s.db", data / "sub" / "s.db", data / ".." / "data" / "x.db"):
        with pytest.raises(StateLocationError, match="inside -upload-dir"):
            state_path(str(inside), data)
    with pytest.raises(StateLocationError, match="directory"):
        state_path(str(tmp_path), data)


def test_cli_refuses_a_state_file_inside_the_upload_dir(tmp_path: Path) -> None:
    from tests.live import run_cli

    (tmp_path / "data").mkdir()
    result = run_cli(
        *("server", "-insecure", "-port", "0", "-upload-dir", "data"),
        *("-state", "data/state.sqlite3"),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "inside -upload-dir" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "data" / "state.sqlite3").exists()


def test_cli_refuses_an_unusable_state_file(tmp_path: Path) -> None:
    from tests.live import run_cli

    (tmp_path / "bad.db").write_bytes(b"not a database at all" * 50)
    result = run_cli("server", "-insecure", "-port", "0", "-state", "bad.db", cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dffml-service-http: error: -state:"), last
    assert "not a usable state database" in last


def test_the_default_state_file_is_created_beside_the_upload_dir(tmp_path: Path) -> None:
    import requests

    with live_server("-insecure", "-upload-dir", "data", cwd=tmp_path) as server:
        assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
        listed = requests.get(f"{server.url}/service/files", timeout=10).json()
        assert listed == []  # the state file is beside the upload dir, not in it
    assert (tmp_path / "data.state.sqlite3").is_file()


async def test_labels_saved_before_owners_existed_come_back_shared(state_location: str) -> None:
    """A state file written before labels had owners (schema 1) migrates: its rows are the
    shared namespace's, in their order, and rows of one name can now exist per owner."""
    from service.engine.state.labels import SCHEMA, Labels
    from service.kernel import scope

    path = state_location
    store = StateStore(path)
    store.register_schema("labels", SCHEMA[:1])
    await store.open()
    for label in ("b", "a"):
        await store.execute(
            "INSERT INTO labels (kind, label, plugin, config) VALUES (?, ?, ?, ?)",
            ("source", label, "memory", "{}"),
        )
    await store.execute(
        "INSERT INTO contexts (kind, ctx_label, label) VALUES (?, ?, ?)", ("source", "c", "a")
    )
    await store.aclose()

    store = StateStore(path)
    Labels.register(store)
    await store.open()
    try:
        labels = Labels(store)
        with scope.in_namespace("bob"):
            await labels.configured("source", "csv", "a", {"filename": "p.csv"})
            await labels.context_opened("source", "a", "c")
        saved, contexts = await labels.saved()
        assert [(s.owner, s.label, s.plugin) for s in saved] == [
            (None, "b", "memory"),
            (None, "a", "memory"),
            ("bob", "a", "csv"),
        ]
        assert [(c.owner, c.ctx_label, c.label) for c in contexts] == [
            (None, "c", "a"),
            ("bob", "c", "a"),
        ]
        await labels.released("source", "a")  # the shared namespace's: bob's stays
        saved, contexts = await labels.saved()
        assert [(s.owner, s.label) for s in saved] == [(None, "b"), ("bob", "a")]
        assert [(c.owner, c.ctx_label) for c in contexts] == [("bob", "c")]
    finally:
        await store.aclose()
