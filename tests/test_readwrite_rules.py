"""Read-write csv/json sources never lose an update silently (issue 13, point 5), and the update
spools have a disk bound (-spool-max-bytes). docs/plugins.md#read-write-rules states the rules."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import requests

from service.plugins.sources import filebacked, spool
from tests.conftest import MakeClient
from tests.live import live_server, run_cli

PEOPLE = "name,x\nann,1\nbob,2\n"


async def configure(
    client: Any, label: str, config: dict[str, Any], plugin: str = "csv", ctx: str | None = None
) -> Any:
    response = await client.post(f"/configure/source/{plugin}/{label}", json=config)
    if response.status == 200:
        opened = await client.get(f"/context/source/{label}/{ctx or label}")
        assert opened.status == 200, await opened.text()
    return response


async def error_of(response: Any, status: int) -> str:
    body = await response.json()
    assert response.status == status, body
    message: str = body["error"]
    return message


async def update(client: Any, ctx: str, key: str, features: dict[str, Any]) -> Any:
    return await client.post(f"/source/{ctx}/update/{key}", json={"features": features})


async def keys_of(client: Any, ctx: str) -> list[str]:
    body = await (await client.get(f"/source/{ctx}/records/1000")).json()
    assert body["iterkey"] is None
    return sorted(body["records"])


# --- a. a feature named like the label (or key) column -------------------------------------------


async def test_a_feature_named_like_the_label_column_is_refused(
    client: Any, upload_dir: Path
) -> None:
    (upload_dir / "p.csv").write_text(PEOPLE)
    assert (await configure(client, "p", {"filename": "p.csv", "readwrite": True})).status == 200
    for name in ("label", "tag"):  # 'tag' is DFFML 0.4's label column, also found by name
        message = await error_of(await update(client, "p", "0", {name: "yes", "x": 5}), 400)
        assert f"Feature {name!r} cannot be saved in p.csv" in message
        assert "labelcol" in message
    assert (await update(client, "p", "2", {"name": "cy", "x": 3})).status == 200
    assert (await client.delete("/configure/source/p")).status == 200
    # Read back: nothing hidden, the refused updates left no trace.
    assert (await configure(client, "p", {"filename": "p.csv", "readwrite": True})).status == 200
    assert await keys_of(client, "p") == ["0", "1", "2"]
    body = await (await client.get("/source/p/record/0")).json()
    assert body["features"] == {"name": "ann", "x": 1}


async def test_with_another_labelcol_a_label_feature_is_saved_and_read_back(
    client: Any, upload_dir: Path
) -> None:
    (upload_dir / "p.csv").write_text(PEOPLE)
    config = {"filename": "p.csv", "readwrite": True, "labelcol": "grp"}
    assert (await configure(client, "p", config)).status == 200
    assert (await update(client, "p", "0", {"name": "ann", "label": "yes"})).status == 200
    message = await error_of(await update(client, "p", "1", {"grp": "b"}), 400)
    assert "Feature 'grp'" in message
    assert (await client.delete("/configure/source/p")).status == 200
    assert (await configure(client, "p", config)).status == 200
    assert await keys_of(client, "p") == ["0", "1"]
    body = await (await client.get("/source/p/record/0")).json()
    assert body["features"]["label"] == "yes"


async def test_without_readwrite_a_label_feature_stays_in_memory(
    client: Any, upload_dir: Path
) -> None:
    (upload_dir / "p.csv").write_text(PEOPLE)
    assert (await configure(client, "p", {"filename": "p.csv"})).status == 200
    assert (await update(client, "p", "0", {"label": "yes"})).status == 200
    body = await (await client.get("/source/p/record/0")).json()
    assert body["features"] == {"label": "yes"}


async def test_a_key_column_feature_must_equal_the_key(client: Any, upload_dir: Path) -> None:
    (upload_dir / "k.csv").write_text("key,x\na,1\n")
    assert (await configure(client, "k", {"filename": "k.csv", "readwrite": True})).status == 200
    message = await error_of(await update(client, "k", "a", {"key": "b", "x": 2}), 400)
    assert "Feature 'key' is the key column of k.csv" in message
    assert (await update(client, "k", "a", {"key": "a", "x": 2})).status == 200
    assert (await client.delete("/configure/source/k")).status == 200
    assert (upload_dir / "k.csv").read_text() == "key,x\na,2\n"


# --- b. one read-write label per file ---------------------------------------------------------


async def test_a_second_read_write_label_on_one_file_is_409(client: Any, upload_dir: Path) -> None:
    (upload_dir / "p.csv").write_text(PEOPLE)
    (upload_dir / "sub").mkdir()
    (upload_dir / "sub" / "link.csv").symlink_to("../p.csv")
    rw = {"filename": "p.csv", "readwrite": True}
    assert (await configure(client, "one", rw)).status == 200
    for other in ("p.csv", "./sub/../p.csv", "sub/link.csv"):
        response = await configure(client, "two", {"filename": other, "readwrite": True})
        message = await error_of(response, 409)
        assert "p.csv is already read-write under source label 'one'" in message
        assert "DELETE /configure/source/one" in message
    # Reading it under another label is fine, and so is configuring 'one' again.
    assert (await configure(client, "reader", {"filename": "p.csv"})).status == 200
    assert (await update(client, "one", "4", {"name": "dan", "x": 4})).status == 200
    assert (await configure(client, "one", rw)).status == 200  # the same label again
    # Saved before the label read its file again (rows are keyed by number again).
    assert await keys_of(client, "one") == ["0", "1", "2"]
    body = await (await client.get("/source/one/record/2")).json()
    assert body["features"] == {"name": "dan", "x": 4}
    # Two contexts of the one label share its records: both updates are saved.
    assert (await client.get("/context/source/one/c2")).status == 200
    assert (await update(client, "one", "5", {"name": "eve", "x": 5})).status == 200
    assert (await update(client, "c2", "6", {"name": "fay", "x": 6})).status == 200
    assert (await client.delete("/context/source/c2")).status == 200
    assert (await client.delete("/configure/source/one")).status == 200
    assert upload_dir.joinpath("p.csv").read_text().count("\n") == 6
    assert (await configure(client, "two", {"filename": "p.csv", "readwrite": True})).status == 200


async def test_json_has_one_read_write_label_per_file_too(client: Any, upload_dir: Path) -> None:
    rw = {"filename": "r.json", "readwrite": True}
    assert (await configure(client, "one", rw, plugin="json")).status == 200
    message = await error_of(await configure(client, "two", rw, plugin="json"), 409)
    assert "r.json is already read-write under source label 'one'" in message


# --- c. a read-write file that could not be saved ------------------------------------------------


async def test_a_read_write_file_in_a_missing_directory_is_400(
    client: Any, upload_dir: Path
) -> None:
    (upload_dir / "plain").write_text("x")
    for plugin, name in (("csv", "a.csv"), ("json", "a.json")):
        for folder in ("nodir", "plain"):
            config = {"filename": f"{folder}/{name}", "readwrite": True}
            message = await error_of(await configure(client, "x", config, plugin=plugin), 400)
            assert f"{name} cannot be saved" in message
            assert repr(folder) in message
    assert sorted(os.listdir(upload_dir)) == ["plain"]
    assert (await client.get("/list/sources")).status == 200


async def test_hard_linked_files_are_refused_for_read_write_and_sqlite(
    client: Any, upload_dir: Path
) -> None:
    (upload_dir / "p.csv").write_text(PEOPLE)
    os.link(upload_dir / "p.csv", upload_dir / "alias.csv")
    message = await error_of(
        await configure(client, "p", {"filename": "p.csv", "readwrite": True}), 400
    )
    assert "p.csv has 2 hard links" in message
    assert (await configure(client, "p", {"filename": "p.csv"})).status == 200
    with sqlite3.connect(upload_dir / "d.db") as db:
        db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, x INTEGER)")
    os.link(upload_dir / "d.db", upload_dir / "outside-alias.db")
    for readwrite in (True, False):
        config = {"filename": "d.db", "readwrite": readwrite}
        message = await error_of(await configure(client, "d", config, plugin="sqlite"), 400)
        assert "d.db has 2 hard links" in message


# --- d. a save that fails is the client's to see -------------------------------------------------


async def test_a_failed_save_answers_the_release_and_later_updates(
    client: Any, upload_dir: Path
) -> None:
    sub = upload_dir / "sub"
    sub.mkdir()
    (sub / "p.csv").write_text(PEOPLE)
    rw = {"filename": "sub/p.csv", "readwrite": True}
    assert (await configure(client, "p", rw)).status == 200
    assert (await update(client, "p", "2", {"name": "cy", "x": 3})).status == 200
    sub.rename(upload_dir / "away")  # the directory is gone when the source saves
    message = await error_of(await client.delete("/context/source/p"), 507)
    assert "Saving p.csv failed: No such file or directory" in message
    assert "The updates are kept" in message
    # The context is closed; the label keeps the update and refuses to be released unsaved.
    assert (await client.get("/source/p/record/2")).status == 404
    message = await error_of(await client.delete("/configure/source/p"), 507)
    assert "Saving p.csv failed" in message
    assert (await client.get("/context/source/p/p")).status == 200
    message = await error_of(await update(client, "p", "3", {"name": "di", "x": 4}), 507)
    assert "Saving p.csv failed" in message
    # Once saving works again, the next update saves first and is accepted.
    (upload_dir / "away").rename(sub)
    assert (await update(client, "p", "3", {"name": "di", "x": 4})).status == 200
    assert "cy,3" in (sub / "p.csv").read_text()
    assert (await client.delete("/configure/source/p")).status == 200
    assert (sub / "p.csv").read_text() == PEOPLE + "cy,3\ndi,4\n"


async def test_a_file_replaced_on_disk_is_not_overwritten(client: Any, upload_dir: Path) -> None:
    (upload_dir / "p.csv").write_text(PEOPLE)
    assert (await configure(client, "p", {"filename": "p.csv", "readwrite": True})).status == 200
    assert (await update(client, "p", "2", {"name": "cy", "x": 3})).status == 200
    uploaded = b"name,x\nzed,9\n"
    form = aiohttp.FormData()
    form.add_field("file", uploaded, filename="p.csv")
    assert (await client.post("/service/upload/p.csv", data=form)).status == 200
    message = await error_of(await client.delete("/context/source/p"), 409)
    assert "p.csv was changed on disk after this source read it" in message
    message = await error_of(await client.delete("/configure/source/p"), 409)
    assert "?discard=true" in message
    assert (upload_dir / "p.csv").read_bytes() == uploaded
    # Giving up the unsaved updates is explicit.
    assert (await client.delete("/configure/source/p?discard=true")).status == 200
    assert (await client.get("/list/sources")).status == 200
    assert (upload_dir / "p.csv").read_bytes() == uploaded


async def test_json_save_failure_answers_the_release(client: Any, upload_dir: Path) -> None:
    sub = upload_dir / "sub"
    sub.mkdir()
    rw = {"filename": "sub/r.json", "readwrite": True}
    assert (await configure(client, "r", rw, plugin="json")).status == 200
    assert (await update(client, "r", "a", {"x": 1})).status == 200
    sub.rmdir()
    message = await error_of(await client.delete("/context/source/r"), 507)
    assert "Saving r.json failed" in message
    sub.mkdir()
    assert (await client.delete("/configure/source/r")).status == 200
    assert orjson.loads((sub / "r.json").read_bytes()) == {
        "unlabeled": {"a": {"key": "a", "features": {"x": 1}, "extra": {}}}
    }


# --- the spool's disk bound ----------------------------------------------------------------


async def test_updates_beyond_spool_max_bytes_are_507(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client(spool_max_bytes=4000)
    (upload_dir / "p.csv").write_text(PEOPLE)
    assert (await configure(client, "p", {"filename": "p.csv"})).status == 200
    accepted = 0
    for i in range(100):  # each update appends ~150 bytes; bounded loop
        response = await update(client, "p", str(i % 3), {"text": "v" * 100, "i": i})
        if response.status != 200:
            message = await error_of(response, 507)
            assert "at most 4000 are allowed (-spool-max-bytes)" in message
            break
        accepted += 1
    assert 10 < accepted < 40
    # Nothing accepted was lost, and reads go on.
    body = await (await client.get(f"/source/p/record/{(accepted - 1) % 3}")).json()
    assert body["features"]["i"] == accepted - 1
    # Releasing the label gives its spool's bytes back.
    assert (await client.delete("/configure/source/p")).status == 200
    assert (await configure(client, "q", {"filename": "p.csv"})).status == 200
    assert (await update(client, "q", "0", {"text": "w"})).status == 200


def test_spool_max_bytes_through_the_cli(tmp_path: Path) -> None:
    refused = run_cli("server", "-insecure", "-port", "0", "-spool-max-bytes", "-1", cwd=tmp_path)
    assert refused.returncode == 2
    assert "-spool-max-bytes must not be negative" in refused.stderr
    data = tmp_path / "data"
    data.mkdir()
    (data / "p.csv").write_text(PEOPLE)
    args = ("-insecure", "-upload-dir", str(data), "-spool-max-bytes", "300")
    with live_server(*args, cwd=tmp_path) as server:
        url = server.url
        assert requests.post(f"{url}/configure/source/csv/p", json={"filename": "p.csv"}).ok
        assert requests.get(f"{url}/context/source/p/p").ok
        first = requests.post(f"{url}/source/p/update/0", json={"features": {"t": "a" * 100}})
        assert first.status_code == 200
        statuses = [
            requests.post(
                f"{url}/source/p/update/0", json={"features": {"t": "b" * 100}}
            ).status_code
            for _ in range(5)
        ]
        assert statuses[-1] == 507
        assert set(statuses) <= {200, 507}
        assert (
            "-spool-max-bytes"
            in requests.post(
                f"{url}/source/p/update/0", json={"features": {"t": "c" * 100}}
            ).json()["error"]
        )


async def test_a_full_disk_is_named_on_save_and_on_update(
    client: Any, upload_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (upload_dir / "p.csv").write_text(PEOPLE)
    assert (await configure(client, "p", {"filename": "p.csv", "readwrite": True})).status == 200
    assert (await update(client, "p", "0", {"name": "ann", "x": 7})).status == 200

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(filebacked.safefs, "write_atomically", full)
    message = await error_of(await client.delete("/context/source/p"), 507)
    assert message.startswith("Saving p.csv failed: the disk is full. The updates are kept")
    # The spool's own disk full: the update is refused and changes nothing.
    monkeypatch.undo()
    assert (await client.get("/context/source/p/p")).status == 200
    monkeypatch.setattr(spool.RecordSpool, "_write", full)
    message = await error_of(await update(client, "p", "1", {"name": "bob", "x": 9}), 507)
    assert message.startswith("Storing the update failed: No space left on device")
    monkeypatch.undo()
    body = await (await client.get("/source/p/record/1")).json()
    assert body["features"] == {"name": "bob", "x": 2}
    assert (await client.delete("/configure/source/p")).status == 200
    assert (upload_dir / "p.csv").read_text() == "name,x\nann,7\nbob,2\n"
