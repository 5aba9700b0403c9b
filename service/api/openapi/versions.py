"""The API version: every route of the table also answers under ``/v1``.

The unversioned paths stay because DFFML's clients call them; the spec documents the ``/v1``
ones, so a later ``/v2`` can change a route's contract while ``/v1`` keeps it.
"""

from __future__ import annotations

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
