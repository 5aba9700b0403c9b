"""Run module functions over files in the upload dir."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.jsonio import read_json_object
from service.keys import EXECUTOR, SANDBOX, SETTINGS, STORE
from service.modules import prepare_run
from service.plugins.progress import Reporter
from service.tasks import http as tasks_http


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
