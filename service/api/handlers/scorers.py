"""Scorer routes: how well a model predicts the records of source contexts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.api import asyncwork as tasks_http
from service.api.handlers import versions
from service.api.jsonio import read_json_list
from service.api.keys import EXECUTOR, STORE
from service.api.openapi import Body, operation
from service.api.openapi.schemas import ref
from service.engine import models
from service.engine.tasks.executor import runner as executor_runner
from service.kernel import scope
from service.sdk.progress import Reporter


@operation(
    "Score a model context with a scorer context over source contexts",
    tags=("scorers",),
    body=Body.json(ref("SourceLabels")),
    responses={
        200: ref("Accuracy"),
        400: "Model not trained, or records the scorer cannot use",
        404: "No such scorer, model or source context",
    },
    runs_async=True,
)
async def score(request: web.Request) -> web.Response:
    asynchronous = tasks_http.wants_async(request)
    store = request.app[STORE]
    scorer_label, model_label = request.match_info["scorer_ctx"], request.match_info["model_ctx"]
    scorer = store.scorer(scorer_label)
    scope.require("model", model_label, "accuracy")  # scoring a model is its accuracy
    model = await versions.model(request, model_label)
    sources = models.sources(store, models.source_labels(await read_json_list(request)))
    runner = executor_runner(request.app[EXECUTOR])

    async def work(reporter: Reporter) -> Any:
        return {"accuracy": await models.score_from(scorer, model, sources, runner)}

    target = f"scorer/{scorer_label}/model/{model_label}"
    return await tasks_http.respond(request, asynchronous, "score", target, work)
