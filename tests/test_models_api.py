"""Models and scorers through HTTP: train, predict, score, errors."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest

from service.api.keys import STORE
from tests.models_helpers import (
    LINE_MODEL,
    add_model,
    add_scorer,
    add_source,
    expect,
    line_records,
    predict,
)

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def nested(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """DFFML's nested config body, every value given as an argument list."""
    wrapped = {
        name: {"plugin": value if isinstance(value, list) else [value], "config": {}}
        for name, value in config.items()
    }
    return {kind: {"plugin": None, "config": wrapped}}


@pytest.mark.parametrize("plugin", ["slr", "scikitlr"])
async def test_learns_a_line_and_predicts_110_for_10(client: Any, plugin: str) -> None:
    await add_source(client, "train", line_records(range(8)))
    # The seed's object form of features, nested, with the predicted feature as a list.
    config = nested(
        "model",
        {
            "features": [{"name": "Years", "dtype": "int", "length": 1}],
            "predict": ["Salary:float:1"],
        },
    )
    await add_model(client, plugin, "m", config)
    assert await expect(await client.post("/model/m/train", json=["train"])) == {"error": None}

    records = await predict(
        client, "m", {"a": {"features": {"Years": 10}}, "b": {"features": {"Years": 0}}}
    )
    assert set(records) == {"a", "b"}
    a = records["a"]
    assert a["key"] == "a"
    assert a["features"] == {"Years": 10}
    assert a["extra"] == {}
    assert TIMESTAMP.match(a["last_updated"])
    assert a["prediction"]["Salary"]["value"] == pytest.approx(110)
    assert a["prediction"]["Salary"]["confidence"] == pytest.approx(1.0)
    assert records["b"]["prediction"]["Salary"]["value"] == pytest.approx(10)


async def test_labels_say_which_model_contexts_are_trained(client: Any) -> None:
    """GET /labels lists a model's trained contexts, however it was trained (the dashboard
    shows it); other kinds have no such field."""
    await add_source(client, "train", line_records(range(8)))
    await add_model(client, "slr", "m", LINE_MODEL)
    await expect(await client.get("/context/model/m/other"))
    labels = await expect(await client.get("/labels"))
    assert (labels["model"]["m"]["contexts"], labels["model"]["m"]["trained"]) == (
        ["m", "other"],
        [],
    )
    assert "trained" not in labels["source"]["train"]
    assert await expect(await client.post("/model/m/train", json=["train"])) == {"error": None}
    # The contexts of one model share what it learned.
    labels = await expect(await client.get("/labels"))
    assert labels["model"]["m"]["trained"] == ["m", "other"]


async def test_trains_on_several_sources_and_a_forest_regresses(client: Any) -> None:
    await add_source(client, "low", line_records(range(0, 21, 2)))
    await add_source(client, "high", line_records(range(1, 21, 2)))
    config = {**LINE_MODEL, "predict": ["Salary:float:1"], "n_estimators": 20, "random_state": 0}
    await add_model(client, "scikitrfr", "m", config)
    await expect(await client.post("/model/m/train", json=["low", "high"]))
    prediction = (await predict(client, "m", {"t": {"features": {"Years": 10}}}))["t"]
    assert prediction["prediction"]["Salary"]["value"] == pytest.approx(110, abs=15)
    assert 0.9 <= prediction["prediction"]["Salary"]["confidence"] <= 1.0  # R² on training
    assert (await expect(await client.post("/model/m/accuracy", json=["low"])))["accuracy"] > 0.9


async def test_predict_over_a_source_context(client: Any) -> None:
    await add_source(client, "train", line_records(range(5)))
    await add_source(
        client, "ask", {"p": {"features": {"Years": 20}}, "q": {"features": {"Years": 30}}}
    )
    await add_model(client, "slr", "m", LINE_MODEL)
    await expect(await client.post("/model/m/train", json=["train"]))
    body = await expect(await client.post("/model/m/predict/0?source=ask"))
    values = {k: r["prediction"]["Salary"]["value"] for k, r in body["records"].items()}
    assert values == {"p": pytest.approx(210), "q": pytest.approx(310)}
    # The source's own records are untouched by predicting over them.
    stored = await client.app[STORE].source("ask").record("p")
    assert (stored.prediction, stored.last_updated) == (None, None)
    both = await client.post("/model/m/predict/0?source=ask", json={"x": {"features": {}}})
    assert (await expect(both, 400))["error"] == "Give records in the body or ?source=, not both"


async def test_scorers_through_both_routes(client: Any) -> None:
    await add_source(client, "train", line_records(range(5)))
    # Truth off the line by +1, -1, +2: errors the model (fitted on the line) makes.
    await add_source(
        client,
        "test",
        {
            "a": {"features": {"Years": 1, "Salary": 21}},
            "b": {"features": {"Years": 2, "Salary": 29}},
            "c": {"features": {"Years": 3, "Salary": 42}},
        },
    )
    await add_model(client, "slr", "m", LINE_MODEL)
    await expect(await client.post("/model/m/train", json=["train"]))
    truths = [21, 29, 42]
    spread = sum((y - sum(truths) / 3) ** 2 for y in truths)
    expected = {"mse": 6 / 3, "mae": 4 / 3, "r2": 1 - 6 / spread}
    for plugin, value in expected.items():
        await add_scorer(client, plugin, plugin)
        body = await expect(await client.post(f"/scorer/{plugin}/m/score", json=["test"]))
        assert body == {"accuracy": pytest.approx(value)}, plugin
    # The older route scores a regressor with r2.
    body = await expect(await client.post("/model/m/accuracy", json=["test"]))
    assert body == {"accuracy": pytest.approx(expected["r2"])}
    # Scoring on the training data itself: a perfect fit.
    body = await expect(await client.post("/scorer/r2/m/score", json=["train"]))
    assert body == {"accuracy": pytest.approx(1.0)}


async def test_train_errors(client: Any) -> None:
    cases: list[tuple[str, Any, int, str]] = [
        ("/model/nope/train", ["train"], 404, "Model not loaded"),
        ("/model/m/train", [], 400, "No source context labels given"),
        ("/model/m/train", ["nope"], 404, "Source not loaded"),
        ("/model/m/train", ["train", "nope"], 404, "Source not loaded"),
        ("/model/m/train", [3], 400, "Source context labels must be strings, got 3"),
        ("/model/m/train", {"a": 1}, 400, "Request body must be a JSON list, got object"),
        ("/model/m/train", ["no_years"], 400, "Record 'k' is missing feature 'Years'"),
        ("/model/m/train", ["no_salary"], 400, "Record 'k' is missing feature 'Salary'"),
        (
            "/model/m/train",
            ["text"],
            400,
            "Record 'k' feature 'Years' must be a number, got 'ten'",
        ),
        ("/model/m/train", ["empty"], 400, "No records to train on"),
        (
            "/model/m/train",
            ["flat"],
            400,
            "Training failed: slr needs at least two different values of 'Years'",
        ),
    ]
    await add_source(client, "train", line_records(range(3)))
    await add_source(client, "no_years", {"k": {"features": {"Salary": 1}}})
    await add_source(client, "no_salary", {"k": {"features": {"Years": 1}}})
    await add_source(client, "text", {"k": {"features": {"Years": "ten", "Salary": 1}}})
    await add_source(client, "empty", {})
    await add_source(
        client, "flat", {str(i): {"features": {"Years": 1, "Salary": i}} for i in range(3)}
    )
    await add_model(client, "slr", "m", LINE_MODEL)
    for path, body, status, message in cases:
        response = await client.post(path, json=body)
        assert (response.status, await response.json()) == (status, {"error": message}), path
    bad_json = await client.post("/model/m/train", data=b"[")
    assert bad_json.status == 400
    assert (await bad_json.json())["error"].startswith("Invalid JSON body")


async def test_untrained_model_and_predict_errors(client: Any) -> None:
    await add_source(client, "train", line_records(range(3)))
    await add_model(client, "slr", "m", LINE_MODEL)
    await add_scorer(client, "mse", "mse")
    one = {"a": {"features": {"Years": 1}}}
    for path, body in [
        ("/model/m/predict/0", one),
        ("/model/m/accuracy", ["train"]),
        ("/scorer/mse/m/score", ["train"]),
    ]:
        response = await client.post(path, json=body)
        assert (response.status, await response.json()) == (400, {"error": "Model not trained"}), (
            path
        )

    await expect(await client.post("/model/m/train", json=["train"]))
    cases: list[tuple[str, Any, int, str]] = [
        ("/model/nope/predict/0", one, 404, "Model not loaded"),
        (
            "/model/m/predict/0",
            {"a": {"features": {}}},
            400,
            "Record 'a' is missing feature 'Years'",
        ),
        (
            "/model/m/predict/0",
            {"a": {"features": {"Years": [1, 2]}}},
            400,
            "Record 'a' feature 'Years' must be a number, got [1, 2]",
        ),
        ("/model/m/predict/0", {"a": 3}, 400, "Record 'a' must be a JSON object"),
        ("/model/m/predict/0", [1], 400, "Request body must be a JSON object, got list"),
        ("/model/m/predict/-1", one, 400, "chunk_size must be an integer >= 0, got '-1'"),
        ("/model/m/predict/x", one, 400, "chunk_size must be an integer >= 0, got 'x'"),
        ("/model/m/predict/0?source=nope", None, 404, "Source not loaded"),
        ("/scorer/nope/m/score", ["train"], 404, "Scorer not loaded"),
        ("/scorer/mse/nope/score", ["train"], 404, "Model not loaded"),
        ("/scorer/mse/m/score", [], 400, "No source context labels given"),
        ("/scorer/mse/m/score", ["nope"], 404, "Source not loaded"),
        ("/model/nope/accuracy", ["train"], 404, "Model not loaded"),
    ]
    for path, body, status, message in cases:
        response = await client.post(path, json=body)
        assert (response.status, await response.json()) == (status, {"error": message}), path
    # Predictions were refused, the model still answers.
    assert (await predict(client, "m", one))["a"]["prediction"]["Salary"]["value"] == pytest.approx(
        20
    )


async def test_model_config_errors(client: Any) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("slr", {"predict": "Salary"}, "SLRModel missing 'features' from model.m"),
        ("slr", {"features": ["Years"]}, "SLRModel missing 'predict' from model.m"),
        (
            "slr",
            {"features": ["Years", "Age"], "predict": "Salary"},
            "SLRModel config model.m: slr takes exactly one feature of length 1",
        ),
        (
            "scikitlr",
            {"features": ["Salary"], "predict": "Salary"},
            "LinearRegressionModel config model.m: predicted feature 'Salary' is also a feature",
        ),
        (
            "scikitrf",
            {"features": ["a"], "predict": "b", "n_estimators": 0},
            "RandomForestClassifierModel config model.m: 'n_estimators' must be at least 1, got 0",
        ),
        (
            "scikitlor",
            {"features": ["a"], "predict": "b", "solver": "magic"},
            "LogisticRegressionModel 'solver' of model.m must be one of 'lbfgs', 'liblinear',"
            " 'newton-cg', 'newton-cholesky', 'sag', 'saga', got 'magic'",
        ),
        (
            "slr",
            {"features": ["Years"], "predict": "Salary", "location": "../out"},
            "Attempted path traversal: '../out' is not inside the upload directory",
        ),
        (
            "slr",
            {"features": ["Years"], "predict": "Salary", "location": "a", "directory": "b"},
            "SLRModel got both 'location' and its alias 'directory' in model.m",
        ),
    ]
    for plugin, config, message in cases:
        response = await client.post(f"/configure/model/{plugin}/m", json=config)
        assert (response.status, await response.json()) == (400, {"error": message}), config


async def test_listing_shows_models_scorers_and_hyper_parameters(client: Any) -> None:
    models = await expect(await client.get("/list/models"))
    assert {"slr", "scikitlr", "scikitlor", "scikitrf", "scikitrfr", "scikitknn"} <= set(models)
    rf = models["scikitrf"]["model"]["config"]["scikitrf"]["config"]
    assert rf["n_estimators"]["plugin"]["default"] == 100
    assert rf["criterion"]["plugin"]["choices"] == ["gini", "entropy", "log_loss"]
    assert rf["features"]["plugin"]["required"] is True
    assert rf["location"]["plugin"]["aliases"] == ["directory"]
    knn = models["scikitknn"]["model"]["config"]["scikitknn"]["config"]
    assert knn["n_neighbors"]["plugin"] == {
        "type": "int",
        "default": 5,
        "help": "neighbours that vote",
    }
    scorers = await expect(await client.get("/list/scorers"))
    assert {"mse", "mae", "r2", "clf"} <= set(scorers)


SCIKIT_ESTIMATORS = {
    "scikitlr": ("sklearn.linear_model", "LinearRegression"),
    "scikitlor": ("sklearn.linear_model", "LogisticRegression"),
    "scikitrf": ("sklearn.ensemble", "RandomForestClassifier"),
    "scikitrfr": ("sklearn.ensemble", "RandomForestRegressor"),
    "scikitknn": ("sklearn.neighbors", "KNeighborsClassifier"),
}
MODEL_FIELDS = {"features", "predict", "location"}


@pytest.mark.parametrize("plugin", sorted(SCIKIT_ESTIMATORS))
async def test_hyper_parameters_are_scikit_learns_own(client: Any, plugin: str) -> None:
    """Every listed hyper-parameter is a keyword of the estimator, with its default."""
    module, name = SCIKIT_ESTIMATORS[plugin]
    defaults = getattr(importlib.import_module(module), name)().get_params()
    models = await expect(await client.get("/list/models"))
    fields = models[plugin]["model"]["config"][plugin]["config"]
    hyper = {k: v["plugin"]["default"] for k, v in fields.items() if k not in MODEL_FIELDS}
    assert hyper
    for field_name, default in hyper.items():
        assert defaults[field_name] == default, field_name


async def test_hyper_parameters_reach_the_estimator(client: Any) -> None:
    """Without an intercept, the best line through 0 for y = 10x + 10 on 1..7 is not 10x + 10."""
    await add_source(client, "train", line_records(range(1, 8)))
    await add_model(client, "scikitlr", "m", {**LINE_MODEL, "fit_intercept": False})
    assert await expect(await client.post("/model/m/train", json=["train"])) == {"error": None}
    records = await predict(client, "m", {"a": {"features": {"Years": 0}}})
    assert records["a"]["prediction"]["Salary"]["value"] == pytest.approx(0)
