"""GET /ui/: the dashboard, files shipped in the package (service/web/ui/), and its /api.js.

The page loads the JavaScript client as ``/ui/api.js`` (the same file as ``/api.js``) so the
dashboard works without -js and behind a proxy that mounts the service under a prefix.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from service.kernel.errors import NotFound, PathTraversal
from service.kernel.sandbox import Sandbox
from service.web import DASHBOARD, JS_CLIENT

UI_ROOT = DASHBOARD
_FILES = Sandbox(UI_ROOT)

# Only these kinds of file are served, each with its type stated rather than guessed from the
# platform's mime.types (an ES module served as text/plain does not run).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# Everything the page needs comes from this server; nothing inline, nothing from a CDN.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
        " connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none';"
        " form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def to_index(request: web.Request) -> web.StreamResponse:
    # index.html's relative links resolve against the directory only when the URL ends in "/".
    url = request.rel_url
    raise web.HTTPMovedPermanently(url.with_path(url.path + "/").with_query(url.query))


async def serve(request: web.Request) -> web.StreamResponse:
    relative = request.match_info["path"] or "index.html"
    path = JS_CLIENT if relative == "api.js" else _shipped(relative)
    headers = {**HEADERS, "Content-Type": CONTENT_TYPES[path.suffix]}
    return web.FileResponse(path, headers=headers)


def _shipped(relative: str) -> Path:
    try:
        path = _FILES.resolve(relative)
    except PathTraversal:
        raise NotFound("404: Not Found") from None
    if path.suffix not in CONTENT_TYPES or not path.is_file():
        raise NotFound("404: Not Found")
    return path
