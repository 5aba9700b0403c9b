"""Source contexts over HTTP: one record, updates, iterkey paging and NDJSON streaming."""

from __future__ import annotations

import logging

from aiohttp import web

from service.api import params
from service.api.jsonio import json_response, ok, read_json_object
from service.api.keys import CURSORS, STORE
from service.api.openapi import OK_SCHEMA, Body, Response, operation
from service.api.openapi.schemas import ref
from service.api.openapi.shapes import BAD_CHUNK, BUSY, CHUNK, NO_ITERKEY, NO_SOURCE
from service.engine.cursors import Owner
from service.kernel.errors import ServiceError
from service.kernel.jsoncodec import dumps
from service.sdk.base import SourceContext
from service.sdk.records import EncodedRecords, Record, RecordChunk

log = logging.getLogger(__name__)

NDJSON_TYPE = "application/x-ndjson"
# Records read per step while streaming NDJSON: large enough to amortise each read, small
# enough that the response never holds more than this many records in memory.
STREAM_CHUNK = 1000


def _source(request: web.Request) -> tuple[SourceContext, Owner]:
    ctx_label = request.match_info["ctx"]
    return request.app[STORE].source(ctx_label), ("source", ctx_label)


def export_record(record: Record) -> dict[str, object]:
    """A record for the wire; one that does not exist is just its key, as in DFFML."""
    if not (record.features or record.extra or record.prediction is not None):
        return {"key": record.key}
    return record.export()


def page_response(chunk: RecordChunk, iterkey: str | None) -> web.Response:
    """``{"iterkey": …, "records": {key: record, …}}`` for one chunk of records."""
    if isinstance(chunk, EncodedRecords):
        members = chunk.members()
    else:
        members = dumps({record.key: record.export() for record in chunk})[1:-1]
    body = b'{"iterkey":' + dumps(iterkey) + b',"records":{' + members + b"}}"
    return web.Response(body=body, content_type="application/json")


def ndjson_lines(chunk: RecordChunk) -> bytes:
    if isinstance(chunk, EncodedRecords):
        return chunk.lines()
    return b"".join(dumps(record.export()) + b"\n" for record in chunk)


@operation(
    "One record of a source context (a missing record is just its key)",
    tags=("sources",),
    responses={200: ref("Record"), 404: NO_SOURCE, 503: BUSY},
)
async def record(request: web.Request) -> web.Response:
    source, _ = _source(request)
    return json_response(export_record(await source.record(request.match_info["key"])))


@operation(
    "Create or replace one record",
    tags=("sources",),
    body=Body.json(ref("RecordIn")),
    responses={
        200: OK_SCHEMA,
        400: "Not a record, the source is read-only, or a feature a csv file cannot keep",
        403: "The source is shared (an operator preload): only admins change it",
        404: NO_SOURCE,
        409: "The read-write source's file changed on disk since it was read",
        503: BUSY,
        507: "The -spool-max-bytes budget is spent, or the last save failed and still fails",
    },
)
async def update(request: web.Request) -> web.Response:
    source = request.app[STORE].changeable_source(request.match_info["ctx"])
    key = request.match_info["key"]
    await source.update(Record.from_json(key, await read_json_object(request)))
    return ok()


@operation(
    "The first chunk of records and an iterkey for the rest",
    tags=("sources",),
    params={"chunk_size": CHUNK},
    responses={200: ref("RecordPage"), 400: BAD_CHUNK, 404: NO_SOURCE, 503: BUSY},
)
async def records_first(request: web.Request) -> web.Response:
    source, owner = _source(request)
    size = params.positive_int(request, "chunk_size")
    chunk, iterkey = await request.app[CURSORS].start(owner, source.reader(), size)
    return page_response(chunk, iterkey)


@operation(
    "The next chunk of records of an iterkey",
    tags=("sources",),
    params={"chunk_size": CHUNK},
    responses={200: ref("RecordPage"), 400: BAD_CHUNK, 404: NO_ITERKEY, 503: BUSY},
)
async def records_next(request: web.Request) -> web.Response:
    _, owner = _source(request)
    size = params.positive_int(request, "chunk_size")
    iterkey = request.match_info["iterkey"]
    chunk, next_iterkey = await request.app[CURSORS].resume(owner, iterkey, size)
    return page_response(chunk, next_iterkey)


@operation(
    "Release an iterkey before it expires",
    tags=("sources",),
    responses={200: OK_SCHEMA, 404: NO_ITERKEY},
)
async def records_release(request: web.Request) -> web.Response:
    _, owner = _source(request)
    await request.app[CURSORS].release(owner, request.match_info["iterkey"])
    return ok()


@operation(
    "Every record, streamed as NDJSON (one JSON record a line)",
    tags=("sources",),
    responses={
        200: Response("One record a line", {"application/x-ndjson": {"type": "string"}}),
        404: NO_SOURCE,
        406: "The Accept header rules out application/x-ndjson",
        503: BUSY,
    },
)
async def records_stream(request: web.Request) -> web.StreamResponse:
    """Every record, one JSON object a line, read and written a chunk at a time."""
    source, _ = _source(request)
    accept = request.headers.get("Accept", "*/*")
    if not any(kind in accept for kind in (NDJSON_TYPE, "*/*", "application/*")):
        raise ServiceError(
            f"GET /source/{{ctx}}/records streams {NDJSON_TYPE} (send that Accept header);"
            " page JSON with /source/{ctx}/records/{chunk_size}",
            status=406,
        )
    reader = source.reader()
    try:
        # The first read happens before any byte is sent, so its errors are JSON errors.
        chunk, more = await reader.read(STREAM_CHUNK)
        response = web.StreamResponse(headers={"Content-Type": NDJSON_TYPE})
        await response.prepare(request)
        try:
            await response.write(ndjson_lines(chunk))
            while more:
                chunk, more = await reader.read(STREAM_CHUNK)
                await response.write(ndjson_lines(chunk))
        except ConnectionResetError:
            return response  # the client went away; the reader closes below
        except Exception:
            # Headers are out: no error envelope can follow. Cut the connection so the
            # client sees a truncated stream rather than a complete-looking one.
            log.exception("streaming records of %s failed", request.match_info["ctx"])
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response
    finally:
        await reader.aclose()
