"""Endpoint rules judge every resource a request names, not only the route's own name: a source
in ?source= or in a train/score body, the model a scorer scores, a module function in a
pipeline's task."""

from __future__ import annotations

from typing import Any

import pytest

from service.api.keys import AUTH
from service.kernel.users import User
from service.plugins.modules.dataset import Dataset
from service.plugins.registry import Registry
from service.settings import Preload
from tests.conftest import MakeClient
from tests.models_helpers import LINE_MODEL, line_records

FORBIDDEN = {"error": "Forbidden by the server's rules"}
# Everything but the secret source, the dataset's describe and the model's accuracy.
RULE = "(?!source/secret/|module/ds/describe|model/m/accuracy).*"


def _registry() -> Registry:
    registry = Registry.from_entry_points()
    registry.register("module", "dataset", Dataset)
    return registry


def _preloads() -> tuple[Preload, ...]:
    return (
        Preload("source", "people", "memory", {"records": line_records(range(1, 11))}),
        Preload("source", "secret", "memory", {"records": line_records(range(20, 30))}),
        Preload("model", "m", "slr", LINE_MODEL),
        Preload("scorer", "sc", "mse", {}),
        Preload("module", "ds", "dataset", {}),
    )


async def _answer(response: Any) -> tuple[int, Any]:
    return response.status, await response.json()


@pytest.fixture
async def client(make_client: MakeClient) -> Any:
    return await make_client(registry=_registry(), preloads=_preloads(), rule=(RULE,))


async def test_a_source_the_rules_hide_is_not_reached_through_another_route(client: Any) -> None:
    assert await _answer(await client.get("/source/secret/record/20")) == (403, FORBIDDEN)
    assert (await client.post("/model/m/train", json=["people"])).status == 200
    for path, body in (
        ("/model/m/train", ["secret"]),
        ("/model/m/train", ["people", "secret"]),
        ("/model/m/predict/0?source=secret", None),
        ("/model/m/predict/5?source=secret", None),
        ("/model/m/predict/0?source=secret&async=1", None),
    ):
        assert await _answer(await client.post(path, json=body)) == (403, FORBIDDEN), path
    listed = await client.post("/model/m/predict/0?source=people")
    assert listed.status == 200
    assert len((await listed.json())["records"]) == 10


async def test_a_scorer_cannot_score_a_model_whose_accuracy_is_hidden(client: Any) -> None:
    assert (await client.post("/model/m/train", json=["people"])).status == 200
    assert await _answer(await client.post("/model/m/accuracy", json=["people"])) == (
        403,
        FORBIDDEN,
    )
    assert await _answer(await client.post("/scorer/sc/m/score", json=["people"])) == (
        403,
        FORBIDDEN,
    )


async def test_a_function_the_rules_hide_is_not_a_pipeline_task(client: Any) -> None:
    assert await _answer(await client.post("/module/ds/describe", json={})) == (403, FORBIDDEN)
    status, body = await _answer(
        await client.post(
            "/pipelines",
            json={
                "name": "p",
                "tasks": [
                    {"module": "ds", "function": "split", "options": {"ratio": 0.5}},
                    {"module": "ds", "function": "describe", "options": {}},
                ],
            },
        )
    )
    assert (status, body) == (403, {"error": "task 1: Forbidden by the server's rules"})
    assert (await (await client.get("/pipelines")).json())["total"] == 0


async def test_a_users_own_rules_judge_the_resources_too(make_client: MakeClient) -> None:
    client = await make_client(
        registry=_registry(), preloads=_preloads(), auth="token", secret_key=b"r" * 32
    )
    tokens = client.app[AUTH].tokens
    admin = {"Authorization": f"Bearer {tokens.issue(User('root', admin=True)).token}"}
    bob_user = User("bob", rules=("(?!source/secret/).*",))
    bob = {"Authorization": f"Bearer {tokens.issue(bob_user).token}"}
    assert (await client.post("/model/m/train", json=["people"], headers=admin)).status == 200
    refused = await client.post("/model/m/predict/0?source=secret", headers=bob)
    assert await _answer(refused) == (403, {"error": "Forbidden by this user's rules"})
    allowed = await client.post("/model/m/predict/0?source=people", headers=bob)
    assert allowed.status == 200
