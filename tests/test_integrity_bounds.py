"""A pipeline's options are capped in bytes: one definition cannot make every listing huge."""

from __future__ import annotations

from typing import Any

from service.engine.pipelines.validate import MAX_OPTIONS_BYTES
from service.plugins.modules.dataset import Dataset
from service.plugins.registry import Registry
from service.settings import Preload
from tests.conftest import MakeClient


async def test_pipeline_options_over_the_cap_are_refused(make_client: MakeClient) -> None:
    registry = Registry.from_entry_points()
    registry.register("module", "dataset", Dataset)
    client = await make_client(
        registry=registry, preloads=(Preload("module", "ds", "dataset", {}),)
    )

    def task(column: str) -> dict[str, Any]:
        return {"module": "ds", "function": "split", "options": {"stratify": column}}

    # Within the cap in total, over it across tasks.
    fits = [task("c" * (MAX_OPTIONS_BYTES // 4)) for _ in range(3)]
    created = await client.post("/pipelines", json={"name": "fits", "tasks": fits})
    assert created.status == 201, await created.text()
    refused = await client.post("/pipelines", json={"name": "big", "tasks": [*fits, *fits]})
    assert refused.status == 400
    error = (await refused.json())["error"]
    assert error.startswith(f"a pipeline's options take at most {MAX_OPTIONS_BYTES} bytes")
    listed = await (await client.get("/pipelines")).json()
    assert [p["name"] for p in listed["pipelines"]] == ["fits"]
