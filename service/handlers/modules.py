"""Run module functions over files in the upload dir."""

from __future__ import annotations

from aiohttp import web

from service.jsonio import json_response, read_json_object
from service.keys import EXECUTOR, SANDBOX, SETTINGS, STORE
from service.modules import run_function


async def run(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    result = await run_function(
        store=request.app[STORE],
        executor=request.app[EXECUTOR],
        sandbox=request.app[SANDBOX],
        timeout=request.app[SETTINGS].module_timeout,
        ctx_label=request.match_info["ctx"],
        function_name=request.match_info["function"],
        body=body,
    )
    return json_response(result)
