"""Request headers whose bytes are not text: refused with 400 before anything reads them.

aiohttp hands header values to Python decoded as UTF-8 with ``surrogateescape``, so bytes that
are not UTF-8 become lone surrogates, which every later ``encode()`` (a JWT library, a JSON
encoder, a log handler) refuses with an exception nobody expects from a header. Checking the
raw bytes once, in the error middleware, answers every such request with the JSON envelope on
every route, before and after login, whatever reads the header later. Printable ASCII, the
common case, costs one C-level check a header.
"""

from __future__ import annotations

from aiohttp import web

from service.kernel.errors import BadRequest


def check_headers(request: web.Request) -> None:
    """400 if a header's name or value is not UTF-8 (aiohttp's parser already refuses control
    characters)."""
    for name, value in request.raw_headers:
        if not value.isascii() or not name.isascii():
            _check_text(name, value)


def _check_text(name: bytes, value: bytes) -> None:
    try:
        name.decode("ascii")
        value.decode("utf-8")
    except UnicodeDecodeError:
        shown = name.decode("ascii", "replace")[:64]
        raise BadRequest(f"Header {shown!r} is not valid UTF-8") from None
