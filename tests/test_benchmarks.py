"""The benchmark's ceiling app answers with the same payloads as this server, so the ratios
benchmarks/run.py prints compare like with like. (No timing here: benchmarks print figures.)"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from benchmarks import ceiling, data

Client = TestClient[web.Request, web.Application]


async def get(client: Client, path: str) -> Any:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_ceiling_serves_what_this_server_serves(
    client: Client, aiohttp_client: Any, upload_dir: Path, tmp_path: Path
) -> None:
    csv = data.csv_path(tmp_path / "bench-data", 25)
    shutil.copyfile(csv, upload_dir / "rows.csv")
    configured = await client.post("/configure/source/csv/s1", json={"filename": "rows.csv"})
    assert configured.status == 200, await configured.text()
    assert (await client.get("/context/source/s1/s1")).status == 200
    bare: Client = await aiohttp_client(ceiling.make_app(ceiling.load(csv), b"{}", tmp_path))

    for key in ("0", "13", "24", "no-such-key"):
        path = f"/source/s1/record/{key}"
        assert await get(bare, path) == await get(client, path)

    pages: dict[str, list[Any]] = {}
    for name, server in (("this", client), ("ceiling", bare)):
        page = await get(server, "/source/s1/records/10")
        pages[name] = [page["records"]]
        while page["iterkey"] is not None:
            page = await get(server, f"/source/s1/records/{page['iterkey']}/10")
            pages[name].append(page["records"])
    assert pages["ceiling"] == pages["this"]
    assert [len(records) for records in pages["this"]] == [10, 10, 5]
