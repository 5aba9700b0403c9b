"""Model routes: train, predict, and the older accuracy route."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from service import models
from service.errors import BadRequest
from service.handlers import params
from service.jsonio import json_response, ok, read_json, read_json_list, read_json_object
from service.keys import REGISTRY, STORE
from service.plugins.base import Record


async def train(request: web.Request) -> web.Response:
    store = request.app[STORE]
    model = store.model(request.match_info["ctx"])
    labels = models.source_labels(await read_json_list(request))
    await models.train(model, models.records_of(models.sources(store, labels)))
    return ok()


async def accuracy(request: web.Request) -> web.Response:
    """The PyPI release's scoring route: scores with the model's natural scorer."""
    store = request.app[STORE]
    model = store.model(request.match_info["ctx"])
    labels = models.source_labels(await read_json_list(request))
    records = models.records_of(models.sources(store, labels))
    value = await models.natural_score(request.app[REGISTRY], model, records)
    return json_response({"accuracy": value})


async def predict(request: web.Request) -> web.Response:
    model = request.app[STORE].model(request.match_info["ctx"])
    chunk_size = params.positive_int(request, "chunk_size", minimum=0)
    if chunk_size != 0:
        raise BadRequest("chunk_size must be 0: paged prediction is not available yet")
    records = await _records_to_predict(request)
    return json_response({"iterkey": None, "records": await models.predict_all(model, records)})


async def _records_to_predict(request: web.Request) -> AsyncIterator[Record]:
    """The body's records, or with ``?source=CTX`` every record of that source context."""
    source_label = request.query.get("source")
    if source_label is None:
        body = await read_json_object(request)
        return models.records_from(models.records_in_body(body))
    source = request.app[STORE].source(source_label)
    if await read_json(request, default={}) != {}:
        raise BadRequest("Give records in the body or ?source=, not both")
    return models.records_of([source])
