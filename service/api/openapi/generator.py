"""Build the OpenAPI 3.1 document from the route table, each handler's declaration and the plugins.

Nothing here is kept by hand per route: paths come from ``API_ROUTES`` (aiohttp's templates are
OpenAPI's, less the ``:regex`` part), path parameters from the template, operations from the
``@operation`` on each handler (:mod:`service.api.openapi.declare`), configure bodies from every
installed plugin's ``CONFIG``, and error responses from the one envelope
(:mod:`service.api.middlewares`). A route without a declaration is an error in ``strict`` mode
(the tests) and a bare ``default`` response otherwise, so the server never fails to answer
``/openapi.json`` for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web

from service import __version__
from service.api.openapi.common import COMMON_ERRORS
from service.api.openapi.declare import (
    ERROR_SCHEMA,
    JSON_TYPE,
    Body,
    Operation,
    Response,
    ResponseSpec,
    Schema,
    declared,
)
from service.api.openapi.schemas import COMPONENTS, plugin_components
from service.api.openapi.versions import API_PREFIX, API_VERSION
from service.kernel.jsoncodec import dumps
from service.plugins.registry import Registry
from service.settings import Settings

OPENAPI_VERSION = "3.1.0"
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


class UndocumentedRoute(Exception):
    pass


def template(path: str) -> str:
    """An aiohttp route path as an OpenAPI path: ``/files/{path:.*}`` -> ``/files/{path}``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def path_params(path: str) -> list[str]:
    return _PARAM.findall(path)


def build_spec(
    routes: Iterable[web.RouteDef],
    registry: Registry,
    settings: Settings,
    *,
    strict: bool = False,
    own_version: Iterable[web.RouteDef] = (),
) -> dict[str, Any]:
    """``own_version``: routes whose paths carry their protocol's own version (``/v2/...``),
    documented as they are, without the ``/v1`` prefix."""
    paths: dict[str, dict[str, Any]] = {}
    undocumented: list[str] = []
    operation_ids: set[str] = set()
    unversioned = list(own_version)
    for route in [*routes, *unversioned]:
        op = declared(route.handler)
        method = route.method.lower()
        if op is None:
            undocumented.append(f"{route.method} {route.path} ({_name(route.handler)})")
        elif not any(200 <= status < 400 for status in op.responses):
            undocumented.append(f"{route.method} {route.path}: no success response declared")
        path = template(route.path)
        if route not in unversioned:
            path = API_PREFIX + path
        operation_id = _operation_id(route, operation_ids)
        paths.setdefault(path, {})[method] = _operation(route, op, operation_id, settings, registry)
        if op is not None and op.variants is not None:
            for variant in op.variants(registry):
                concrete = template(route.path)
                for name, value in variant.values.items():
                    concrete = concrete.replace("{" + name + "}", value)
                variant_op = Operation(
                    summary=variant.summary,
                    description=variant.description,
                    responses=op.responses,
                    tags=op.tags,
                    body=variant.body,
                    params={k: v for k, v in op.params.items() if k not in variant.values},
                    query=op.query,
                    required_query=op.required_query,
                    common=op.common,
                )
                variant_route = web.RouteDef(route.method, concrete, route.handler, {})
                vid = _operation_id(variant_route, operation_ids)
                paths.setdefault(API_PREFIX + concrete, {})[method] = _operation(
                    variant_route, variant_op, vid, settings, registry
                )
    if strict and undocumented:
        raise UndocumentedRoute(
            "routes without documented responses (see docs/openapi.md): " + "; ".join(undocumented)
        )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "dffml-service-http",
            "version": __version__,
            "summary": "DFFML-style sources, models, scorers and modules over HTTP",
            "description": (
                f"API version {API_VERSION}. Every path here also answers without the "
                f"{API_PREFIX} prefix, as the DFFML HTTP service's clients call it, except the "
                "Open Inference Protocol's /v2 paths, which carry their own version. Every "
                'refusal is {"error": "message"} with its status.'
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": {**COMPONENTS, **plugin_components(registry)}},
    }


def _name(handler: Any) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', handler)}"


def _operation_id(route: web.RouteDef, taken: set[str]) -> str:
    words = re.findall(r"[A-Za-z0-9]+", template(route.path).replace("{", "by_"))
    base = "_".join([route.method.lower(), *words]) or route.method.lower()
    operation_id, n = base, 2
    while operation_id in taken:
        operation_id, n = f"{base}_{n}", n + 1
    taken.add(operation_id)
    return operation_id


def _operation(
    route: web.RouteDef,
    op: Operation | None,
    operation_id: str,
    settings: Settings,
    registry: Registry,
) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": operation_id}
    if op is None:
        out["summary"] = f"{route.method} {template(route.path)} (undocumented)"
        out["responses"] = {"default": _response(500, "Undocumented", ERROR_SCHEMA)}
        return out
    out["summary"] = op.summary
    if op.description:
        out["description"] = op.description
    if op.tags:
        out["tags"] = list(op.tags)
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": op.params.get(name, {"type": "string", "minLength": 1}),
        }
        for name in path_params(route.path)
    ]
    for name, schema in op.query.items():
        parameters.append(
            {"name": name, "in": "query", "required": name in op.required_query, "schema": schema}
        )
    if parameters:
        out["parameters"] = parameters
    body = op.body(registry) if callable(op.body) else op.body
    if body is not None:
        out["requestBody"] = _body(body)
    responses = {str(status): _response(status, spec) for status, spec in op.responses.items()}
    if body is not None and body.is_json:
        responses.setdefault("400", _response(400, "The body is not the JSON this route takes"))
    if op.common:
        for common in COMMON_ERRORS:
            if (common.needs_body and body is None) or not common.applies(settings):
                continue
            responses.setdefault(str(common.status), _error(common.description, common.headers))
    out["responses"] = dict(sorted(responses.items()))
    return out


def _body(body: Body) -> dict[str, Any]:
    out: dict[str, Any] = {
        "required": body.required,
        "content": {media: {"schema": schema} for media, schema in body.content.items()},
    }
    if body.description:
        out["description"] = body.description
    return out


def _response(status: int, spec: ResponseSpec, schema: Schema | None = None) -> dict[str, Any]:
    if isinstance(spec, Response):
        out: dict[str, Any] = {"description": spec.description}
        if spec.content is not None:
            out["content"] = {media: {"schema": s} for media, s in spec.content.items()}
        if spec.headers:
            out["headers"] = {name: {"schema": s} for name, s in spec.headers.items()}
        return out
    if isinstance(spec, str):
        if status >= 400 or schema is not None:
            return {
                "description": spec,
                "content": {JSON_TYPE: {"schema": schema or ERROR_SCHEMA}},
            }
        return {"description": spec}
    # A JSON schema: the body of this status.
    return {"description": _reason(status), "content": {JSON_TYPE: {"schema": spec}}}


def _error(description: str, headers: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    out = _response(400, description)
    if headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers
        }
    return out


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)


def operations(spec: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) for every operation in ``spec``: tests and docs pages."""
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]


class ApiSpec:
    """The running server's spec, built on first use and then kept (plugins do not change)."""

    def __init__(
        self,
        routes: Iterable[web.RouteDef],
        registry: Registry,
        settings: Settings,
        *,
        own_version: Iterable[web.RouteDef] = (),
    ):
        self._routes = list(routes)
        self._own_version = list(own_version)
        self._registry = registry
        self._settings = settings
        self._document: dict[str, Any] | None = None
        self._json: bytes | None = None

    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = build_spec(
                self._routes, self._registry, self._settings, own_version=self._own_version
            )
        return self._document

    def json(self) -> bytes:
        if self._json is None:
            self._json = dumps(self.document())
        return self._json
