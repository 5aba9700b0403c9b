"""/service/upload and /service/files: the upload directory over HTTP."""

from __future__ import annotations

import asyncio
import datetime
import mimetypes
from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from service.api.jsonio import json_response, ok
from service.api.keys import SETTINGS, UPLOADS
from service.api.openapi import OK_SCHEMA, Body, Response, operation
from service.api.openapi.shapes import FILE_PATH, NO_UPLOADS
from service.engine.uploads import FileEntry, UploadDir
from service.kernel.errors import BadRequest, NotAllowed, PayloadTooLarge, RequestTimeout

CHUNK_SIZE = 256 * 1024
# Each write is a thread-pool round trip (aiofiles): handing the writer 1 MiB at a time instead
# of every 256 KiB chunk cut the server's CPU per 256 MiB upload by ~40% (benchmarks/run.py).
WRITE_SIZE = 1024 * 1024
# Room for the multipart boundaries and part headers around the file itself when comparing a
# declared Content-Length with -upload-max-size.
MULTIPART_OVERHEAD = 64 * 1024


def _uploads(request: web.Request, refusal: str) -> UploadDir:
    uploads = request.app[UPLOADS]
    if uploads is None:
        raise NotAllowed(refusal)
    return uploads


@operation(
    "Upload a file into the upload directory (multipart field 'file')",
    tags=("files",),
    params={"path": FILE_PATH},
    query={"overwrite": {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}},
    body=Body(
        {
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "contentMediaType": "application/octet-stream"}
                },
                "required": ["file"],
            }
        }
    ),
    responses={
        200: Response(
            "Saved (new or replacing a file of that name)", {"application/json": OK_SCHEMA}
        ),
        400: "No 'file' field, a bad path or a bad overwrite flag",
        408: "The upload received nothing for -upload-idle-timeout seconds",
        409: "The file exists and overwrite=false, or it is being uploaded right now",
        501: NO_UPLOADS,
    },
)
async def upload(request: web.Request) -> web.Response:
    uploads = _uploads(request, "Uploads not allowed")
    target = uploads.target(request.match_info["path"])
    overwrite = _flag(request, "overwrite", default=True)
    declared = request.content_length
    if declared is not None and declared > uploads.max_size + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"Upload larger than {uploads.max_size} bytes (-upload-max-size)")
    part = await _file_part(request)
    idle = request.app[SETTINGS].upload_idle_timeout
    await uploads.save(target, _chunks(part, idle), overwrite=overwrite)
    # 200 whether the file is new or replaced one: the original's status, which its clients check.
    return ok()


@operation(
    "List the files in the upload directory",
    tags=("files",),
    query={"details": {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}},
    responses={
        200: {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "filename": {"type": "string"},
                    "size": {"type": "integer", "minimum": 0},
                    "modified": {"type": "string", "format": "date-time"},
                },
                "required": ["filename", "size"],
            },
        },
        400: "details is not true or false",
        501: NO_UPLOADS,
    },
)
async def list_files(request: web.Request) -> web.Response:
    uploads = _uploads(request, "File listing not allowed")
    # Opt-in, so the listing existing clients compare stays exactly as it was.
    details = _flag(request, "details", default=False)
    entries = await uploads.listing()
    return json_response([_entry(e, details=details) for e in entries])


def _entry(entry: FileEntry, *, details: bool) -> dict[str, object]:
    out: dict[str, object] = {"filename": entry.filename, "size": entry.size}
    if details:
        when = datetime.datetime.fromtimestamp(entry.modified, datetime.timezone.utc)
        out["modified"] = when.isoformat(timespec="seconds").replace("+00:00", "Z")
    return out


@operation(
    "Download a file of the upload directory",
    tags=("files",),
    params={"path": FILE_PATH},
    responses={
        200: Response("The file", {"application/octet-stream": {}}),
        400: "The path leaves the upload directory",
        404: "File not found",
        501: NO_UPLOADS,
    },
)
async def download(request: web.Request) -> web.Response:
    uploads = _uploads(request, "File download not allowed")
    # Opened without following links (a directory swapped for a symlink after the check is
    # refused), then streamed from that descriptor, which the response closes.
    path, file = await uploads.open(request.match_info["path"])
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return web.Response(
        body=file,
        content_type=content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(path.name, safe='')}"
        },
    )


@operation(
    "Delete a file of the upload directory",
    tags=("files",),
    params={"path": FILE_PATH},
    responses={
        200: OK_SCHEMA,
        400: "The path leaves the upload directory or names a directory",
        404: "File not found",
        501: NO_UPLOADS,
    },
)
async def delete(request: web.Request) -> web.Response:
    uploads = _uploads(request, "File deletion not allowed")
    await uploads.delete(request.match_info["path"])
    return ok()


async def _file_part(request: web.Request) -> BodyPartReader:
    """The multipart part named ``file``; parts before it are skipped without being kept."""
    if request.content_type != "multipart/form-data":
        raise BadRequest("Missing 'file' field")
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name == "file":
                return part
            await part.release()
    except (ValueError, HttpProcessingError) as exc:
        raise _malformed(exc) from None
    raise BadRequest("Missing 'file' field")


def _malformed(exc: ValueError | HttpProcessingError) -> BadRequest:
    """A multipart body aiohttp cannot parse (an over-long or excess part header line, a
    truncated part): the client's fault, named."""
    detail = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    detail = " ".join(str(detail).split())
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return BadRequest(f"Malformed multipart body: {detail}")


async def _chunks(part: BodyPartReader, idle: float) -> AsyncIterator[bytes]:
    buffer = bytearray()
    while chunk := await _read_chunk(part, idle):
        buffer += chunk
        if len(buffer) >= WRITE_SIZE:
            yield bytes(buffer)
            buffer.clear()
    if not part.at_eof():
        # The body stopped without the part's boundary: a truncated upload, never saved as
        # if it were complete.
        raise BadRequest("Malformed multipart body: it ends before the file part's boundary")
    if buffer:
        yield bytes(buffer)


async def _read_chunk(part: BodyPartReader, idle: float) -> bytes:
    """The next bytes of the part; a client gone quiet without closing is given up on."""
    try:
        return await asyncio.wait_for(part.read_chunk(CHUNK_SIZE), idle)
    except (ValueError, HttpProcessingError) as exc:
        raise _malformed(exc) from None
    except asyncio.TimeoutError:
        raise RequestTimeout(
            f"Upload received nothing for {idle:g} s (-upload-idle-timeout)"
        ) from None


def _flag(request: web.Request, name: str, *, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(f"{name} must be true or false, got {raw!r}")
