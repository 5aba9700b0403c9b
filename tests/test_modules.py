"""Modules through HTTP: listing, validation, the built-in dataset functions, time limits."""

from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import random
from pathlib import Path
from typing import Any

import pytest
import requests

from service.api.keys import WORKERS
from service.plugins.registry import Registry
from service.sdk.modules import Function, Module
from service.settings import Preload
from tests import fakes
from tests.conftest import MakeClient
from tests.live import live_server, run_cli


async def open_module(client: Any, plugin: str, label: str) -> None:
    response = await client.post(f"/configure/module/{plugin}/{label}", json={})
    assert (response.status, await response.json()) == (200, {"error": None})
    response = await client.get(f"/context/module/{label}/{label}")
    assert (response.status, await response.json()) == (200, {"error": None})


async def run(client: Any, path: str, body: Any) -> tuple[int, Any]:
    response = await client.post(path, json=body)
    return response.status, await response.json()


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture
async def dataset(client: Any, upload_dir: Path) -> Any:
    await open_module(client, "dataset", "ds")
    return client


@pytest.fixture
async def fake(make_client: MakeClient, upload_dir: Path) -> Any:
    client = await make_client(registry=fakes.fake_registry())
    await open_module(client, "fake", "f")
    (upload_dir / "in").mkdir()
    (upload_dir / "in" / "a.txt").write_text("one\ntwo\n")
    return client


async def test_list_modules_shows_functions_and_option_schemas(client: Any) -> None:
    body = await (await client.get("/list/modules")).json()
    dataset = body["dataset"]
    assert dataset["module"] == {
        "plugin": None,
        "config": {"dataset": {"plugin": None, "config": {}}},
    }
    assert dataset["tagline"]
    assert "split" in dataset["description"]
    assert list(dataset["functions"]) == ["describe", "split", "convert"]
    split = dataset["functions"]["split"]
    assert split["expected_filetype"] == "csv"
    assert split["creates_new_files"] is True
    assert split["modifies_input_files"] is False
    assert split["tags"][1] == {"name": "part", "type": "str", "help": "train or test"}
    options = {option["name"]: option for option in split["options"]}
    assert list(options) == ["ratio", "seed", "stratify", "shuffle"]
    assert options["ratio"] == {
        "name": "ratio",
        "type": "float",
        "default": 0.8,
        "help": "share of the rows that go to the train file",
    }
    assert options["stratify"]["type"] == "str"
    assert options["stratify"]["nullable"] is True
    assert options["shuffle"]["type"] == "bool"
    assert dataset["functions"]["convert"]["optional_filetypes"] == ["json"]


async def test_list_fake_module_required_and_enum_options(fake: Any) -> None:
    body = await (await fake.get("/list/modules")).json()
    options = {o["name"]: o for o in body["fake"]["functions"]["echo"]["options"]}
    assert options["count"] == {
        "name": "count",
        "type": "int",
        "required": True,
        "help": "copies of each line",
    }
    assert options["mode"]["type"] == "enum"
    assert options["mode"]["choices"] == ["upper", "lower"]
    assert options["mode"]["default"] == "upper"


async def test_fake_module_runs_with_coerced_options(fake: Any, upload_dir: Path) -> None:
    status, body = await run(
        fake,
        "/module/f/echo",
        {"files": ["in/a.txt"], "options": {"count": "2", "mode": "lower", "loud": "true"}},
    )
    assert status == 200, body
    (out,) = body["files"]
    assert out["filename"] == f"outputs/{body['run']}/a.echo.txt"
    assert out["tags"] == {"lines": 4}
    assert body["output_dir"] == f"outputs/{body['run']}"
    assert body["logs"] == ["echoed in/a.txt"]
    assert (upload_dir / out["filename"]).read_text() == "one!\none!\ntwo!\ntwo!\n"
    assert out["size"] == len("one!\none!\ntwo!\ntwo!\n")


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/module/nope/echo", {"files": ["in/a.txt"]}, 404, "Module not loaded"),
        (
            "/module/f/nope",
            {"files": ["in/a.txt"]},
            404,
            "Function 'nope' not found (available: echo, sleep, reject, crash, vandal)",
        ),
        ("/module/f/echo", [], 400, "Request body must be a JSON object, got list"),
        ("/module/f/echo", {"options": {"count": 1}}, 400, "'files' must be a non-empty list"),
        ("/module/f/echo", {"files": []}, 400, "'files' must be a non-empty list"),
        ("/module/f/echo", {"files": [3]}, 400, "'files' must hold paths (strings), got 3"),
        ("/module/f/echo", {"files": ["in/a.txt"], "option": {}}, 400, "Unknown key 'option'"),
        (
            "/module/f/echo",
            {"files": ["in/a.txt"], "options": []},
            400,
            "'options' must be a JSON object",
        ),
        (
            "/module/f/echo",
            {"files": ["in/a.txt"], "options": {}},
            400,
            "fake.echo missing 'count' from module.f",
        ),
        (
            "/module/f/echo",
            {"files": ["in/a.txt"], "options": {"count": 1, "colour": "red"}},
            400,
            "fake.echo has no option 'colour' in module.f",
        ),
        (
            "/module/f/echo",
            {"files": ["in/a.txt"], "options": {"count": "many"}},
            400,
            "fake.echo 'count' of module.f must be int, got \"many\"",
        ),
        (
            "/module/f/echo",
            {"files": ["in/a.txt"], "options": {"count": 1, "loud": 3}},
            400,
            "fake.echo 'loud' of module.f must be bool, got 3",
        ),
        (
            "/module/f/echo",
            {"files": ["in/a.txt"], "options": {"count": 1, "mode": "title"}},
            400,
            "fake.echo 'mode' of module.f must be one of 'upper', 'lower', got 'title'",
        ),
        (
            "/module/f/echo",
            {"files": ["in/missing.txt"], "options": {"count": 1}},
            400,
            "File 'in/missing.txt' not found in the upload directory",
        ),
        (
            "/module/f/echo",
            {"files": ["in/b.csv"], "options": {"count": 1}},
            400,
            "fake.echo takes .txt files, got 'in/b.csv'",
        ),
        (
            "/module/f/echo",
            {"files": ["in/a.txt", "in/a.txt"], "options": {"count": 1}},
            400,
            "'files' names a file twice",
        ),
        (
            "/module/f/echo",
            {"files": ["../outside.txt"], "options": {"count": 1}},
            400,
            "Attempted path traversal: '../outside.txt' is not inside the upload directory",
        ),
        (
            "/module/f/echo",
            {"files": ["/etc/hostname"], "options": {"count": 1}},
            400,
            "Attempted path traversal",
        ),
    ],
)
async def test_validation_errors_name_the_problem(
    fake: Any, upload_dir: Path, path: str, body: Any, status: int, message: str
) -> None:
    (upload_dir / "in" / "b.csv").write_text("x\n1\n")
    (upload_dir.parent / "outside.txt").write_text("secret\n")
    got_status, got = await run(fake, path, body)
    assert got_status == status
    assert got["error"].startswith(message), got["error"]
    # Nothing ran, so nothing was written.
    assert not (upload_dir / "outputs").exists() or not any((upload_dir / "outputs").iterdir())


async def test_invalid_json_is_400(fake: Any) -> None:
    response = await fake.post("/module/f/echo", data=b"{nope")
    assert response.status == 400
    assert (await response.json())["error"].startswith("Invalid JSON body")


async def test_without_upload_dir_is_501(make_client: MakeClient) -> None:
    client = await make_client(registry=fakes.fake_registry(), upload_dir=None)
    await open_module(client, "fake", "f")
    status, body = await run(client, "/module/f/echo", {"files": ["a.txt"]})
    assert status == 501
    assert "-upload-dir" in body["error"]


async def test_function_errors_bad_data_400_bug_500(
    fake: Any, upload_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    status, body = await run(fake, "/module/f/reject", {"files": ["in/a.txt"]})
    assert (status, body) == (400, {"error": "line 3 is not a number"})
    status, body = await run(fake, "/module/f/crash", {"files": ["in/a.txt"]})
    assert (status, body) == (500, {"error": "Internal Server Error"})
    assert "secret module internals" in caplog.text
    # Failed runs leave no output folder behind.
    assert list((upload_dir / "outputs").iterdir()) == []


async def test_function_that_writes_its_input_fails(fake: Any, upload_dir: Path) -> None:
    status, body = await run(fake, "/module/f/vandal", {"files": ["in/a.txt"]})
    assert (status, body) == (500, {"error": "Internal Server Error"})


async def test_outputs_file_in_the_way_is_409(fake: Any, upload_dir: Path) -> None:
    (upload_dir / "outputs").write_text("not a directory")
    status, body = await run(
        fake, "/module/f/echo", {"files": ["in/a.txt"], "options": {"count": 1}}
    )
    assert status == 409
    assert body["error"].startswith("'outputs' in the upload directory is a file")


async def test_runs_after_shutdown_began_are_503(fake: Any) -> None:
    fake.app[WORKERS].stop()
    status, body = await run(
        fake, "/module/f/echo", {"files": ["in/a.txt"], "options": {"count": 1}}
    )
    assert (status, body) == (503, {"error": "Server is shutting down"})


def test_a_module_with_a_broken_declaration_is_refused() -> None:
    class Broken(Module[Any]):
        FUNCTIONS = (Function("f", "no options class", target=fakes.echo, options=dict),)

    with pytest.raises(TypeError, match="invalid declaration"):
        Registry.empty().register("module", "broken", Broken)


async def test_time_limit_stops_the_worker_and_server_keeps_answering(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client(registry=fakes.fake_registry(), module_timeout=1.5)
    await open_module(client, "fake", "f")
    (upload_dir / "a.txt").write_text("x\n")
    running = asyncio.ensure_future(run(client, "/module/f/sleep", {"files": ["a.txt"]}))
    pidfile = upload_dir / "sleeper.pid"
    while not pidfile.exists() or not pidfile.read_text():
        assert not running.done(), running.result()
        await asyncio.sleep(0.05)
    health = await client.get("/health")
    assert health.status == 200
    assert not running.done()
    status, body = await running
    assert status == 504
    assert body["error"] == (
        "fake.sleep exceeded the time limit of 1.5 s (-module-timeout) and was stopped"
    )
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)
    assert list((upload_dir / "outputs").iterdir()) == []
    # The next run gets a fresh worker.
    (upload_dir / "b.txt").write_text("y\n")
    status, body = await run(
        client, "/module/f/echo", {"files": ["b.txt"], "options": {"count": 1}}
    )
    assert status == 200, body


# --- the dataset module ---------------------------------------------------------------------


async def test_split_100_rows(dataset: Any, upload_dir: Path) -> None:
    rows = [[i, i % 3, "abc"[i % 3]] for i in range(100)]
    write_csv(upload_dir / "in" / "a.csv", ["id", "x", "label"], rows)
    status, body = await run(
        dataset, "/module/ds/split", {"files": ["in/a.csv"], "options": {"ratio": 0.8}}
    )
    assert status == 200, body
    files = {Path(f["filename"]).name: f for f in body["files"]}
    assert files["a.train.csv"]["tags"] == {"rows": 80, "part": "train"}
    assert files["a.test.csv"]["tags"] == {"rows": 20, "part": "test"}
    assert all(f["filename"].startswith(f"outputs/{body['run']}/") for f in body["files"])
    train = read_csv(upload_dir / files["a.train.csv"]["filename"])
    test = read_csv(upload_dir / files["a.test.csv"]["filename"])
    assert (len(train), len(test)) == (80, 20)
    ids = sorted(int(r["id"]) for r in train + test)
    assert ids == list(range(100))
    # Shuffled: the test rows are not simply the last 20.
    assert {int(r["id"]) for r in test} != set(range(80, 100))

    # The same seed gives the same split; another seed a different one.
    again = await run(dataset, "/module/ds/split", {"files": ["in/a.csv"]})
    other = await run(dataset, "/module/ds/split", {"files": ["in/a.csv"], "options": {"seed": 7}})

    def test_ids(result: tuple[int, Any]) -> set[str]:
        test_file = next(f for f in result[1]["files"] if f["tags"]["part"] == "test")
        return {r["id"] for r in read_csv(upload_dir / test_file["filename"])}

    assert test_ids(again) == {r["id"] for r in test}
    assert test_ids(other) != test_ids(again)


async def test_outputs_are_listed_and_downloadable(dataset: Any, upload_dir: Path) -> None:
    write_csv(upload_dir / "h.csv", ["x"], [[i] for i in range(4)])
    _, body = await run(
        dataset, "/module/ds/split", {"files": ["h.csv"], "options": {"ratio": 0.5}}
    )
    listed = {f["filename"]: f["size"] for f in await (await dataset.get("/service/files")).json()}
    for output in body["files"]:
        assert listed[output["filename"]] == output["size"]
        response = await dataset.get(f"/service/files/{output['filename']}")
        assert response.status == 200
        assert (await response.read()).decode().splitlines()[0] == "x"


async def test_split_stratified_keeps_class_shares(dataset: Any, upload_dir: Path) -> None:
    rows = [[i, "yes" if i < 70 else "no"] for i in range(100)]
    write_csv(upload_dir / "b.csv", ["id", "label"], rows)
    status, body = await run(
        dataset,
        "/module/ds/split",
        {"files": ["b.csv"], "options": {"ratio": 0.75, "stratify": "label", "seed": 3}},
    )
    assert status == 200, body
    parts = {f["tags"]["part"]: read_csv(upload_dir / f["filename"]) for f in body["files"]}
    train_labels = [r["label"] for r in parts["train"]]
    test_labels = [r["label"] for r in parts["test"]]
    assert (len(train_labels), len(test_labels)) == (75, 25)
    # 70 * 0.75 = 52.5 and 30 * 0.75 = 22.5: one class gets the extra row.
    assert {train_labels.count("yes"), train_labels.count("no")} in ({53, 22}, {52, 23})
    assert test_labels.count("yes") + test_labels.count("no") == 25

    status, body = await run(
        dataset, "/module/ds/split", {"files": ["b.csv"], "options": {"stratify": "colour"}}
    )
    assert status == 400
    assert body["error"] == "column 'colour' not in b.csv (columns: id, label)"
    status, body = await run(
        dataset, "/module/ds/split", {"files": ["b.csv"], "options": {"ratio": 1.5}}
    )
    assert status == 400
    assert "ratio must be between 0 and 1" in body["error"]


async def test_describe_numbers_are_right(dataset: Any, upload_dir: Path) -> None:
    generator = random.Random(5)
    heights = [round(generator.uniform(150, 200), 2) for _ in range(57)]
    ages = [generator.randint(18, 90) for _ in range(57)]
    names = [generator.choice(["ann", "bob", "cy", "dee"]) for _ in range(57)]
    rows = [[h, a, n] for h, a, n in zip(heights, ages, names, strict=True)]
    rows[10][1] = ""  # one missing age
    write_csv(upload_dir / "people.csv", ["height", "age", "name"], rows)
    status, body = await run(dataset, "/module/ds/describe", {"files": ["people.csv"]})
    assert status == 200, body
    (out,) = body["files"]
    assert out["filename"].endswith("/people.describe.json")
    assert out["tags"] == {"rows": 57, "columns": 3}
    summary = json.loads((upload_dir / out["filename"]).read_text())
    assert summary["rows"] == 57

    def expected(values: list[float]) -> dict[str, float]:
        n = len(values)
        mean = sum(values) / n
        variance = sum((v - mean) ** 2 for v in values) / (n - 1)
        return {"mean": mean, "std": math.sqrt(variance), "min": min(values), "max": max(values)}

    present_ages = [a for i, a in enumerate(ages) if i != 10]
    for name, values in (("height", heights), ("age", present_ages)):
        stats = summary["columns"][name]
        assert stats["count"] == len(values)
        assert stats["distinct"] == len(set(values))
        for key, value in expected([float(v) for v in values]).items():
            assert stats[key] == pytest.approx(value, rel=1e-12), (name, key)
    assert summary["columns"]["age"]["missing"] == 1
    assert summary["columns"]["name"] == {
        "count": 57,
        "missing": 0,
        "distinct": len(set(names)),
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
    }


async def test_describe_an_output_of_an_earlier_run(dataset: Any, upload_dir: Path) -> None:
    write_csv(upload_dir / "c.csv", ["x"], [[i] for i in range(10)])
    _, split = await run(
        dataset, "/module/ds/split", {"files": ["c.csv"], "options": {"ratio": 0.5}}
    )
    names = [f["filename"] for f in split["files"]]
    status, body = await run(dataset, "/module/ds/describe", {"files": names})
    assert status == 200, body
    assert [f["tags"]["rows"] for f in body["files"]] == [5, 5]
    assert body["run"] != split["run"]


async def test_convert_csv_to_json_and_back(dataset: Any, upload_dir: Path) -> None:
    write_csv(upload_dir / "d.csv", ["Years", "Salary", "Name"], [[1, 20.5, "a"], [2, 30, "b"]])
    status, body = await run(dataset, "/module/ds/convert", {"files": ["d.csv"]})
    assert status == 200, body
    (out,) = body["files"]
    assert out["tags"] == {"rows": 2, "format": "json"}
    records = json.loads((upload_dir / out["filename"]).read_text())
    assert records == [
        {"Years": 1, "Salary": 20.5, "Name": "a"},
        {"Years": 2, "Salary": 30, "Name": "b"},
    ]
    (upload_dir / "e.json").write_text(json.dumps([*records, {"Years": 3, "Extra": True}]))
    status, body = await run(dataset, "/module/ds/convert", {"files": ["e.json"]})
    assert status == 200, body
    back = read_csv(upload_dir / body["files"][0]["filename"])
    assert back == [
        {"Years": "1", "Salary": "20.5", "Name": "a", "Extra": ""},
        {"Years": "2", "Salary": "30", "Name": "b", "Extra": ""},
        {"Years": "3", "Salary": "", "Name": "", "Extra": "true"},
    ]
    (upload_dir / "f.json").write_text('{"not": "a list"}')
    status, body = await run(dataset, "/module/ds/convert", {"files": ["f.json"]})
    assert (status, body) == (
        400,
        {"error": "f.json must hold a JSON list of objects, one per row"},
    )


async def test_malformed_csv_is_400(dataset: Any, upload_dir: Path) -> None:
    (upload_dir / "g.csv").write_text("a,b\n1,2\n3\n")
    status, body = await run(dataset, "/module/ds/describe", {"files": ["g.csv"]})
    assert (status, body) == (400, {"error": "g.csv line 3 has 1 fields, the header has 2"})


# --- the real CLI -----------------------------------------------------------------------------


def test_cli_module_timeout_reaches_runs(tmp_path: Path) -> None:
    upload_dir = tmp_path / "data"
    upload_dir.mkdir()
    write_csv(upload_dir / "a.csv", ["x"], [[1], [2]])
    # No process starts, let alone finishes, within 0.1 ms: every run times out.
    with live_server(
        *("-insecure", "-upload-dir", str(upload_dir), "-module-timeout", "0.0001"), cwd=tmp_path
    ) as server:
        for path in ("/configure/module/dataset/ds", "/context/module/ds/ds"):
            assert requests.post(server.url + path, json={}, timeout=10).status_code == 200
        response = requests.post(
            f"{server.url}/module/ds/describe", json={"files": ["a.csv"]}, timeout=30
        )
        assert (response.status_code, response.json()) == (
            504,
            {
                "error": "dataset.describe exceeded the time limit of 0.0001 s"
                " (-module-timeout) and was stopped"
            },
        )
        assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
    assert server.process.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-module-timeout", "0"), "-module-timeout must be a positive number of seconds"),
        (("-module-workers", "0"), "-module-workers must be at least 1"),
    ],
)
def test_cli_refuses_bad_module_settings(
    tmp_path: Path, args: tuple[str, str], message: str
) -> None:
    result = run_cli("server", "-insecure", "-port", "0", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


async def test_preloaded_module_runs_without_configuring(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client(preloads=(Preload("module", "ds", "dataset", {}),))
    write_csv(upload_dir / "a.csv", ["x"], [[1], [2]])
    status, body = await run(client, "/module/ds/describe", {"files": ["a.csv"]})
    assert status == 200, body
    assert body["files"][0]["tags"] == {"rows": 2, "columns": 1}
