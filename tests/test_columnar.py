"""The columnar data path over HTTP: the built-in models train on csv and parquet sources from
column batches read by the worker, and everything a client sees is what the record path gives
(the same model, the same errors, the same record view)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest

from service.plugins.registry import Registry
from service.sdk import Model, ModelContext, Record, SourceContext, field
from service.sdk.columns import KEY
from tests.conftest import MakeClient
from tests.models_helpers import add_model, add_scorer, add_source, expect, predict

MODELS = {
    "slr": {"features": ["Years:int:1"], "predict": "Salary:float:1"},
    "scikitlr": {"features": ["Years:int:1", "Bonus:float:1"], "predict": "Salary:float:1"},
    "scikitrfr": {
        "features": ["Years:int:1", "Bonus:float:1"],
        "predict": "Salary:float:1",
        "n_estimators": 5,
        "random_state": 1,
    },
    "scikitlor": {"features": ["Years:int:1", "Bonus:float:1"], "predict": "Level:str:1"},
    "scikitrf": {
        "features": ["Years:int:1", "Bonus:float:1"],
        "predict": "Level:str:1",
        "n_estimators": 5,
        "random_state": 1,
    },
    "scikitknn": {"features": ["Years:int:1", "Bonus:float:1"], "predict": "Level:str:1"},
}
ROWS = [
    (i, (i * 7) % 5 + 0.5, 1000 * i + 300 * ((i * 3) % 4), "a" if i < 10 else "b")
    for i in range(20)
]


def write_csv(path: Path, rows: list[tuple[Any, ...]] = ROWS, extra: str = "") -> None:
    lines = ["key,Years,Bonus,Salary,Level"]
    lines += [f"k{i},{y},{b},{s},{lv}" for i, (y, b, s, lv) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")


def memory_records(rows: list[tuple[Any, ...]] = ROWS) -> dict[str, Any]:
    return {
        f"k{i}": {"features": {"key": f"k{i}", "Years": y, "Bonus": b, "Salary": s, "Level": lv}}
        for i, (y, b, s, lv) in enumerate(rows)
    }


async def configure(client: Any, plugin: str, label: str, config: dict[str, Any]) -> None:
    await expect(await client.post(f"/configure/source/{plugin}/{label}", json=config))
    await expect(await client.get(f"/context/source/{label}/{label}"))


async def all_records(client: Any, label: str) -> dict[str, Any]:
    body = await expect(await client.get(f"/source/{label}/records/1000"))
    records: dict[str, Any] = body["records"]
    return records


QUERY = {
    "q1": {"features": {"Years": 3, "Bonus": 1.5}},
    "q2": {"features": {"Years": 17, "Bonus": 4.5}},
}


@pytest.mark.parametrize("plugin", sorted(MODELS))
async def test_models_train_on_csv_columns_as_on_the_same_records(
    make_client: MakeClient, upload_dir: Path, plugin: str
) -> None:
    client = await make_client()
    write_csv(upload_dir / "d.csv")
    await configure(client, "csv", "file", {"filename": "d.csv"})
    await add_source(client, "mem", memory_records())
    # The record view is what it always was: the key column is a feature too.
    assert await all_records(client, "file") == await all_records(client, "mem")
    for label, source in (("on_file", "file"), ("on_mem", "mem")):
        await add_model(client, plugin, label, MODELS[plugin])
        await expect(await client.post(f"/model/{label}/train", json=[source]))
    assert await predict(client, "on_file", QUERY) == await predict(client, "on_mem", QUERY)
    file_score = await expect(await client.post("/model/on_file/accuracy", json=["file"]))
    mem_score = await expect(await client.post("/model/on_mem/accuracy", json=["mem"]))
    assert file_score == pytest.approx(mem_score)


async def test_parquet_source_has_the_record_view_and_trains(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client()
    years, bonus, salary, level = (list(column) for column in zip(*ROWS, strict=True))
    keys = [f"k{i}" for i in range(len(ROWS))]
    table = pa.table(
        {"key": keys, "Years": years, "Bonus": bonus, "Salary": salary, "Level": level}
    )
    pq.write_table(table, upload_dir / "d.parquet", row_group_size=7)
    await configure(client, "parquet", "pq", {"filename": "d.parquet"})
    await add_source(client, "mem", memory_records())
    assert await all_records(client, "pq") == await all_records(client, "mem")
    one = await expect(await client.get("/source/pq/record/k3"))
    assert one["features"]["Years"] == 3
    for label, source in (("on_pq", "pq"), ("on_mem", "mem")):
        await add_model(client, "scikitlr", label, MODELS["scikitlr"])
        await expect(await client.post(f"/model/{label}/train", json=[source]))
    assert await predict(client, "on_pq", QUERY) == await predict(client, "on_mem", QUERY)


async def test_columns_the_record_path_would_refuse_give_its_error(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client()
    rows = [*ROWS[:5], (5, "nan", 7, "a"), *ROWS[6:]]
    write_csv(upload_dir / "d.csv", rows)
    await configure(client, "csv", "file", {"filename": "d.csv"})
    await add_model(
        client, "slr", "m", {"features": ["Bonus:float:1"], "predict": "Salary:float:1"}
    )
    body = await expect(await client.post("/model/m/train", json=["file"]), 400)
    assert body == {"error": "Record 'k5' feature 'Bonus' must be a number, got 'nan'"}


async def test_updates_and_other_labels_are_what_the_model_learns(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client()
    # Rows of another label and repeated keys are in the file; the records are what counts.
    rows = [f"k{i},{i},{10 * i + 10},unlabeled" for i in range(6)]
    rows += ["k9,100,0,other", "k0,0,10,unlabeled"]
    (upload_dir / "d.csv").write_text("key,Years,Salary,label\n" + "\n".join(rows) + "\n")
    await configure(client, "csv", "file", {"filename": "d.csv"})
    mem = {
        f"k{i}": {"features": {"key": f"k{i}", "Years": i, "Salary": 10 * i + 10}} for i in range(6)
    }
    await add_source(client, "mem", mem)
    assert await all_records(client, "file") == await all_records(client, "mem")
    config = {"features": ["Years:int:1"], "predict": "Salary:float:1"}
    for label, source in (("on_file", "file"), ("on_mem", "mem")):
        await add_model(client, "slr", label, config)
        await expect(await client.post(f"/model/{label}/train", json=[source]))
    query = {"q": {"features": {"Years": 50}}}
    assert await predict(client, "on_file", query) == await predict(client, "on_mem", query)
    # An update lives in the spool only: the model learns it (from the records).
    update = {"features": {"key": "k5", "Years": 5, "Salary": 999}}
    for source in ("file", "mem"):
        await expect(await client.post(f"/source/{source}/update/k5", json=update))
    for label, source in (("on_file", "file"), ("on_mem", "mem")):
        await expect(await client.post(f"/model/{label}/train", json=[source]))
    assert await predict(client, "on_file", query) == await predict(client, "on_mem", query)


@pytest.mark.parametrize(
    ("scorer", "plugin"),
    [
        ("mse", "scikitlr"),
        ("mae", "slr"),
        ("r2", "scikitrfr"),
        ("clf", "scikitlor"),
        ("clf", "scikitrf"),
    ],
)
async def test_scorers_over_csv_columns_score_as_over_records(
    make_client: MakeClient, upload_dir: Path, scorer: str, plugin: str
) -> None:
    client = await make_client()
    write_csv(upload_dir / "d.csv")
    await configure(client, "csv", "file", {"filename": "d.csv"})
    await add_source(client, "mem", memory_records())
    await add_model(client, plugin, "m", MODELS[plugin])
    await expect(await client.post("/model/m/train", json=["mem"]))
    await add_scorer(client, scorer, scorer)
    on_file = await expect(await client.post(f"/scorer/{scorer}/m/score", json=["file"]))
    on_mem = await expect(await client.post(f"/scorer/{scorer}/m/score", json=["mem"]))
    assert on_file["accuracy"] == pytest.approx(on_mem["accuracy"], rel=1e-12)
    # The model's own scorer (r2 or clf) over the file's columns too.
    natural = await expect(await client.post("/model/m/accuracy", json=["file"]))
    assert natural == pytest.approx(
        await expect(await client.post("/model/m/accuracy", json=["mem"]))
    )


TRICKY = (
    "\ufeffkey,Years , text,label\r\n"
    'a,007,"quoted, with comma",unlabeled\r\n'
    'b,-0,"line\nbreak and ""quotes""",unlabeled\r\n'
    "c,1e3,back\\slash \u00e9\u4e2d,other\r\n"
    "d,1.50,,unlabeled\r\n"
    "e,9223372036854775807,\x01ctl,unlabeled\r\n"
    "\r\n"
    "f,-,nan,unlabeled\r\n"
)


def oracle(text: str, *, allowempty: bool) -> dict[str, Any]:
    """The record view by its documented rules, with Python's csv module (docs/plugins.md)."""
    import csv
    import io

    from service.plugins.sources.csvfile import typed

    rows = [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")) if row]
    names = [name.strip() for name in rows[0]]
    out = {}
    for row in rows[1:]:
        if row[3] != "unlabeled":
            continue
        features = {
            name: typed(value)
            for name, value in zip(names[:3], row[:3], strict=True)
            if value or allowempty
        }
        out[row[0]] = {"key": row[0], "features": features, "extra": {}}
    return out


@pytest.mark.parametrize("allowempty", [False, True])
async def test_the_arrow_parse_gives_the_record_view_of_the_rules(
    client: Any, upload_dir: Path, allowempty: bool
) -> None:
    (upload_dir / "t.csv").write_bytes(TRICKY.encode())
    await configure(client, "csv", "t", {"filename": "t.csv", "allowempty": allowempty})
    assert await all_records(client, "t") == oracle(TRICKY, allowempty=allowempty)
    one = await expect(await client.get("/source/t/record/b"))
    assert one["features"]["text"] == 'line\nbreak and "quotes"'


@pytest.mark.parametrize("plugin", ["slr", "scikitlor"])
async def test_predicting_a_csv_source_to_a_file_writes_the_records_the_route_answers(
    make_client: MakeClient, upload_dir: Path, plugin: str
) -> None:
    from tests.tasks_helpers import submit, wait_task

    client = await make_client()
    write_csv(upload_dir / "d.csv")
    await configure(client, "csv", "file", {"filename": "d.csv"})
    await add_model(client, plugin, "m", MODELS[plugin])
    await expect(await client.post("/model/m/train", json=["file"]))
    # A record updated in the spool is predicted as it now is.
    update = {"features": {"key": "k2", "Years": 30, "Bonus": 2.5, "Salary": 1, "Level": "b"}}
    await expect(await client.post("/source/file/update/k2", json=update))
    if plugin == "slr":  # a record with extra values: the chunk is decoded, not scanned for numbers
        extra = {**update, "extra": {"Years": -1, "note": "x"}}
        await expect(await client.post("/source/file/update/k3", json=extra))
    answered = await expect(await client.post("/model/m/predict/0?source=file", json={}))
    task = await wait_task(
        client, (await submit(client, "POST", "/model/m/predict/0?source=file", json={}))["task_id"]
    )
    assert task["status"] == "SUCCESS", task
    written = [
        orjson.loads(line)
        for line in (upload_dir / task["result"]["file"]).read_bytes().splitlines()
    ]
    assert task["result"]["records"] == len(written) == len(ROWS)

    def timeless(record: dict[str, Any]) -> dict[str, Any]:
        assert record.pop("last_updated")
        return record

    assert [timeless(r) for r in written] == [timeless(r) for r in answered["records"].values()]


@dataclasses.dataclass(frozen=True)
class MeanConfig:
    feature: str = field("the feature whose mean is the prediction")


class MeanModel(Model[MeanConfig]):
    """A plugin model written against the SDK's column batches: it trains from batches of any
    source (built from records by default) and predicts the feature's mean."""

    CONFIG = MeanConfig

    def __init__(self, config: MeanConfig) -> None:
        super().__init__(config)
        self.mean: float | None = None
        self.keys: list[str] = []

    def context(self) -> MeanContext:
        return MeanContext(self)


class MeanContext(ModelContext):
    def __init__(self, parent: MeanModel) -> None:
        self.parent = parent

    async def train(self, records: AsyncIterator[Record]) -> None:
        raise AssertionError("this model reads batches only")

    async def train_from(self, sources: Sequence[SourceContext]) -> None:
        name = self.parent.config.feature
        total, keys = 0.0, []
        for source in sources:
            async for batch in source.batches([name]):
                assert batch.schema.names == [KEY, name]
                total += pa.compute.sum(batch.column(name)).as_py()
                keys += batch.column(KEY).to_pylist()
        self.parent.mean, self.parent.keys = total / len(keys), keys

    async def predict(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        name = self.parent.config.feature
        async for record in records:
            value = {"value": self.parent.mean, "confidence": float(len(self.parent.keys))}
            yield Record(record.key, record.features, prediction={name: value})


async def test_a_plugin_model_trains_from_batches_of_any_source(
    make_client: MakeClient, upload_dir: Path
) -> None:
    registry = Registry.from_entry_points()
    registry.register("model", "mean", MeanModel)
    client = await make_client(registry=registry)
    write_csv(upload_dir / "d.csv")
    await configure(client, "csv", "file", {"filename": "d.csv"})
    await add_source(client, "mem", memory_records())
    expected = sum(salary for _, _, salary, _ in ROWS) / len(ROWS)
    for source in ("file", "mem"):
        await add_model(client, "mean", source, {"feature": "Salary"})
        await expect(await client.post(f"/model/{source}/train", json=[source]))
        found = await predict(client, source, {"q": {"features": {}}})
        assert found["q"]["prediction"]["Salary"] == {
            "value": pytest.approx(expected),
            "confidence": len(ROWS),
        }


async def test_a_csv_file_replaced_after_configure_is_not_what_the_model_learns(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client()
    lines = [f"{x},{10 * x + 10}" for x in range(10)]
    (upload_dir / "d.csv").write_text("Years,Salary\n" + "\n".join(lines) + "\n")
    await configure(client, "csv", "file", {"filename": "d.csv"})
    # The file changes on disk; the source still holds the records it read, and the model
    # learns those (the worker sees the file is another version and the records are read).
    lines = [f"{x},{-5 * x}" for x in range(10)]
    (upload_dir / "d.csv").write_text("Years,Salary\n" + "\n".join(lines) + "\n")
    await add_model(client, "slr", "m", {"features": ["Years:int:1"], "predict": "Salary:float:1"})
    await expect(await client.post("/model/m/train", json=["file"]))
    found = await predict(client, "m", {"q": {"features": {"Years": 100}}})
    assert found["q"]["prediction"]["Salary"]["value"] == pytest.approx(1010)
