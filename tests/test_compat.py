"""What clients and data files of the original DFFML service rely on, through HTTP and the CLI.

Each test is one behaviour of the original (dffml-service-http 0.1 on dffml 0.4) that a client
written for it, or a file saved by it, depends on; docs/compatibility.md lists them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.live import live_server, run_cli
from tests.models_helpers import add_model, add_source, expect, line_records, predict


async def configure(client: Any, plugin: str, label: str, config: dict[str, Any]) -> Any:
    response = await client.post(f"/configure/source/{plugin}/{label}", json=config)
    if response.status == 200:
        await expect(await client.get(f"/context/source/{label}/{label}"))
    return response


async def all_records(client: Any, ctx: str) -> dict[str, Any]:
    body = await expect(await client.get(f"/source/{ctx}/records/1000"))
    assert body["iterkey"] is None
    records: dict[str, Any] = body["records"]
    return records


# --- 2. predictions in the declared dtype ---------------------------------------------------


async def test_an_int_target_predicts_json_integers_and_a_float_target_floats(
    client: Any,
) -> None:
    # y = 10·x + 10 fitted from data whose arithmetic leaves 70.00000000000001 and the like.
    await add_source(client, "line", line_records([1, 2, 3, 4, 5, 7, 9, 11]))
    await add_model(
        client, "slr", "as_int", {"features": ["Years:int:1"], "predict": "Salary:int:1"}
    )
    await add_model(
        client, "slr", "as_float", {"features": ["Years:int:1"], "predict": "Salary:float:1"}
    )
    await add_model(
        client, "scikitlr", "sk_int", {"features": ["Years:int:1"], "predict": "Salary:int:1"}
    )
    for model in ("as_int", "as_float", "sk_int"):
        await expect(await client.post(f"/model/{model}/train", json=["line"]))
    wanted = {str(x): {"features": {"Years": x}} for x in (6, 0.3, 100)}
    for model in ("as_int", "sk_int"):
        response = await client.post(f"/model/{model}/predict/0", json=wanted)
        text = await response.text()
        values = {
            k: r["prediction"]["Salary"]["value"] for k, r in orjson.loads(text)["records"].items()
        }
        assert values == {"6": 70, "0.3": 13, "100": 1010}
        assert all(type(v) is int for v in values.values()), values
        assert '"value":70,' in text.replace(" ", "")  # on the wire: 70, not 70.0
    floats = await predict(client, "as_float", wanted)
    values = {k: r["prediction"]["Salary"]["value"] for k, r in floats.items()}
    assert all(type(v) is float for v in values.values()), values
    assert abs(values["0.3"] - 13.0) < 1e-9


async def test_class_labels_keep_their_type(client: Any) -> None:
    records = {
        str(i): {"features": {"x": i, "as_str": "high" if i > 5 else "low", "as_int": int(i > 5)}}
        for i in range(12)
    }
    await add_source(client, "classes", records)
    await add_model(
        client, "scikitlor", "words", {"features": ["x:float:1"], "predict": "as_str:str:1"}
    )
    await add_model(
        client, "scikitlor", "numbers", {"features": ["x:float:1"], "predict": "as_int:int:1"}
    )
    for model in ("words", "numbers"):
        await expect(await client.post(f"/model/{model}/train", json=["classes"]))
    wanted = {"a": {"features": {"x": 0}}, "b": {"features": {"x": 11}}}
    words = await predict(client, "words", wanted)
    assert [r["prediction"]["as_str"]["value"] for r in words.values()] == ["low", "high"]
    numbers = await predict(client, "numbers", wanted)
    values = [r["prediction"]["as_int"]["value"] for r in numbers.values()]
    assert values == [0, 1]
    assert all(type(v) is int for v in values)


# --- 3. updates without readwrite stay in memory ----------------------------------------------


async def test_csv_and_json_updates_without_readwrite_never_touch_the_file(
    client: Any, upload_dir: Path
) -> None:
    (upload_dir / "s.csv").write_text("Years,Salary\n1,20\n2,30\n")
    (upload_dir / "s.json").write_bytes(
        orjson.dumps({"unlabeled": {"a": {"features": {"Years": 1}}}})
    )
    before = {name: (upload_dir / name).read_bytes() for name in ("s.csv", "s.json")}
    for plugin, label, key in (("csv", "c", "1"), ("json", "j", "a")):
        assert (await configure(client, plugin, label, {"filename": f"s.{plugin}"})).status == 200
        update = {"features": {"Years": 40, "Salary": 410}}
        response = await client.post(f"/source/{label}/update/{key}", json=update)
        assert (response.status, await response.json()) == (200, {"error": None})
        response = await client.post(f"/source/{label}/update/added", json=update)
        assert (response.status, await response.json()) == (200, {"error": None})
        record = await expect(await client.get(f"/source/{label}/record/{key}"))
        assert record["features"] == {"Years": 40, "Salary": 410}
        assert list(await all_records(client, label))[-1] == "added"
        await expect(await client.delete(f"/configure/source/{label}"))  # closes: nothing saved
    assert {name: (upload_dir / name).read_bytes() for name in before} == before


async def test_sqlite_without_readwrite_stays_read_only(client: Any, upload_dir: Path) -> None:
    import sqlite3

    with sqlite3.connect(upload_dir / "p.db") as db:
        db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, Years INTEGER)")
        db.execute("INSERT INTO records VALUES ('a', 1)")
    db.close()
    before = (upload_dir / "p.db").read_bytes()
    assert (await configure(client, "sqlite", "q", {"filename": "p.db"})).status == 200
    response = await client.post("/source/q/update/a", json={"features": {"Years": 9}})
    assert response.status == 400
    assert "read-only" in (await response.json())["error"]
    assert (upload_dir / "p.db").read_bytes() == before


# --- 4. DFFML's file conventions ------------------------------------------------------------


async def test_csv_key_column_is_the_key_by_default(client: Any, upload_dir: Path) -> None:
    (upload_dir / "keyed.csv").write_text("key,Years\nann,3\nbob,5\n")
    (upload_dir / "plain.csv").write_text("Years\n3\n5\n")
    await configure(client, "csv", "keyed", {"filename": "keyed.csv"})
    await configure(client, "csv", "plain", {"filename": "plain.csv"})
    assert list(await all_records(client, "keyed")) == ["ann", "bob"]
    assert (await expect(await client.get("/source/keyed/record/bob")))["features"]["Years"] == 5
    assert list(await all_records(client, "plain")) == ["0", "1"]


async def test_csv_readwrite_with_the_default_key_column_saves_keys(
    client: Any, upload_dir: Path
) -> None:
    (upload_dir / "keyed.csv").write_text("key,Years\nann,3\n")
    await configure(client, "csv", "k", {"filename": "keyed.csv", "readwrite": True})
    await expect(await client.post("/source/k/update/cat", json={"features": {"Years": 7}}))
    await expect(await client.delete("/configure/source/k"))
    rows = list(csv.DictReader(io.StringIO((upload_dir / "keyed.csv").read_text())))
    assert [(r["key"], r["Years"]) for r in rows] == [("ann", "3"), ("cat", "7")]


async def test_csv_tag_and_tagcol_and_the_untagged_label(client: Any, upload_dir: Path) -> None:
    # A file in DFFML 0.4's conventions: a 'tag' column whose default label is 'untagged'.
    (upload_dir / "old.csv").write_text("key,tag,Years\na,untagged,1\nb,untagged,2\nc,test,3\n")
    (upload_dir / "mine.csv").write_text("set,Years\ntrain,1\ntest,2\n")
    await configure(client, "csv", "old", {"filename": "old.csv"})
    assert list(await all_records(client, "old")) == ["a", "b"]
    assert (await expect(await client.get("/source/old/record/a")))["features"] == {
        "key": "a",
        "Years": 1,
    }
    await configure(client, "csv", "old_test", {"filename": "old.csv", "tag": "test"})
    assert list(await all_records(client, "old_test")) == ["c"]
    await configure(client, "csv", "mine", {"filename": "mine.csv", "tagcol": "set", "tag": "test"})
    assert list(await all_records(client, "mine")) == ["0"]
    response = await configure(
        client, "csv", "both", {"filename": "mine.csv", "label": "x", "tag": "y"}
    )
    assert response.status == 400
    assert "alias 'tag'" in (await response.json())["error"]


async def test_csv_untagged_rows_are_saved_back_under_their_label(
    client: Any, upload_dir: Path
) -> None:
    (upload_dir / "old.csv").write_text("key,tag,Years\na,untagged,1\nc,test,3\n")
    await configure(client, "csv", "old", {"filename": "old.csv", "readwrite": True})
    await expect(await client.post("/source/old/update/b", json={"features": {"Years": 2}}))
    await expect(await client.delete("/configure/source/old"))
    rows = list(csv.DictReader(io.StringIO((upload_dir / "old.csv").read_text())))
    assert sorted((r["key"], r["tag"]) for r in rows) == [
        ("a", "untagged"),
        ("b", "untagged"),
        ("c", "test"),
    ]


DFFML_04_JSON = {
    "untagged": {
        "ann": {"key": "ann", "features": {"Years": 3, "Salary": 40}},
        "bob": {"key": "bob", "features": {"Years": 5, "Salary": 60}},
    },
    "test": {"cat": {"features": {"Years": 1}}},
}


async def test_json_saved_by_dffml_0_4_loads_over_http(client: Any, upload_dir: Path) -> None:
    (upload_dir / "old.json").write_bytes(orjson.dumps(DFFML_04_JSON))
    await configure(client, "json", "old", {"filename": "old.json"})
    records = await all_records(client, "old")
    assert list(records) == ["ann", "bob"]
    assert records["bob"]["features"] == {"Years": 5, "Salary": 60}
    await configure(client, "json", "t", {"filename": "old.json", "tag": "test"})
    assert list(await all_records(client, "t")) == ["cat"]
    # Saved back under the label it was read from, the other labels kept.
    await configure(client, "json", "rw", {"filename": "old.json", "readwrite": True})
    await expect(await client.post("/source/rw/update/dan", json={"features": {"Years": 8}}))
    await expect(await client.delete("/configure/source/rw"))
    saved = orjson.loads((upload_dir / "old.json").read_bytes())
    assert list(saved) == ["untagged", "test"]
    assert list(saved["untagged"]) == ["ann", "bob", "dan"]


def test_json_saved_by_dffml_0_4_loads_as_a_preload(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_bytes(orjson.dumps(DFFML_04_JSON))
    with live_server(
        *("-insecure", "-sources", "old=json", "-source-old-filename", "old.json"), cwd=tmp_path
    ) as server:
        body = requests.get(f"{server.url}/source/old/records/10", timeout=10).json()
    assert body["iterkey"] is None
    assert list(body["records"]) == ["ann", "bob"]


async def test_allowempty_with_a_missing_file_is_an_empty_source(
    client: Any, upload_dir: Path
) -> None:
    for plugin in ("csv", "json"):
        response = await configure(client, plugin, plugin, {"filename": f"none.{plugin}"})
        assert response.status == 400
        config = {"filename": f"none.{plugin}", "allowempty": True}
        assert (await configure(client, plugin, plugin, config)).status == 200
        assert await all_records(client, plugin) == {}
        await expect(await client.post(f"/source/{plugin}/update/a", json={"features": {"x": 1}}))
        assert list(await all_records(client, plugin)) == ["a"]
        await expect(await client.delete(f"/configure/source/{plugin}"))
        assert not (upload_dir / f"none.{plugin}").exists()  # without readwrite, nothing saved


# --- 5. upload answers 200 --------------------------------------------------------------------


async def test_upload_answers_200_for_a_new_file_and_a_replaced_one(
    client: Any, upload_dir: Path
) -> None:
    for content in (b"Years\n1\n", b"Years\n2\n"):
        form = {"file": io.BytesIO(content)}
        response = await client.post("/service/upload/new.csv", data=form)
        assert (response.status, await response.json()) == (200, {"error": None})
        assert (upload_dir / "new.csv").read_bytes() == content


# --- 7. createtls client -csr -----------------------------------------------------------------


def test_createtls_client_writes_a_csr_for_its_key(tmp_path: Path) -> None:
    assert run_cli("createtls", "server", cwd=tmp_path).returncode == 0
    result = run_cli("createtls", "client", "-csr", "client.csr", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wrote client.key, client.pem and client.csr"
    request = x509.load_pem_x509_csr((tmp_path / "client.csr").read_bytes())
    assert request.is_signature_valid
    key = serialization.load_pem_private_key((tmp_path / "client.key").read_bytes(), None)
    certificate = x509.load_pem_x509_certificate((tmp_path / "client.pem").read_bytes())
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    assert request.public_key().public_bytes(encoding, public) == key.public_key().public_bytes(
        encoding, public
    )
    assert request.subject == certificate.subject
    again = run_cli("createtls", "client", "-csr", "client.csr", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exist" in again.stderr
    (tmp_path / "client.key").unlink()
    (tmp_path / "client.pem").unlink()
    only_csr = run_cli("createtls", "client", "-csr", "client.csr", cwd=tmp_path)
    assert only_csr.returncode == 2
    assert "client.csr already exists: pass -force" in only_csr.stderr


def test_createtls_refuses_keys_below_2048_bits(tmp_path: Path) -> None:
    result = run_cli("createtls", "server", "-bits", "1024", cwd=tmp_path)
    assert result.returncode == 2
    assert "at least 2048 bits" in result.stderr
    assert list(tmp_path.iterdir()) == []


# --- 8. the missing field is reported first ---------------------------------------------------


async def test_a_missing_field_is_reported_before_an_unknown_one(client: Any) -> None:
    response = await client.post("/configure/source/csv/salary", json={"filname": "typo.csv"})
    assert (response.status, await response.json()) == (
        400,
        {"error": "CSVSource missing 'filename' from source.salary"},
    )
    nested = {"source": {"plugin": None, "config": {"bogus": {"plugin": [1], "config": {}}}}}
    response = await client.post("/configure/source/csv/salary", json=nested)
    assert (await response.json())["error"] == "CSVSource missing 'filename' from source.salary"
