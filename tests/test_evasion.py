"""The evasion module against models trained through the API, checked by predicting again."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from tests.models_helpers import LINE_MODEL, add_model, add_source, expect, line_records, predict
from tests.test_modules import open_module, write_csv


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


async def train(client: Any, plugin: str, config: dict[str, Any], records: dict[str, Any]) -> None:
    await add_source(client, "train", records)
    await add_model(client, plugin, "m", config)
    await expect(await client.post("/model/m/train", json=["train"]))


async def evade(client: Any, files: list[str], options: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = await expect(
        await client.post("/module/ev/evade", json={"files": files, "options": options})
    )
    return body


async def test_listing_describes_evade(client: Any) -> None:
    body = await (await client.get("/list/modules")).json()
    evade_fn = body["evasion"]["functions"]["evade"]
    options = {o["name"]: o for o in evade_fn["options"]}
    assert options["model"]["required"] is True
    assert options["goal"]["type"] == "enum"
    assert options["goal"]["choices"] == ["flip", "increase", "decrease"]
    assert options["epsilon"]["default"] == 0.1
    assert evade_fn["modifies_input_files"] is True
    assert [t["name"] for t in evade_fn["tags"]] == ["rows", "evaded", "success_rate"]


async def test_evasion_shifts_a_regressor_trained_through_the_api(
    client: Any, upload_dir: Path
) -> None:
    await train(client, "slr", LINE_MODEL, line_records(range(20)))
    await open_module(client, "evasion", "ev")
    write_csv(upload_dir / "in" / "people.csv", ["Years", "Salary"], [[x, 0] for x in range(20)])

    body = await evade(
        client,
        ["in/people.csv"],
        {"model": "m", "goal": "increase", "epsilon": 0.5, "scale": "absolute", "min_shift": 4},
    )
    files = {Path(f["filename"]).name: f for f in body["files"]}
    # y = 10x + 10: +0.5 year is +5 salary, beyond min_shift 4, for every row but the last,
    # which clipping keeps inside the observed range (max 19).
    tags = {"rows": 20, "evaded": 19, "success_rate": 0.95}
    assert files["people.adversarial.csv"]["tags"] == tags
    assert files["people.evasion.json"]["tags"] == tags
    assert body["logs"] == [
        "in/people.csv: 19 of 20 rows evaded (95.0%) with epsilon 0.5 (absolute) on 2 features"
    ]
    adversarial = read_rows(upload_dir / files["people.adversarial.csv"]["filename"])
    assert [float(r["Years"]) for r in adversarial] == [x + 0.5 for x in range(19)] + [19.0]
    # The model does not read Salary, so the attack leaves it alone.
    assert {r["Salary"] for r in adversarial} == {"0"}

    report = json.loads((upload_dir / files["people.evasion.json"]["filename"]).read_text())
    assert report["mean_shift"] == 5 * 19 / 20
    assert report["queries"] == 20 * (1 + 2 * 2) + 20
    first = report["results"][0]
    assert first["original"]["value"] == 10.0
    assert first["adversarial"]["value"] == 15.0

    # Honest accounting: demand more than the budget can give and nothing evades.
    body = await evade(
        client,
        ["in/people.csv"],
        {"model": "m", "goal": "increase", "epsilon": 0.5, "scale": "absolute", "min_shift": 6},
    )
    assert body["files"][0]["tags"]["success_rate"] == 0.0


async def test_evasion_flips_a_classifier_and_its_claims_hold(
    client: Any, upload_dir: Path
) -> None:
    generator = random.Random(1)
    points = [(generator.uniform(0, 10), generator.uniform(0, 10)) for _ in range(120)]
    records = {
        str(i): {"features": {"a": a, "b": b, "label": "hi" if a + b > 10 else "lo"}}
        for i, (a, b) in enumerate(points)
    }
    config = {"features": ["a:float:1", "b:float:1"], "predict": "label:str:1", "max_iter": 500}
    await train(client, "scikitlor", config, records)
    await open_module(client, "evasion", "ev")
    write_csv(upload_dir / "points.csv", ["a", "b"], [[a, b] for a, b in points[:40]])

    body = await evade(
        client,
        ["points.csv"],
        {"model": "m", "goal": "flip", "epsilon": 0.3, "features": ["a", "b"]},
    )
    files = {Path(f["filename"]).name: f for f in body["files"]}
    report = json.loads((upload_dir / files["points.evasion.json"]["filename"]).read_text())
    rate = report["success_rate"]
    # Rows near the boundary flip, rows far from it cannot within 0.3 standard deviations.
    assert 0 < rate < 1
    assert files["points.adversarial.csv"]["tags"]["success_rate"] == rate

    # Check every claim with the model itself, through the predict route.
    adversarial = read_rows(upload_dir / files["points.adversarial.csv"]["filename"])
    originals = {str(i): {"features": {"a": a, "b": b}} for i, (a, b) in enumerate(points[:40])}
    moved = {
        str(i): {"features": {"a": float(r["a"]), "b": float(r["b"])}}
        for i, r in enumerate(adversarial)
    }
    before = await predict(client, "m", originals)
    after = await predict(client, "m", moved)
    flipped = [
        before[k]["prediction"]["label"]["value"] != after[k]["prediction"]["label"]["value"]
        for k in originals
    ]
    assert [r["evaded"] for r in report["results"]] == flipped
    assert rate == sum(flipped) / 40
    # Every change stays within the budget.
    for column, budget in report["budgets"].items():
        for i, row in enumerate(adversarial):
            assert abs(float(row[column]) - points[i]["ab".index(column)]) <= budget + 1e-9


async def test_evasion_errors(client: Any, upload_dir: Path) -> None:
    await open_module(client, "evasion", "ev")
    write_csv(upload_dir / "x.csv", ["Years", "name"], [[1, "a"], [2, "b"]])
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"goal": "flip"}, 400, "evasion.evade missing 'model' from module.ev"),
        ({"model": "m"}, 400, "evasion.evade missing 'goal' from module.ev"),
        (
            {"model": "m", "goal": "up"},
            400,
            "evasion.evade 'goal' of module.ev must be one of 'flip', 'increase', 'decrease',"
            " got 'up'",
        ),
        ({"model": "nope", "goal": "flip"}, 404, "Model not loaded"),
        (
            {"model": "m", "goal": "flip", "features": ["name"]},
            400,
            "column 'name' of x.csv is not numeric",
        ),
        ({"model": "m", "goal": "flip", "epsilon": 0}, 400, "evasion.evade config module.ev"),
    ]
    await add_model(client, "slr", "m", LINE_MODEL)
    for options, status, message in cases:
        response = await client.post(
            "/module/ev/evade", json={"files": ["x.csv"], "options": options}
        )
        body = await response.json()
        assert response.status == status, (options, body)
        assert body["error"].startswith(message), body["error"]
    response = await client.post(
        "/module/ev/evade", json={"files": ["x.csv"], "options": {"model": "m", "goal": "flip"}}
    )
    assert (response.status, await response.json()) == (400, {"error": "Model not trained"})
