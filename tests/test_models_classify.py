"""Classifiers learn scikit-learn's bundled iris data (no download) and score on held-out data."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sklearn.datasets import load_iris

from tests.models_helpers import add_model, add_scorer, add_source, expect, predict

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_split() -> tuple[dict[str, Any], dict[str, Any]]:
    iris = load_iris()
    records = {
        str(i): {
            "features": {
                **dict(zip(FEATURES, map(float, row), strict=True)),
                "species": str(iris.target_names[target]),
            }
        }
        for i, (row, target) in enumerate(zip(iris.data, iris.target, strict=True))
    }
    keys = sorted(records)
    random.Random(4).shuffle(keys)
    held_out = set(keys[:30])
    train = {k: v for k, v in records.items() if k not in held_out}
    test = {k: v for k, v in records.items() if k in held_out}
    return train, test


@pytest.mark.parametrize(
    ("plugin", "params"),
    [
        ("scikitrf", {"random_state": 0, "n_estimators": 30}),
        ("scikitlor", {"max_iter": 500}),
        ("scikitknn", {"n_neighbors": 3}),
    ],
)
async def test_classifier_scores_iris_held_out(
    client: Any, plugin: str, params: dict[str, Any]
) -> None:
    train, test = iris_split()
    await add_source(client, "train", train)
    await add_source(client, "test", test)
    config = {"features": [f"{f}:float:1" for f in FEATURES], "predict": "species:str:1"}
    await add_model(client, plugin, "m", {**config, **params})
    await add_scorer(client, "clf", "clf")
    await expect(await client.post("/model/m/train", json=["train"]))

    body = await expect(await client.post("/scorer/clf/m/score", json=["test"]))
    assert body["accuracy"] >= 0.9
    # The older route scores a classifier by accuracy too.
    assert await expect(await client.post("/model/m/accuracy", json=["test"])) == body

    key, record = next(iter(test.items()))
    predicted = (await predict(client, "m", {key: record}))[key]["prediction"]["species"]
    assert predicted["value"] in {"setosa", "versicolor", "virginica"}
    assert 1 / 3 <= predicted["confidence"] <= 1.0


async def test_regression_scorers_refuse_class_labels(client: Any) -> None:
    train, _ = iris_split()
    await add_source(client, "train", train)
    config = {"features": [f"{f}:float:1" for f in FEATURES], "predict": "species:str:1"}
    await add_model(client, "scikitknn", "m", config)
    await add_scorer(client, "mse", "mse")
    await expect(await client.post("/model/m/train", json=["train"]))
    response = await client.post("/scorer/mse/m/score", json=["train"])
    assert response.status == 400
    assert "is not a number" in (await response.json())["error"]


async def test_knn_needs_enough_records(client: Any) -> None:
    await add_source(client, "few", {"a": {"features": {"x": 1, "y": "p"}}})
    await add_model(client, "scikitknn", "m", {"features": ["x"], "predict": "y:str:1"})
    response = await client.post("/model/m/train", json=["few"])
    assert (response.status, await response.json()) == (
        400,
        {"error": "Training failed: 1 records are fewer than n_neighbors=5"},
    )
