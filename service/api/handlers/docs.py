"""The API contract over HTTP: /openapi.json, and the pages that render it (/docs, /redoc).

The pages' files are package data (service/web/static/docs/, vendored from the swagger-ui-dist and
redoc npm packages by scripts/vendor-docs-assets): nothing is fetched from elsewhere at run time,
so the pages work offline.
"""

from __future__ import annotations

from aiohttp import web

from service.api.keys import OPENAPI
from service.api.openapi import Response, operation
from service.kernel.errors import NotFound
from service.web import DOCS_ASSETS

DOCS_DIR = DOCS_ASSETS
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# Only the shipped files, found once: a name is looked up, never resolved as a path.
ASSETS = {
    path.name: path
    for path in (DOCS_DIR.iterdir() if DOCS_DIR.is_dir() else ())
    if path.suffix in (".js", ".css")
}
# Both pages load only this server's files. Swagger UI and ReDoc set inline styles, and ReDoc
# runs its search in a worker made from a blob.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:;"
        " connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@operation(
    "This API's OpenAPI 3.1 document",
    tags=("meta",),
    responses={200: Response("The spec", {"application/json": {"type": "object"}})},
)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI].json(), content_type="application/json")


def _file(name: str) -> web.FileResponse:
    path = DOCS_DIR / name
    content_type = CONTENT_TYPES[path.suffix]
    return web.FileResponse(path, headers={**HEADERS, "Content-Type": content_type})


async def swagger_ui(request: web.Request) -> web.FileResponse:
    return _file("swagger.html")


async def redoc(request: web.Request) -> web.FileResponse:
    return _file("redoc.html")


async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise NotFound(f"No docs asset {name!r}")
    return _file(name)
