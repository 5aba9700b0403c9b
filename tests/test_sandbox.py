"""The start-up sweep of crash leftovers, at its documented boundary (docs/limits.md, "Temporary
files": every temporary at least 60 s old is removed, and the server "logs which").

Survivors of the mutation run over service/kernel/sandbox.py (docs/testing.md): the age boundary and
the log line were driven by no test. The clock is the test's, so no timing is involved.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.kernel import sandbox
from tests.conftest import MakeClient
from tests.test_auth_ownership import as_user

NOW = 1_800_000_000.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.time, "time", lambda: NOW)


def leftover(path: Path, age: float) -> Path:
    path.write_text("half-written")
    os.utime(path, (NOW - age, NOW - age))
    return path


def test_temporaries_more_than_60_s_old_are_removed_and_logged(
    tmp_path: Path, clock: None, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "sub").mkdir()
    old = leftover(tmp_path / "sub" / ".a.csv.0123456789ab.tmp", 60.001)
    older = leftover(tmp_path / f".upload-{'f' * 32}.part", 3600)
    young = leftover(tmp_path / ".b.csv.0123456789ab.tmp", 59.999)
    sixty = leftover(tmp_path / "sub" / ".c.csv.0123456789ab.tmp", 60)  # "at least 60 s old"
    other = leftover(tmp_path / ".notes.tmp", 3600)  # not a name the server writes
    with caplog.at_level(logging.WARNING, logger="service.kernel.sandbox"):
        removed = sandbox.sweep_temporaries(tmp_path)
    assert sorted(removed) == [older.name, "sub/" + old.name, "sub/" + sixty.name]
    assert (old.exists(), older.exists(), young.exists(), other.exists()) == (
        False,
        False,
        True,
        True,
    )
    assert [r.getMessage() for r in caplog.records] == [
        f"removed 3 leftover temporary file(s): {', '.join(removed)}"
    ]


def test_a_sweep_with_nothing_to_remove_logs_nothing(
    tmp_path: Path, clock: None, caplog: pytest.LogCaptureFixture
) -> None:
    leftover(tmp_path / ".b.csv.0123456789ab.tmp", 30)
    (tmp_path / "plain.csv").write_text("a\n")
    with caplog.at_level(logging.DEBUG, logger="service.kernel.sandbox"):
        assert sandbox.sweep_temporaries(tmp_path) == []
    assert caplog.records == []


def test_a_temporary_gone_before_its_removal_does_not_stop_the_sweep(
    tmp_path: Path, clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another server sharing the directory removed the first one between listing and unlink.
    names = [f".{c}.csv.0123456789ab.tmp" for c in "abc"]
    for name in names:
        leftover(tmp_path / name, 3600)
    unlink = Path.unlink
    first = os.listdir(tmp_path)[0]  # the first one os.walk lists

    def racing_unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name == first:
            unlink(self)
            raise FileNotFoundError(2, "No such file or directory", str(self))
        unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", racing_unlink)
    removed = sandbox.sweep_temporaries(tmp_path)
    assert sorted(removed) == sorted(n for n in names if n != first)
    assert os.listdir(tmp_path) == []


def test_save_and_upload_temporaries_have_the_documented_names() -> None:
    # docs/limits.md: `.upload-<32 hex>.part` and `.<name>.<12 hex>.tmp`, never listed or served.
    save = sandbox.save_temp_name("a.csv")
    assert save.startswith(".a.csv.")
    assert save.endswith(".tmp")
    assert len(save) == len(".a.csv.") + 12 + len(".tmp")
    upload = sandbox.upload_temp_name()
    assert len(upload) == len(".upload-") + 32 + len(".part")
    assert sandbox.is_temporary(save)
    assert sandbox.is_temporary(upload)
    assert not sandbox.is_temporary(".a.csv.0123456789a.tmp")  # 11 hex
    assert not sandbox.is_temporary("a.csv.0123456789ab.tmp")  # no leading dot


async def test_a_users_directory_left_by_an_earlier_server_is_used(
    make_client: MakeClient, upload_dir: Path
) -> None:
    # users/U/ already exists (an earlier run made it): the first request of U still works.
    (upload_dir / "users" / "alice").mkdir(parents=True)
    (upload_dir / "users" / "alice" / "old.csv").write_text("a\n1\n")
    client = await make_client(auth="token", secret_key=b"s" * 32)
    alice = as_user(client, "alice")
    response = await client.get("/service/files", headers=alice)
    assert (response.status, await response.json()) == (
        200,
        [{"filename": "old.csv", "size": 4}],
    )


async def test_pages_are_the_same_for_a_signed_in_user(
    make_client: MakeClient, tmp_path: Path
) -> None:
    # Only the upload directory is per user: the dashboard and -static files are not.
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>site</p>")
    client = await make_client(auth="token", secret_key=b"s" * 32, static=site)
    alice = as_user(client, "alice")
    for path in ("/ui/", "/index.html"):
        anonymous = await client.get(path)
        signed_in = await client.get(path, headers=alice)
        assert (signed_in.status, await signed_in.text()) == (200, await anonymous.text()), path
    assert await (await client.get("/index.html", headers=alice)).text() == "<p>site</p>"
    assert not (site / "users").exists()


TOO_LONG = {"error": "File name too long (at most 255 bytes a name, 4096 in all)"}


async def test_a_path_over_4096_bytes_is_400_whatever_its_names(client: Any) -> None:
    # Every name is short; the whole path is over the documented 4096 bytes.
    path = "/".join(["a" * 200] * 21)
    assert len(path) > 4096
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"/service/files/{path}")
        assert (response.status, await response.json()) == (400, TOO_LONG), method


async def test_a_name_of_255_bytes_is_a_name(client: Any, upload_dir: Path) -> None:
    # "at most 255 bytes a name": 255 is allowed, 256 is not.
    longest = "é" * 126 + "abc"  # 252 + 3 bytes
    assert len(longest.encode()) == 255
    form = aiohttp.FormData()
    form.add_field("file", b"x", filename="x")
    response = await client.post(f"/service/upload/{longest}", data=form)
    assert (response.status, await response.json()) == (200, {"error": None})
    assert await (await client.get("/service/files")).json() == [{"filename": longest, "size": 1}]
    response = await client.get(f"/service/files/{longest}x")
    assert (response.status, await response.json()) == (400, TOO_LONG)


async def test_an_admin_lists_the_shared_files_and_with_all_every_users(
    make_client: MakeClient, upload_dir: Path
) -> None:
    # docs/auth.md: the shared files, with ?all=1 every user's too (as users/U/...). Names that
    # sort after "users" are shared files like any other.
    (upload_dir / "users" / "alice").mkdir(parents=True)
    (upload_dir / "users" / "alice" / "a.csv").write_text("a\n")
    for name in ("b.csv", "zeta.csv", "users.csv"):
        (upload_dir / name).write_text("s\n")
    client = await make_client(auth="token", secret_key=b"s" * 32)
    admin = as_user(client, "root", admin=True)
    shared = [{"filename": n, "size": 2} for n in ("b.csv", "users.csv", "zeta.csv")]
    response = await client.get("/service/files", headers=admin)
    assert (response.status, await response.json()) == (200, shared)
    response = await client.get("/service/files?all=1", headers=admin)
    everything = sorted([*shared, {"filename": "users/alice/a.csv", "size": 2}], key=str)
    assert sorted(await response.json(), key=str) == everything
