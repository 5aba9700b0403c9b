"""Client-side steps the task tests repeat: submit async, poll a task, read its SSE stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.models_helpers import expect

POLL_LIMIT = 1200  # polls 0.05 s apart: a minute, far beyond what any of these tasks needs


async def submit(client: Any, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    separator = "&" if "?" in path else "?"
    response = await client.request(method, f"{path}{separator}async=1", **kwargs)
    body = await expect(response, 202)
    assert response.headers["Location"] == f"/task/{body['task_id']}"
    assert body == {
        "task_id": body["task_id"],
        "status": "PENDING",
        "location": f"/task/{body['task_id']}",
    }
    return body


async def wait_task(client: Any, task_id: str) -> dict[str, Any]:
    """Poll until the task is finished; its final state."""
    for _ in range(POLL_LIMIT):
        task: dict[str, Any] = await expect(await client.get(f"/task/{task_id}"))
        if task["status"] in ("SUCCESS", "FAILURE", "CANCELLED"):
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


async def wait_status(client: Any, task_id: str, status: str) -> dict[str, Any]:
    for _ in range(POLL_LIMIT):
        task: dict[str, Any] = await expect(await client.get(f"/task/{task_id}"))
        if task["status"] == status:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never became {status}")


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """``event:``/``data:`` blocks as (event, parsed data); comments skipped."""
    events = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if name is not None:
            events.append((name, json.loads("\n".join(data))))
    return events
