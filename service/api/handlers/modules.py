"""Run module functions over files in the upload dir."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.api import asyncwork as tasks_http
from service.api.jsonio import read_json_object
from service.api.keys import EXECUTOR, SANDBOX, SETTINGS, STORE
from service.api.openapi import Body, operation
from service.api.openapi.shapes import NO_UPLOADS
from service.engine.modules import prepare_run
from service.sdk.progress import Reporter


@operation(
    "Run a function of a module context over files of the upload directory",
    tags=("modules",),
    body=Body.json(
        {
            "type": "object",
            "properties": {
                "files": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "options": {"type": "object"},
            },
            "required": ["files"],
            "additionalProperties": False,
        }
    ),
    responses={
        200: {
            "type": "object",
            "properties": {
                "run": {"type": "string"},
                "function": {"type": "string"},
                "output_dir": {"type": "string"},
                "files": {"type": "array", "items": {"type": "object"}},
                "logs": {"type": "array"},
            },
            "required": ["run", "function", "output_dir", "files"],
        },
        400: "Bad options, or input files that are missing or of the wrong type",
        404: "No such module context or function",
        409: "'outputs' in the upload directory is a file",
        501: NO_UPLOADS,
        503: "The server is shutting down",
        504: "The function exceeded -module-timeout and was stopped",
    },
    runs_async=True,
)
async def run(request: web.Request) -> web.Response:
    asynchronous = tasks_http.wants_async(request)
    body = await read_json_object(request)
    ctx_label, function_name = request.match_info["ctx"], request.match_info["function"]
    execute = await prepare_run(
        store=request.app[STORE],
        executor=request.app[EXECUTOR],
        sandbox=request.app[SANDBOX],
        timeout=request.app[SETTINGS].module_timeout,
        ctx_label=ctx_label,
        function_name=function_name,
        body=body,
    )

    async def work(reporter: Reporter) -> Any:
        return await execute()

    target = f"module/{ctx_label}/{function_name}"
    return await tasks_http.respond(request, asynchronous, "module", target, work)
