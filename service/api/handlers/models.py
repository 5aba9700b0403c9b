"""Model routes: train, predict (at once or paged by iterkey), and the older accuracy route."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.api import asyncwork as tasks_http
from service.api import params
from service.api.handlers import versions
from service.api.handlers.sources import page_response
from service.api.handlers.tasks import async_predict
from service.api.jsonio import OK, ok, read_json, read_json_list, read_json_object
from service.api.keys import BATCHING, CURSORS, EXECUTOR, REGISTRY, STORE, VERSIONS
from service.api.openapi import OK_SCHEMA, Body, operation
from service.api.openapi.schemas import ref
from service.api.openapi.shapes import BAD_CHUNK, CHUNK, NO_ITERKEY, NO_MODEL, NO_SOURCE
from service.engine import models
from service.engine.cursors import Owner
from service.engine.tasks.executor import runner as executor_runner
from service.kernel.errors import BadRequest
from service.sdk.progress import Reporter
from service.sdk.readers import Reader
from service.sdk.records import Record


@operation(
    "Train a model context on the records of source contexts",
    tags=("models",),
    body=Body.json(ref("SourceLabels")),
    responses={
        200: OK_SCHEMA,
        400: "The records do not fit the model",
        403: "The model is shared (an operator preload): only admins train it",
        404: NO_SOURCE,
    },
    runs_async=True,
)
async def train(request: web.Request) -> web.Response:
    asynchronous = tasks_http.wants_async(request)
    store = request.app[STORE]
    ctx_label = request.match_info["ctx"]
    model = store.changeable_model(ctx_label)
    labels = models.source_labels(await read_json_list(request))
    sources = models.sources(store, labels)
    runner = executor_runner(request.app[EXECUTOR])
    kept = request.app[VERSIONS]

    async def work(reporter: Reporter) -> Any:
        # A model with a location keeps what this training saved as its next version.
        await models.train_from(model, sources, runner, lambda: kept.kept(model, labels))
        store.trained(ctx_label, model, labels)
        return OK

    return await tasks_http.respond(request, asynchronous, "train", f"model/{ctx_label}", work)


@operation(
    "Score a model with its own natural scorer (the PyPI release's route)",
    tags=("models",),
    body=Body.json(ref("SourceLabels")),
    responses={200: ref("Accuracy"), 400: "Model not trained", 404: NO_SOURCE},
    runs_async=True,
)
async def accuracy(request: web.Request) -> web.Response:
    """The PyPI release's scoring route: scores with the model's natural scorer."""
    asynchronous = tasks_http.wants_async(request)
    store = request.app[STORE]
    ctx_label = request.match_info["ctx"]
    model = await versions.model(request, ctx_label)
    sources = models.sources(store, models.source_labels(await read_json_list(request)))
    registry = request.app[REGISTRY]
    runner = executor_runner(request.app[EXECUTOR])

    async def work(reporter: Reporter) -> Any:
        return {"accuracy": await models.natural_score(registry, model, sources, runner)}

    return await tasks_http.respond(request, asynchronous, "accuracy", f"model/{ctx_label}", work)


@operation(
    "Predict the body's records, or every record of ?source=; chunk_size 0: all at once",
    tags=("models",),
    params={"chunk_size": {"type": "integer", "minimum": 0}},
    query={"source": {"type": "string", "description": "A source context to predict"}},
    body=Body.json(
        {"type": "object", "additionalProperties": ref("RecordIn")},
        required=False,
        description="{key: record} to predict; leave it out with ?source=",
    ),
    responses={
        200: ref("RecordPage"),
        400: "Model not trained, or records that do not fit it",
        404: NO_MODEL,
    },
    runs_async=True,
    async_responses={501: "?source= with ?async=1 writes a file: it needs -upload-dir"},
)
async def predict(request: web.Request) -> web.Response:
    """Predict the body's records, or with ``?source=CTX`` every record of that context.

    ``chunk_size`` 0 answers everything at once; otherwise the first chunk and an iterkey.
    """
    asynchronous = tasks_http.wants_async(request)
    ctx_label = request.match_info["ctx"]
    store = request.app[STORE]
    model = await versions.model(request, ctx_label)
    chunk_size = params.positive_int(request, "chunk_size", minimum=0)
    source_label = request.query.get("source")
    if asynchronous:
        return await async_predict(request, ctx_label, model, chunk_size, source_label)
    if source_label is None:
        body = models.records_in_body(await read_json_object(request))
        if chunk_size == 0:
            # Batched with other requests' records when -max-batch-size/-max-batch-time say so.
            return page_response(await request.app[BATCHING].predict(model, body), None)
        reader: Reader[list[Record]] = models.BodyPredictReader(model, body)
    else:
        (source,) = models.sources(store, [source_label])
        if await read_json(request, default={}) != {}:
            raise BadRequest("Give records in the body or ?source=, not both")
        if chunk_size == 0:
            records = models.records_of([source])
            return page_response(await models.predict_all(model, records), None)
        reader = models.SourceBoundReader(
            models.SourcePredictReader(model, source.reader()), store, source_label, source
        )
    chunk, iterkey = await request.app[CURSORS].start(_owner(ctx_label), reader, chunk_size)
    return page_response(chunk, iterkey)


@operation(
    "The next chunk of predictions of an iterkey",
    tags=("models",),
    params={"chunk_size": CHUNK},
    responses={200: ref("RecordPage"), 400: BAD_CHUNK, 404: NO_ITERKEY},
)
async def predict_next(request: web.Request) -> web.Response:
    ctx_label = request.match_info["ctx"]
    await versions.model(request, ctx_label)
    chunk_size = params.positive_int(request, "chunk_size")
    iterkey = request.match_info["iterkey"]
    chunk, next_iterkey = await request.app[CURSORS].resume(_owner(ctx_label), iterkey, chunk_size)
    return page_response(chunk, next_iterkey)


@operation(
    "Release a predictions iterkey",
    tags=("models",),
    responses={200: OK_SCHEMA, 404: NO_ITERKEY},
)
async def predict_release(request: web.Request) -> web.Response:
    ctx_label = request.match_info["ctx"]
    await versions.model(request, ctx_label)
    await request.app[CURSORS].release(_owner(ctx_label), request.match_info["iterkey"])
    return ok()


def _owner(ctx_label: str) -> Owner:
    return ("model", ctx_label)
