"""The Open Inference Protocol (KServe V2 REST): /v2 health, metadata and infer (docs/inference.md).

Every opened model context is a model of the protocol, named by its context label.
"""

from __future__ import annotations

from aiohttp import web

from service.api.jsonio import json_response, read_body
from service.api.keys import BATCHING, READINESS, STORE, VERSIONS
from service.api.openapi import Body, Response, operation
from service.api.openapi.shapes import NO_MODEL
from service.engine.inference import protocol
from service.kernel.errors import Unavailable
from service.sdk.base import ModelContext

TAGS = ("inference",)
_VERSION_PARAM = {"version": {"type": "string", "description": "The model's version"}}
_TENSOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string", "enum": ["BOOL", "INT64", "FP32", "FP64", "BYTES"]},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "data": {"type": "array"},
        "parameters": {"type": "object"},
    },
    "required": ["name", "datatype", "shape"],
}
_TENSOR_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["name", "datatype", "shape"],
}
MODEL_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": _TENSOR_META},
        "outputs": {"type": "array", "items": _TENSOR_META},
    },
    "required": ["name", "platform", "inputs", "outputs"],
}
INFER_REQUEST = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": _TENSOR, "minItems": 1},
        "outputs": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["inputs"],
}
INFER_RESPONSE = {
    "type": "object",
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {"type": "array", "items": _TENSOR},
    },
    "required": ["model_name", "outputs"],
}
_BINARY = "application/octet-stream"
_BINARY_NOTE = (
    "the JSON header, then the binary tensor data; the header "
    f"{protocol.HEADER_LENGTH} gives the JSON part's length"
)


@operation(
    "Open Inference Protocol: the server's name, version and extensions",
    tags=TAGS,
    responses={
        200: {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name", "version", "extensions"],
        }
    },
)
async def server_metadata(request: web.Request) -> web.Response:
    return json_response(protocol.server_metadata())


@operation(
    "Open Inference Protocol: liveness (as /health/live)",
    tags=TAGS,
    responses={200: {"type": "object", "properties": {"live": {"const": True}}}},
    common=False,
)
async def server_live(request: web.Request) -> web.Response:
    return json_response({"live": True})


@operation(
    "Open Inference Protocol: readiness (as /health/ready)",
    tags=TAGS,
    responses={
        200: {"type": "object", "properties": {"ready": {"const": True}}},
        503: "Not ready: starting, or shutting down",
    },
    common=False,
)
async def server_ready(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    if not readiness.ready:
        raise Unavailable(f"Not ready: {readiness.reason}")
    return json_response({"ready": True})


@operation(
    "Open Inference Protocol: a model context's inputs and outputs (from its features)",
    tags=TAGS,
    params=_VERSION_PARAM,
    responses={200: MODEL_METADATA, 404: NO_MODEL + ", or no such version"},
)
async def model_metadata(request: web.Request) -> web.Response:
    return json_response(protocol.model_metadata(*await _model(request), await _versions(request)))


@operation(
    "Open Inference Protocol: whether a model context is ready (trained)",
    tags=TAGS,
    params=_VERSION_PARAM,
    responses={
        200: {
            "type": "object",
            "properties": {"name": {"type": "string"}, "ready": {"const": True}},
        },
        404: NO_MODEL + ", or no such version",
        503: "The model is not trained",
    },
)
async def model_ready(request: web.Request) -> web.Response:
    return json_response(protocol.model_ready(*await _model(request)))


@operation(
    "Open Inference Protocol: predict the rows of the input tensors",
    description="JSON tensors, or with the binary tensor data extension " + _BINARY_NOTE + ".",
    tags=TAGS,
    params=_VERSION_PARAM,
    body=Body({"application/json": INFER_REQUEST, _BINARY: {"type": "string", "format": "binary"}}),
    responses={
        200: Response(
            "The outputs: JSON, or with binary outputs " + _BINARY_NOTE,
            {"application/json": INFER_RESPONSE, _BINARY: {"type": "string", "format": "binary"}},
            headers={protocol.HEADER_LENGTH: {"type": "integer"}},
        ),
        400: "Not an inference request, tensors that do not fit the model, or not trained",
        404: NO_MODEL + ", or no such version",
    },
)
async def infer(request: web.Request) -> web.Response:
    name, model = await _model(request)
    body = await read_body(request)
    header, binary = protocol.split_body(body, request.headers.get(protocol.HEADER_LENGTH))
    answer = await protocol.infer(
        name,
        model,
        header,
        binary,
        request.app[BATCHING].predict,
        request.match_info.get("version"),
    )
    length = answer.header_length
    if length is None:
        return web.Response(body=answer.header, content_type="application/json")
    response = web.Response(body=answer.header + answer.binary, content_type=_BINARY)
    response.headers[protocol.HEADER_LENGTH] = str(length)
    return response


async def _model(request: web.Request) -> tuple[str, ModelContext]:
    """The model and, with /versions/{version}, that version of it (a number or an alias)."""
    name = request.match_info["name"]
    model = request.app[STORE].model(name)
    version = request.match_info.get("version")
    if version is not None:
        model = await request.app[VERSIONS].pinned(model, version)
    return name, model


async def _versions(request: web.Request) -> list[str]:
    model = request.app[STORE].model(request.match_info["name"])
    return [str(n) for n in await request.app[VERSIONS].version_numbers(model)]
