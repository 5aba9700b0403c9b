"""The ceiling: a bare aiohttp + orjson app answering the benchmarked routes from memory.

It encodes every CSV record to JSON once at start (a page is a join of those bytes), keeps
cursors as plain offsets, predicts with a fixed line (orjson in and out) and writes uploads
straight to disk: no plugins, validation, middlewares or limits. What this project's server
reaches as a fraction of it is the cost of everything the project adds.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

JSON = "application/json"


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass
class Records:
    """Every record pre-encoded once as ``"KEY":{...}``, the form it takes inside a page."""

    entries: list[bytes]
    position: dict[str, int]
    value_offsets: list[int]  # where the record's own JSON starts within its entry

    def record(self, key: str) -> bytes:
        index = self.position.get(key)
        if index is None:
            return orjson.dumps({"key": key})
        return self.entries[index][self.value_offsets[index] :]


def load(csv_path: Path) -> Records:
    entries: list[bytes] = []
    position: dict[str, int] = {}
    offsets: list[int] = []
    with csv_path.open(newline="", encoding="utf-8") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            key = str(index)
            features = {name: _number(value) for name, value in row.items()}
            prefix = orjson.dumps(key) + b":"
            entries.append(prefix + orjson.dumps({"key": key, "features": features, "extra": {}}))
            position[key] = index
            offsets.append(len(prefix))
    return Records(entries, position, offsets)


def make_app(records: Records, list_models: bytes, upload_dir: Path) -> web.Application:
    cursors: dict[str, int] = {}

    def page(start: int, size: int) -> web.Response:
        end = start + size
        iterkey = None
        if end < len(records.entries):
            iterkey = secrets.token_urlsafe(16)
            cursors[iterkey] = end
        body = b"".join(
            (
                b'{"iterkey":',
                orjson.dumps(iterkey),
                b',"records":{',
                b",".join(records.entries[start:end]),
                b"}}",
            )
        )
        return web.Response(body=body, content_type=JSON)

    async def record(request: web.Request) -> web.Response:
        return web.Response(body=records.record(request.match_info["key"]), content_type=JSON)

    async def first_page(request: web.Request) -> web.Response:
        return page(0, int(request.match_info["chunk_size"]))

    async def next_page(request: web.Request) -> web.Response:
        start = cursors.pop(request.match_info["iterkey"], None)
        if start is None:
            raise web.HTTPNotFound(text='{"error": "iterkey not found"}', content_type=JSON)
        return page(start, int(request.match_info["chunk_size"]))

    async def predict(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out = {
            key: {
                "key": key,
                "features": value["features"],
                "prediction": {
                    "Salary": {"value": 10.0 * value["features"]["Years"] + 10.0, "confidence": 1.0}
                },
                "last_updated": stamp,
                "extra": {},
            }
            for key, value in body.items()
        }
        return web.Response(body=orjson.dumps({"iterkey": None, "records": out}), content_type=JSON)

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=list_models, content_type=JSON)

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        part = await reader.next()
        assert isinstance(part, aiohttp.BodyPartReader)
        # Blocking writes on the loop, on purpose: the bare minimum a handler can do.
        target = upload_dir / os.path.basename(request.match_info["filename"])
        with open(target, "wb") as out:  # noqa: ASYNC230
            while chunk := await part.read_chunk(1024 * 1024):
                out.write(chunk)
        return web.Response(body=b'{"error": null}', content_type=JSON)

    async def health(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status": "ok"}', content_type=JSON)

    app = web.Application(client_max_size=1024**4)
    app.add_routes(
        [
            web.get("/health", health),
            web.get("/list/models", models),
            web.get("/source/{ctx}/record/{key}", record),
            web.get("/source/{ctx}/records/{chunk_size}", first_page),
            web.get("/source/{ctx}/records/{iterkey}/{chunk_size}", next_page),
            web.post("/model/{ctx}/predict/{chunk_size}", predict),
            web.post("/service/upload/{filename}", upload),
        ]
    )
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--upload-dir", type=Path, required=True)
    parser.add_argument("--list-models", type=Path, help="the /list/models body to serve")
    parser.add_argument("--portfile", type=Path, required=True)
    args = parser.parse_args()
    list_models = args.list_models.read_bytes() if args.list_models else b"{}"
    app = make_app(load(args.csv), list_models, args.upload_dir)
    asyncio.run(serve(app, args.portfile))


async def serve(app: web.Application, portfile: Path) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        portfile.write_text(f"{port}\n")  # noqa: ASYNC240 (a few bytes, once)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
