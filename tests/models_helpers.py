"""Client-side steps the model tests repeat: data in a memory source, a model with a context."""

from __future__ import annotations

from typing import Any


def line_records(xs: range | list[int], *, x: str = "Years", y: str = "Salary") -> dict[str, Any]:
    """Records on the line y = 10·x + 10."""
    return {str(i): {"features": {x: i, y: 10 * i + 10}} for i in xs}


async def expect(response: Any, status: int = 200) -> Any:
    body = await response.json()
    assert response.status == status, body
    return body


async def add_source(client: Any, label: str, records: dict[str, Any]) -> None:
    await expect(await client.post(f"/configure/source/memory/{label}", json={"records": records}))
    await expect(await client.get(f"/context/source/{label}/{label}"))


async def add_model(client: Any, plugin: str, label: str, config: dict[str, Any]) -> None:
    await expect(await client.post(f"/configure/model/{plugin}/{label}", json=config))
    await expect(await client.get(f"/context/model/{label}/{label}"))


async def add_scorer(client: Any, plugin: str, label: str) -> None:
    await expect(await client.post(f"/configure/scorer/{plugin}/{label}", json={}))
    await expect(await client.get(f"/context/scorer/{label}/{label}"))


async def predict(client: Any, model: str, records: dict[str, Any]) -> dict[str, Any]:
    body = await expect(await client.post(f"/model/{model}/predict/0", json=records))
    assert body["iterkey"] is None
    records_out: dict[str, Any] = body["records"]
    return records_out


LINE_MODEL = {"features": ["Years:int:1"], "predict": "Salary:float:1"}
