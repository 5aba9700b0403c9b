"""-static: a directory served at / after the API routes, sandboxed like uploads; -js: /api.js."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from service.kernel.errors import NotFound, PathTraversal
from service.kernel.sandbox import Sandbox
from service.web import JS_CLIENT


def static_handler(root: Sandbox) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"] or "index.html"
        try:
            path = root.resolve(relative)
        except PathTraversal:
            raise NotFound("404: Not Found") from None
        if path.is_dir():
            if not request.path.endswith("/"):
                # index.html's relative links (scripts, styles) resolve against the directory
                # only when its URL ends in "/".
                url = request.rel_url
                raise web.HTTPMovedPermanently(url.with_path(url.path + "/").with_query(url.query))
            path = path / "index.html"
        if not path.is_file():
            raise NotFound("404: Not Found")
        return web.FileResponse(path)

    return serve


async def js_client(request: web.Request) -> web.FileResponse:
    return web.FileResponse(JS_CLIENT, headers={"Content-Type": "text/javascript; charset=utf-8"})
