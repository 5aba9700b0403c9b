"""The API version: every route of the table also answers under ``/v1``.

The unversioned paths stay because DFFML's clients call them; the spec documents the ``/v1``
ones, so a later ``/v2`` can change a route's contract while ``/v1`` keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiohttp import web

API_VERSION = "1"
API_PREFIX = "/v" + API_VERSION


def versioned(routes: Iterable[web.RouteDef]) -> list[web.RouteDef]:
    """The ``/v1`` alias of each route, served by the same handler."""
    return [
        web.RouteDef(route.method, API_PREFIX + route.path, route.handler, dict(route.kwargs))
        for route in routes
    ]


_PREFIX = re.compile(r"^/v\d+(?=/)")


def unprefixed(routes: Iterable[web.RouteDef]) -> list[web.RouteDef]:
    """Routes of a protocol with its version in its own paths (``/v2/models/...``) as the guard
    names them: it takes ``/vN/...`` for the route after the prefix, so its table holds them
    without it (``/models/{name}/infer``: kind ``model``, the name, action ``infer``)."""
    return [
        web.RouteDef(route.method, _PREFIX.sub("", route.path, count=1), route.handler, {})
        for route in routes
    ]
