"""Scorer routes: how well a model predicts the records of source contexts."""

from __future__ import annotations

from aiohttp import web

from service import models
from service.jsonio import json_response, read_json_list
from service.keys import STORE


async def score(request: web.Request) -> web.Response:
    store = request.app[STORE]
    scorer = store.scorer(request.match_info["scorer_ctx"])
    model = store.model(request.match_info["model_ctx"])
    labels = models.source_labels(await read_json_list(request))
    records = models.records_of(models.sources(store, labels))
    return json_response({"accuracy": await models.score(scorer, model, records)})
