"""Documented behaviour the issue-13 mutation spot-check found untested: r2 on constant truth,
clf treating "1", 1 and 1.0 as one class, the -redirect method check, CORS without credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from tests.live import live_server, run_cli


async def source(client: Any, label: str, rows: dict[str, dict[str, Any]]) -> None:
    assert (await client.post(f"/configure/source/memory/{label}", json={})).status == 200
    assert (await client.get(f"/context/source/{label}/{label}")).status == 200
    for key, features in rows.items():
        response = await client.post(f"/source/{label}/update/{key}", json={"features": features})
        assert response.status == 200


async def configured(client: Any, kind: str, plugin: str, label: str, config: Any) -> None:
    response = await client.post(f"/configure/{kind}/{plugin}/{label}", json=config)
    assert response.status == 200, await response.text()
    assert (await client.get(f"/context/{kind}/{label}/{label}")).status == 200


async def score(client: Any, scorer: str, model: str, sources: list[str]) -> Any:
    response = await client.post(f"/scorer/{scorer}/{model}/score", json=sources)
    assert response.status == 200, await response.text()
    return (await response.json())["accuracy"]


async def test_r2_on_constant_truth_is_1_when_exact_and_0_otherwise(client: Any) -> None:
    await source(client, "flat", {f"k{i}": {"x": i, "y": 5} for i in range(4)})
    await source(client, "line", {f"k{i}": {"x": i, "y": 2 * i + 1} for i in range(4)})
    await configured(client, "scorer", "r2", "r2", {})
    slr = {"features": ["x:float:1"], "predict": "y:float:1"}
    await configured(client, "model", "slr", "flat_model", slr)
    assert (await client.post("/model/flat_model/train", json=["flat"])).status == 200
    # Constant truth predicted exactly: 1.0 (scikit-learn's convention), not a division by 0.
    assert await score(client, "r2", "flat_model", ["flat"]) == 1.0
    await configured(client, "model", "slr", "line_model", slr)
    assert (await client.post("/model/line_model/train", json=["line"])).status == 200
    # Constant truth predicted wrongly: 0.0.
    assert await score(client, "r2", "line_model", ["flat"]) == 0.0
    # And an ordinary fit is scored by 1 - SSres/SStot.
    assert await score(client, "r2", "line_model", ["line"]) == 1.0


async def test_clf_counts_1_and_1_0_and_the_string_1_as_one_class(client: Any) -> None:
    await source(client, "train", {f"k{i}": {"x": i, "y": 1 if i < 3 else 2} for i in range(6)})
    await configured(
        client,
        "model",
        "scikitknn",
        "knn",
        {"features": ["x:float:1"], "predict": "y:int:1", "n_neighbors": 1},
    )
    assert (await client.post("/model/knn/train", json=["train"])).status == 200
    await configured(client, "scorer", "clf", "clf", {})
    await source(
        client, "mixed", {"a": {"x": 0, "y": "1"}, "b": {"x": 1, "y": 1}, "c": {"x": 2, "y": 1.0}}
    )
    assert await score(client, "clf", "knn", ["mixed"]) == 1.0
    await source(client, "wrong", {"a": {"x": 0, "y": "2"}, "b": {"x": 5, "y": "one"}})
    assert await score(client, "clf", "knn", ["wrong"]) == 0.0


def test_redirect_answers_only_its_method_and_refuses_a_bad_one(tmp_path: Path) -> None:
    result = run_cli("server", "-insecure", "-redirect", "G@T", "/a", "/b", cwd=tmp_path)
    assert result.returncode == 2
    assert "-redirect: 'G@T' is not an HTTP method" in result.stderr
    with live_server("-insecure", "-redirect", "GET", "/old", "/health", cwd=tmp_path) as server:
        response = requests.get(f"{server.url}/old", allow_redirects=False, timeout=30)
        assert (response.status_code, response.headers["Location"]) == (307, "/health")
        response = requests.post(f"{server.url}/old", allow_redirects=False, timeout=30)
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET"
        assert response.json() == {"error": "405: Method Not Allowed"}


def test_cors_never_allows_credentials(tmp_path: Path) -> None:
    origin = "http://app.example"
    with live_server("-insecure", "-cors-domains", origin, cwd=tmp_path) as server:
        preflight = requests.options(
            f"{server.url}/configure/source/memory/s",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            timeout=30,
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        response = requests.get(f"{server.url}/health", headers={"Origin": origin}, timeout=30)
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Access-Control-Allow-Credentials" not in response.headers
