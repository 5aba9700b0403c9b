"""The four scorers through HTTP, each asserting the documented figure and error message
(docs/http-api.md, "Scorers").

A model that predicts a record's own ``guess`` feature makes every (truth, prediction) pair
chosen by the test, so each figure is computed by hand. In-process and fast: the mutation
script (scripts/mutation) runs this file for every mutant of service/plugins/scorers/.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.plugins.registry import Registry
from service.sdk.base import Model, ModelContext
from service.sdk.config import EmptyConfig
from service.sdk.records import Record
from tests.conftest import MakeClient
from tests.models_helpers import add_scorer, add_source, expect


class GuessContext(ModelContext):
    """Predicts ``y`` as the record's ``guess`` (no prediction at all without one)."""

    async def train(self, records: AsyncIterator[Record]) -> None:
        async for _ in records:
            pass

    async def predict(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        async for record in records:
            features = record.features
            prediction = (
                {"y": {"value": features["guess"], "confidence": 1.0}}
                if "guess" in features
                else {}
            )
            yield Record(record.key, dict(features), prediction=prediction)


class GuessModel(Model[EmptyConfig]):
    """Predicts each record's ``guess`` feature as ``y``."""

    def context(self) -> GuessContext:
        return GuessContext()


def rows(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    return {f"r{i}": {"features": {"y": y, "guess": g}} for i, (y, g) in enumerate(pairs)}


async def scored(make_client: MakeClient, scorer: str, pairs: list[tuple[Any, Any]]) -> Any:
    """(status, body) of scoring ``pairs`` of (truth, prediction) with ``scorer``."""
    registry = Registry.from_entry_points()
    registry.register("model", "guess", GuessModel)
    client = await make_client(registry=registry)
    await add_source(client, "s", rows(pairs))
    await expect(await client.post("/configure/model/guess/m", json={}))
    await expect(await client.get("/context/model/m/m"))
    await add_scorer(client, scorer, "sc")
    response = await client.post("/scorer/sc/m/score", json=["s"])
    return response.status, await response.json()


async def figure(make_client: MakeClient, scorer: str, pairs: list[tuple[Any, Any]]) -> float:
    status, body = await scored(make_client, scorer, pairs)
    assert status == 200, body
    value = body["accuracy"]
    assert isinstance(value, float), body
    return value


PAIRS = [(1, 2), (2, 2), (3, 5), (6, 2)]  # errors -1, 0, -2, 4


async def test_mse_is_the_mean_of_squared_errors(make_client: MakeClient) -> None:
    assert await figure(make_client, "mse", PAIRS) == (1 + 0 + 4 + 16) / 4


async def test_mae_is_the_mean_of_absolute_errors(make_client: MakeClient) -> None:
    assert await figure(make_client, "mae", PAIRS) == (1 + 0 + 2 + 4) / 4


async def test_r2_is_one_minus_residual_over_total_squares(make_client: MakeClient) -> None:
    # truths 1, 2, 3, 6: mean 3, SStot = 4 + 1 + 0 + 9 = 14; SSres = 21
    assert await figure(make_client, "r2", PAIRS) == pytest.approx(1 - 21 / 14, abs=1e-12)
    exact = [(1, 1), (2, 2), (4, 4)]
    assert await figure(make_client, "r2", exact) == 1.0


async def test_r2_sums_are_streamed_exactly_over_many_records(make_client: MakeClient) -> None:
    # Welford's running variance must equal the textbook sum for uneven truths.
    pairs = [(x * x % 7 + 0.5 * x, x) for x in range(12)]
    truths = [t for t, _ in pairs]
    mean = sum(truths) / len(truths)
    total = sum((t - mean) ** 2 for t in truths)
    residual = sum((t - p) ** 2 for t, p in pairs)
    assert await figure(make_client, "r2", pairs) == pytest.approx(1 - residual / total, rel=1e-12)


async def test_r2_on_constant_truth_follows_scikit_learn(make_client: MakeClient) -> None:
    assert await figure(make_client, "r2", [(5, 5), (5, 5)]) == 1.0
    assert await figure(make_client, "r2", [(5, 5), (5, 6)]) == 0.0


async def test_clf_is_the_share_of_equal_classes(make_client: MakeClient) -> None:
    # (2, 3) and (3, 2): different classes whichever is the larger.
    pairs = [("a", "a"), ("b", "a"), ("1", 1), (1.0, "1"), (2, 3), (3, 2)]
    assert await figure(make_client, "clf", pairs) == 3 / 6
    assert await figure(make_client, "clf", [("x", "x")]) == 1.0
    assert await figure(make_client, "clf", [("x", "y")]) == 0.0


async def test_clf_compares_text_when_a_label_is_not_a_number(make_client: MakeClient) -> None:
    # "1.0" and 1 are one class as numbers; "01x" and "1x" are different texts.
    assert await figure(make_client, "clf", [("1.0", 1), ("01x", "1x"), (None, None)]) == 2 / 3


@pytest.mark.parametrize("scorer", ["mse", "mae", "r2", "clf"])
async def test_no_records_to_score(make_client: MakeClient, scorer: str) -> None:
    assert await scored(make_client, scorer, []) == (400, {"error": "No records to score"})


@pytest.mark.parametrize("scorer", ["mse", "mae", "r2", "clf"])
async def test_a_record_without_the_predicted_feature(make_client: MakeClient, scorer: str) -> None:
    registry = Registry.from_entry_points()
    registry.register("model", "guess", GuessModel)
    client = await make_client(registry=registry)
    await add_source(client, "s", {"k": {"features": {"guess": 1}}})
    await expect(await client.post("/configure/model/guess/m", json={}))
    await expect(await client.get("/context/model/m/m"))
    await add_scorer(client, scorer, "sc")
    response = await client.post("/scorer/sc/m/score", json=["s"])
    assert (response.status, await response.json()) == (
        400,
        {"error": "Record 'k' has no 'y' to score against"},
    )


@pytest.mark.parametrize("scorer", ["mse", "mae", "r2"])
async def test_regression_scorers_name_what_is_not_a_number(
    make_client: MakeClient, scorer: str
) -> None:
    assert await scored(make_client, scorer, [("setosa", 1)]) == (
        400,
        {"error": "True value 'setosa' is not a number"},
    )
    assert await scored(make_client, scorer, [(1, "virginica")]) == (
        400,
        {"error": "Prediction 'virginica' is not a number"},
    )


async def test_records_without_a_prediction_are_not_counted(make_client: MakeClient) -> None:
    registry = Registry.from_entry_points()
    registry.register("model", "guess", GuessModel)
    client = await make_client(registry=registry)
    records = {**rows([(1, 3)]), "none": {"features": {"y": 100}}}
    await add_source(client, "s", records)
    await expect(await client.post("/configure/model/guess/m", json={}))
    await expect(await client.get("/context/model/m/m"))
    await add_scorer(client, "mse", "sc")
    body = await expect(await client.post("/scorer/sc/m/score", json=["s"]))
    assert body == {"accuracy": 4.0}
    assert not math.isnan(body["accuracy"])
