"""Issue 13 hardening, through HTTP: shadowed rowids, keys of any text, leftovers, label caps,
corrupted databases, and one shared thread pool for sqlite."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from service.kernel.sandbox import is_temporary
from service.observability.clientlog import ClientErrorFilter
from tests.conftest import MakeClient

PAGE_LIMIT = 100  # a paging loop that has not ended by then never will


async def configure(client: Any, plugin: str, label: str, config: dict[str, Any]) -> Any:
    response = await client.post(f"/configure/source/{plugin}/{label}", json=config)
    assert response.status == 200, await response.text()
    opened = await client.get(f"/context/source/{label}/{label}")
    assert opened.status == 200, await opened.text()
    return response


async def all_keys(client: Any, ctx: str, size: int = 2) -> list[str]:
    body = await (await client.get(f"/source/{ctx}/records/{size}")).json()
    keys = list(body["records"])
    for _ in range(PAGE_LIMIT):
        if body["iterkey"] is None:
            return keys
        response = await client.get(f"/source/{ctx}/records/{body['iterkey']}/{size}")
        assert response.status == 200, await response.text()
        body = await response.json()
        keys += list(body["records"])
    raise AssertionError(f"paging {ctx} did not end after {PAGE_LIMIT} pages: {keys[:10]}…")


def make_db(path: Path, columns: str, rows: list[tuple[Any, ...]]) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute(f"CREATE TABLE records ({columns})")
        marks = ", ".join("?" for _ in rows[0])
        db.executemany(f"INSERT INTO records VALUES ({marks})", rows)
    db.close()


# --- 1. a column named rowid ----------------------------------------------------------------


async def test_sqlite_user_rowid_column_does_not_restart_paging(
    client: Any, upload_dir: Path
) -> None:
    # Every row's "rowid" column holds 0: keyset paging on it restarted from the start forever.
    make_db(upload_dir / "r.db", "key TEXT, rowid INTEGER, x", [(f"k{i}", 0, i) for i in range(7)])
    await configure(client, "sqlite", "s", {"filename": "r.db"})
    assert await all_keys(client, "s") == [f"k{i}" for i in range(7)]
    record = await (await client.get("/source/s/record/k3")).json()
    assert record["features"] == {"key": "k3", "rowid": 0, "x": 3}


async def test_sqlite_every_rowid_alias_shadowed_pages_by_key(
    client: Any, upload_dir: Path
) -> None:
    make_db(
        upload_dir / "r.db",
        "key TEXT, rowid, _rowid_, oid",
        [(f"k{i}", 1, 1, 1) for i in (3, 1, 2, 0)],
    )
    await configure(client, "sqlite", "s", {"filename": "r.db"})
    assert await all_keys(client, "s") == ["k0", "k1", "k2", "k3"]


async def test_sqlite_update_may_not_add_a_rowid_column(client: Any, upload_dir: Path) -> None:
    await configure(client, "sqlite", "s", {"filename": "w.db", "readwrite": True})
    for i in range(3):
        response = await client.post(f"/source/s/update/k{i}", json={"features": {"x": i}})
        assert response.status == 200
    for name in ("rowid", "ROWID", "_rowid_", "oid"):
        response = await client.post("/source/s/update/k9", json={"features": {name: 5}})
        assert response.status == 400
        assert (await response.json())["error"] == (
            f"feature name {name!r} is reserved by the sqlite source"
            " (rowid, _rowid_, oid name the table's row id)"
        )
    assert await all_keys(client, "s") == ["k0", "k1", "k2"]


# --- 7. corrupted pages found after configure ------------------------------------------------


async def test_sqlite_corrupted_after_configure_is_a_400(client: Any, upload_dir: Path) -> None:
    path = upload_dir / "c.db"
    make_db(path, "key TEXT, blob TEXT", [(f"k{i}", "x" * 2000) for i in range(200)])
    await configure(client, "sqlite", "c", {"filename": "c.db"})
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(2 * page, len(data) - page, page):
        data[start : start + 64] = b"\xff" * 64  # break each page header but the first two
    path.write_bytes(bytes(data))
    response = await client.get("/source/c/records/500")
    assert response.status == 400, await response.text()
    assert (await response.json())["error"].startswith("c.db cannot be read: ")


# --- 3. one thread pool for every sqlite label ----------------------------------------------


async def test_sqlite_labels_share_a_bounded_thread_pool(client: Any, upload_dir: Path) -> None:
    make_db(upload_dir / "t.db", "key TEXT, x", [("a", 1)])
    for i in range(12):
        await configure(client, "sqlite", f"s{i}", {"filename": "t.db"})
        assert await all_keys(client, f"s{i}") == ["a"]
    sqlite_threads = [t for t in threading.enumerate() if t.name.startswith("sqlite")]
    assert 1 <= len(sqlite_threads) <= 4


# --- 3. -max-labels -------------------------------------------------------------------------


async def test_max_labels_refuses_more_labels_and_contexts(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client(max_labels=2)
    for label in ("a", "b"):
        assert (await client.post(f"/configure/source/memory/{label}", json={})).status == 200
    response = await client.post("/configure/model/slr/c", json={"features": ["x"]})
    assert response.status == 409
    assert (await response.json())["error"] == (
        "At most 2 labels may be open at once (-max-labels);"
        " release one with DELETE /configure/{kind}/{label} first"
    )
    # Configuring a label again replaces it: no more labels than before.
    assert (await client.post("/configure/source/memory/a", json={})).status == 200
    for ctx in ("x", "y"):
        assert (await client.get(f"/context/source/a/{ctx}")).status == 200
    response = await client.get("/context/source/b/z")
    assert response.status == 409
    assert (await response.json())["error"] == (
        "At most 2 contexts may be open at once (-max-labels);"
        " release one with DELETE /context/{kind}/{label} first"
    )
    assert (await client.delete("/context/source/y")).status == 200
    assert (await client.get("/context/source/b/z")).status == 200
    assert (await client.delete("/configure/source/b")).status == 200
    assert (await client.post("/configure/source/memory/c", json={})).status == 200


# --- 8. keys of any text --------------------------------------------------------------------

ODD_KEYS = ['a:{"', "b:{", 'c\\":{"', "d\\", '":{"key":', "ok"]


async def test_csv_keys_with_json_delimiters_stream_and_reload(
    client: Any, upload_dir: Path
) -> None:
    lines = ["key,x"] + [
        f'"{key.replace(chr(34), chr(34) * 2)}",{i}' for i, key in enumerate(ODD_KEYS)
    ]
    (upload_dir / "k.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    await configure(client, "csv", "k", {"filename": "k.csv", "key": "key", "readwrite": True})
    response = await client.get("/source/k/records", headers={"Accept": "application/x-ndjson"})
    body = await response.read()
    assert [orjson.loads(line)["key"] for line in body.splitlines()] == ODD_KEYS
    assert await all_keys(client, "k") == ODD_KEYS
    for i, key in enumerate(ODD_KEYS):
        # Updated twice: the second update finds the first by key instead of adding a row.
        for value in (100 + i, 200 + i):
            response = await client.post(
                f"/source/k/update/{quote(key, safe='')}",
                json={"features": {"x": value}},
            )
            assert response.status == 200, await response.text()
    assert await all_keys(client, "k") == ODD_KEYS
    # The file saved when the context closes loads again, every key once.
    assert (await client.delete("/context/source/k")).status == 200
    await configure(client, "csv", "k2", {"filename": "k.csv", "key": "key"})
    assert await all_keys(client, "k2", size=100) == ODD_KEYS
    response = await client.get("/source/k2/records", headers={"Accept": "application/x-ndjson"})
    records = [orjson.loads(line) for line in (await response.read()).splitlines()]
    assert [r["features"]["x"] for r in records] == [200 + i for i in range(len(ODD_KEYS))]


async def test_json_keys_with_json_delimiters_in_ndjson(client: Any, upload_dir: Path) -> None:
    data = {"unlabeled": {key: {"features": {"i": i}} for i, key in enumerate(ODD_KEYS)}}
    (upload_dir / "k.json").write_bytes(orjson.dumps(data))
    await configure(client, "json", "j", {"filename": "k.json"})
    response = await client.get("/source/j/records", headers={"Accept": "application/x-ndjson"})
    lines = (await response.read()).splitlines()
    assert [orjson.loads(line) for line in lines] == [
        {"key": key, "features": {"i": i}, "extra": {}} for i, key in enumerate(ODD_KEYS)
    ]


# --- 9. crash leftovers ---------------------------------------------------------------------


async def test_crash_leftovers_are_swept_at_start_and_never_listed(
    make_client: MakeClient, upload_dir: Path
) -> None:
    (upload_dir / "sub").mkdir()
    old = [
        upload_dir / ".a.csv.0123456789ab.tmp",
        upload_dir / "sub" / f".upload-{'0' * 32}.part",
        upload_dir / ".model.skops.abcdef012345.tmp",
    ]
    fresh = upload_dir / ".b.json.00000000ffff.tmp"
    kept = upload_dir / ".notes.tmp"  # not a name this server writes
    an_hour_ago = time.time() - 3600
    for path in [*old, fresh, kept]:
        path.write_text("half-written")
    for path in old:
        os.utime(path, (an_hour_ago, an_hour_ago))
    client = await make_client()
    assert not any(path.exists() for path in old)
    # Another server sharing the directory may be writing a fresh one: left, but never shown.
    assert fresh.exists()
    assert is_temporary(fresh.name)
    listing = await (await client.get("/service/files")).json()
    assert listing == [{"filename": ".notes.tmp", "size": 12}]
    for name in (fresh.name, old[0].name):
        response = await client.get(f"/service/files/{name}")
        assert response.status == 404
        assert (await response.json())["error"] == f"File not found: {name}"


# --- 10. client errors in the log -------------------------------------------------------------


def test_client_error_filter_counts_what_it_left_out() -> None:
    now = [0.0]
    chosen = ClientErrorFilter(burst=2, window=10, clock=lambda: now[0])
    records = [
        logging.LogRecord("service.x", logging.INFO, __file__, 1, "refused %s", (i,), None)
        for i in range(5)
    ]
    for record in records:
        record.client_error = True
    assert [chosen.filter(record) for record in records] == [True, True, False, False, False]
    now[0] = 10.0
    later = logging.LogRecord("service.x", logging.INFO, __file__, 1, "refused %s", (9,), None)
    later.client_error = True
    assert chosen.filter(later)
    assert later.getMessage() == (
        "refused 9 (3 more client errors were not logged in the last 10 s)"
    )
    other = logging.LogRecord("service.x", logging.ERROR, __file__, 1, "a bug", (), None)
    assert all(chosen.filter(other) for _ in range(5))


# --- 7. malformed multipart bodies ------------------------------------------------------------

BOUNDARY = "hardening"


def multipart_body(extra_headers: str = "", *, closed: bool = True) -> bytes:
    body = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="f.csv"\r\n'
        f"{extra_headers}\r\n"
    ).encode() + b"a,b\n1,2\n"
    if closed:
        body += f"\r\n--{BOUNDARY}--\r\n".encode()
    return body


async def test_malformed_multipart_bodies_are_400_and_save_nothing(
    client: Any, upload_dir: Path
) -> None:
    cases = {
        "over-long part header line": (
            multipart_body("X-Long: " + "a" * 20000 + "\r\n"),
            "Malformed multipart body: Got more than 8190 bytes when reading: b'X-Long: aaa",
        ),
        "too many part headers": (
            multipart_body("".join(f"X-{i}: v\r\n" for i in range(500))),
            "Malformed multipart body: Too many headers received",
        ),
        "no closing boundary": (
            multipart_body(closed=False),
            "Malformed multipart body: it ends before the file part's boundary",
        ),
    }
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    for what, (body, message) in cases.items():
        response = await client.post("/service/upload/f.csv", data=body, headers=headers)
        assert response.status == 400, what
        assert (await response.json())["error"].startswith(message), what
        assert os.listdir(upload_dir) == [], what
    response = await client.post("/service/upload/f.csv", data=multipart_body(), headers=headers)
    assert response.status == 200
    assert (upload_dir / "f.csv").read_bytes() == b"a,b\n1,2\n"


# --- 7. numbers beyond float range, deep nesting, hyper-parameter bounds ----------------------


async def memory_source(client: Any, label: str, rows: dict[str, dict[str, Any]]) -> None:
    assert (await client.post(f"/configure/source/memory/{label}", json={})).status == 200
    assert (await client.get(f"/context/source/{label}/{label}")).status == 200
    for key, features in rows.items():
        response = await client.post(f"/source/{label}/update/{key}", json={"features": features})
        assert response.status == 200


async def slr_model(client: Any, label: str) -> None:
    config = {"features": ["x:float:1"], "predict": "y:float:1"}
    assert (await client.post(f"/configure/model/slr/{label}", json=config)).status == 200
    assert (await client.get(f"/context/model/{label}/{label}")).status == 200


async def test_training_on_numbers_whose_squares_overflow_is_a_400(client: Any) -> None:
    await memory_source(
        client, "big", {f"k{i}": {"x": x, "y": x} for i, x in enumerate([1e200, -1e200, 3e200])}
    )
    await slr_model(client, "m")
    response = await client.post("/model/m/train", json=["big"])
    assert response.status == 400
    assert (await response.json())["error"].startswith(
        "Training failed: the numbers are beyond float range"
    )


async def test_predictions_and_scores_beyond_float_range_are_400_not_null(client: Any) -> None:
    await memory_source(client, "line", {f"k{i}": {"x": i, "y": 2 * i + 1} for i in range(5)})
    await slr_model(client, "m")
    assert (await client.post("/model/m/train", json=["line"])).status == 200
    response = await client.post("/model/m/predict/0", json={"a": {"features": {"x": 1e308}}})
    assert response.status == 400
    assert (await response.json())["error"] == (
        "Prediction failed: the prediction for record 'a' is beyond float range"
    )
    await memory_source(client, "huge", {"h": {"x": 1, "y": 1e300}, "g": {"x": 2, "y": -1e300}})
    for scorer in ("mse", "r2"):
        assert (await client.post(f"/configure/scorer/{scorer}/{scorer}", json={})).status == 200
        assert (await client.get(f"/context/scorer/{scorer}/{scorer}")).status == 200
        response = await client.post(f"/scorer/{scorer}/m/score", json=["huge"])
        assert response.status == 400, scorer
        assert (await response.json())["error"].endswith(
            "is not a finite number: the errors are beyond float range"
        ), scorer


async def test_features_nested_deeper_than_the_encoder_allows_are_400(client: Any) -> None:
    await memory_source(client, "s", {})
    deep = b"[" * 300 + b"]" * 300
    response = await client.post(
        "/source/s/update/d",
        data=b'{"features": {"x": ' + deep + b"}}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"] == (
        "Record 'd' 'features' nests lists and objects deeper than 200 levels"
    )
    # Nothing was stored: the source still serves every record.
    assert (await client.get("/source/s/records/10")).status == 200
    response = await client.post(
        "/model/none/predict/0",
        data=b'{"a": {"features": {"x": ' + deep + b"}}}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 404  # no such model: checked before the body


async def test_hyperparameters_have_upper_bounds(client: Any) -> None:
    base = {"features": ["x:float:1"], "predict": "y:int:1"}
    cases = [
        ("scikitrf", {"n_estimators": 2**40}, "'n_estimators' must be at most 10000"),
        ("scikitrf", {"max_depth": 2**40}, "'max_depth' must be at most 1000"),
        (
            "scikitrf",
            {"min_samples_split": 2**40},
            "'min_samples_split' must be at most 2147483647",
        ),
        ("scikitknn", {"leaf_size": 2**40}, "'leaf_size' must be at most 1000000"),
        ("scikitknn", {"n_neighbors": 2**40}, "'n_neighbors' must be at most 2147483647"),
        ("scikitlor", {"max_iter": 2**40}, "'max_iter' must be at most 1000000"),
        ("scikitlor", {"random_state": -1}, "'random_state' must be at least 0"),
        ("scikitrf", {"random_state": 2**33}, "'random_state' must be at most 4294967295"),
    ]
    for plugin, extra, message in cases:
        response = await client.post(f"/configure/model/{plugin}/h", json={**base, **extra})
        assert response.status == 400, (plugin, extra)
        assert message in (await response.json())["error"], (plugin, extra)


# --- 4. evasion's documented bounds -----------------------------------------------------------


async def test_evasion_max_rows_has_an_upper_bound(client: Any, upload_dir: Path) -> None:
    (upload_dir / "t.csv").write_text("x,y\n1,2\n3,4\n")
    assert (await client.post("/configure/module/evasion/ev", json={})).status == 200
    assert (await client.get("/context/module/ev/ev")).status == 200
    body = {"files": ["t.csv"], "options": {"model": "m", "goal": "flip", "max_rows": 10_001}}
    response = await client.post("/module/ev/evade", json=body)
    assert response.status == 400
    assert "max_rows must be from 1 to 10000, got 10001" in (await response.json())["error"]


async def test_a_name_too_long_for_the_filesystem_is_a_400(client: Any) -> None:
    name = "9" * 400
    form = aiohttp.FormData()
    form.add_field("file", b"x", filename="x")
    response = await client.post(f"/service/upload/{name}", data=form)
    assert response.status == 400
    assert (await response.json())["error"] == (
        "File name too long (at most 255 bytes a name, 4096 in all)"
    )
    response = await client.get(f"/service/files/sub/{name}")
    assert (response.status, await response.json()) == (
        400,
        {"error": "File name too long (at most 255 bytes a name, 4096 in all)"},
    )


async def test_a_path_whose_absolute_form_is_too_long_is_a_400(client: Any) -> None:
    # Exactly 4096 bytes relative passes the relative bound, but the upload dir's own path makes
    # the absolute one longer than the kernel takes (ENAMETOOLONG, a 500 before).
    path = "/".join(["a" * 254] * 16) + "/" + "b" * 16
    assert len(path) == 4096
    expected = {"error": "File name too long (at most 255 bytes a name, 4096 in all)"}
    form = aiohttp.FormData()
    form.add_field("file", b"x", filename="x")
    response = await client.post(f"/service/upload/{path}", data=form)
    assert (response.status, await response.json()) == (400, expected)
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"/service/files/{path}")
        assert (response.status, await response.json()) == (400, expected), method
