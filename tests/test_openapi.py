"""The OpenAPI document: valid 3.1, generated from the route table, served at /openapi.json."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from service.api.openapi import Body, operation
from service.api.openapi.generator import UndocumentedRoute, build_spec, operations, template
from service.api.openapi.versions import API_PREFIX
from service.plugins.registry import Registry
from service.routes import API_ROUTES
from service.settings import Settings
from tests.conftest import MakeClient
from tests.fakes import fake_registry


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_spec(API_ROUTES, Registry.from_entry_points(), Settings(), strict=True)


def test_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_route_has_documented_responses() -> None:
    """strict: a route in API_ROUTES without an @operation (or without a success response)
    fails here, naming the route and docs/openapi.md."""
    build_spec(API_ROUTES, Registry.empty(), Settings(), strict=True)


def test_a_route_without_a_declaration_is_caught() -> None:
    async def undocumented(request: web.Request) -> web.Response:
        return web.Response()

    @operation("Only errors", responses={404: "Nothing here"})
    async def no_success(request: web.Request) -> web.Response:
        return web.Response()

    routes = [*API_ROUTES, web.get("/nowhere", undocumented), web.get("/x/{y}", no_success)]
    with pytest.raises(UndocumentedRoute) as caught:
        build_spec(routes, Registry.empty(), Settings(), strict=True)
    assert "GET /nowhere" in str(caught.value)
    assert "GET /x/{y}: no success response" in str(caught.value)
    # Not strict (the running server): still a valid document, the route marked as such.
    loose = build_spec(routes, Registry.empty(), Settings())
    validate(loose)
    assert "(undocumented)" in loose["paths"]["/v1/nowhere"]["get"]["summary"]


def test_every_route_is_in_the_spec_under_v1(spec: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(spec)}
    for route in API_ROUTES:
        assert (route.method, API_PREFIX + template(route.path)) in documented, route


def test_path_parameters_come_from_the_template(spec: dict[str, Any]) -> None:
    for _method, path, op in operations(spec):
        named = re.findall(r"\{(\w+)\}", path)
        declared = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        assert declared == named, path
    files = spec["paths"]["/v1/service/files/{path}"]["get"]
    assert [p["name"] for p in files["parameters"]] == ["path"]
    chunk = spec["paths"]["/v1/source/{ctx}/records/{chunk_size}"]["get"]["parameters"][1]
    assert chunk["schema"] == {"type": "integer", "minimum": 1}


def test_errors_are_the_one_envelope(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    for _method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
    # A JSON body's reader may refuse it (400) or find it too large (413).
    update = spec["paths"]["/v1/source/{ctx}/update/{key}"]["post"]["responses"]
    assert {"400", "413", "500"} <= set(update)
    # No 429 without -rate-limit: the spec promises only what the server can answer.
    assert "429" not in update


def test_configure_bodies_come_from_each_plugins_config(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    csv = schemas["source.csv"]
    assert csv["properties"]["filename"]["type"] == "string"
    assert "filename" in csv["required"]
    assert csv["additionalProperties"] is False
    nested = schemas["source.csv.nested"]["properties"]["source"]["properties"]["config"]
    assert nested["properties"]["filename"]["required"] == ["plugin"]
    # Every installed plugin: its own configure path, its body flat or nested.
    registry = Registry.from_entry_points()
    for kind in ("source", "model", "scorer", "module"):
        for name in registry.names(kind):
            op = spec["paths"][f"/v1/configure/{kind}/{name}/{{label}}"]["post"]
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert body == {
                "anyOf": [
                    {"$ref": f"#/components/schemas/{kind}.{name}"},
                    {"$ref": f"#/components/schemas/{kind}.{name}.nested"},
                ]
            }
    generic = spec["paths"]["/v1/configure/{kind}/{plugin}/{label}"]["post"]
    assert generic["requestBody"]["required"] is False


def test_a_plugins_declared_fields_become_its_schema() -> None:
    spec = build_spec(API_ROUTES, fake_registry(), Settings(), strict=True)
    validate(spec)
    fake = spec["components"]["schemas"]["source.fake"]
    props = fake["properties"]
    assert fake["required"] == ["filename"]
    assert props["readwrite"] == {
        "type": "boolean",
        "description": "allow updates",
        "default": False,
    }
    assert props["count"]["type"] == "integer"
    assert props["ratio"]["type"] == "number"
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "tags",
        "default": [],
    }
    assert props["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]


def test_declared_bodies_and_queries() -> None:
    @operation(
        "Make a thing",
        responses={201: {"type": "object"}, 409: "Exists"},
        body=Body.json({"type": "object", "properties": {"name": {"type": "string"}}}),
        query={"dry_run": {"type": "boolean"}},
        params={"n": {"type": "integer"}},
    )
    async def make(request: web.Request) -> web.Response:
        return web.Response()

    spec = build_spec([web.post("/things/{n}", make)], Registry.empty(), Settings(), strict=True)
    validate(spec)
    op = spec["paths"]["/v1/things/{n}"]["post"]
    assert [(p["name"], p["in"], p["schema"]) for p in op["parameters"]] == [
        ("n", "path", {"type": "integer"}),
        ("dry_run", "query", {"type": "boolean"}),
    ]
    assert set(op["responses"]) == {"201", "400", "409", "413", "500"}
    assert op["responses"]["409"]["description"] == "Exists"


async def test_openapi_json_is_served_and_v1_paths_answer(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    served = await response.json()
    validate(served)
    assert served == await (await client.get("/v1/openapi.json")).json()
    health = await (await client.get("/v1/health")).json()
    assert health["api_version"] == "1"
    assert health == await (await client.get("/health")).json()
    # An alias is the same route: same errors, same bodies.
    missing = await client.get("/v1/source/nope/record/1")
    assert missing.status == 404
    assert await missing.json() == {"error": "Source not loaded"}
