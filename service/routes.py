"""The route table: every method and path the service answers, in one place."""

from __future__ import annotations

from aiohttp import web

from service.api.handlers import (
    auth,
    docs,
    health,
    inference,
    labels,
    metrics,
    models,
    modules,
    pipelines,
    plugins,
    scorers,
    sources,
    tasks,
    uploads,
    users,
    versions,
)
from service.web import dashboard as ui

API_ROUTES: list[web.RouteDef] = [
    web.get("/health", health.health),
    web.get("/list/{kinds}", plugins.list_plugins),
    web.post("/configure/{kind}/{plugin}/{label}", plugins.configure),
    web.delete("/configure/{kind}/{label}", plugins.release_plugin),
    web.get("/context/{kind}/{label}/{ctx_label}", plugins.open_context),
    web.post("/context/{kind}/{label}/{ctx_label}", plugins.open_context),
    web.delete("/context/{kind}/{ctx_label}", plugins.release_context),
    # {path:.*}: upload paths may name sub-directories; the sandbox judges what they resolve to.
    web.post("/service/upload/{path:.*}", uploads.upload),
    web.get("/service/files", uploads.list_files),
    web.get("/service/files/{path:.*}", uploads.download),
    web.delete("/service/files/{path:.*}", uploads.delete),
    # {key:[^/]+}: aiohttp's default segment pattern refuses { and }, which keys may hold.
    web.get("/source/{ctx}/record/{key:[^/]+}", sources.record),
    web.post("/source/{ctx}/update/{key:[^/]+}", sources.update),
    web.get("/source/{ctx}/records", sources.records_stream),
    web.get("/source/{ctx}/records/{chunk_size}", sources.records_first),
    web.get("/source/{ctx}/records/{iterkey}/{chunk_size}", sources.records_next),
    web.delete("/source/{ctx}/records/{iterkey}", sources.records_release),
    web.post("/model/{ctx}/train", models.train),
    # Versions and aliases of models with a location (docs/inference.md#versions).
    web.get("/model/{ctx}/versions", versions.list_versions),
    web.post("/model/{ctx}/aliases/{alias}", versions.set_alias),
    web.post("/model/{ctx}/accuracy", models.accuracy),
    web.post("/model/{ctx}/predict/{chunk_size}", models.predict),
    web.get("/model/{ctx}/predict/{iterkey}/{chunk_size}", models.predict_next),
    web.delete("/model/{ctx}/predict/{iterkey}", models.predict_release),
    web.post("/scorer/{scorer_ctx}/{model_ctx}/score", scorers.score),
    web.post("/module/{ctx}/{function}", modules.run),
    # Tasks (issue 11): ?async=1 work on the routes above, its progress, events and results.
    web.get("/tasks", tasks.list_tasks),
    web.get("/task/{task_id}", tasks.get_task),
    web.delete("/task/{task_id}", tasks.cancel_task),
    web.get("/task/{task_id}/events", tasks.task_events),
    # Durable state (issue 11): every configured label, restored ones and those that failed.
    web.get("/labels", labels.list_labels),
    # The API contract (issue 15): service/api/openapi/ builds it from this table.
    web.get("/openapi.json", docs.openapi_json),
    web.get("/health/live", health.live),
    web.get("/health/ready", health.ready),
    web.get("/metrics", metrics.metrics),
    # Pipelines of module functions, their runs and jobs (issue 12, docs/pipelines.md).
    web.post("/pipelines", pipelines.create_pipeline),
    web.get("/pipelines", pipelines.list_pipelines),
    web.get("/pipelines/{pipeline_id}", pipelines.get_pipeline),
    web.delete("/pipelines/{pipeline_id}", pipelines.delete_pipeline),
    web.post("/runs", pipelines.create_run),
    web.get("/runs", pipelines.list_runs),
    web.get("/runs/{run_id}", pipelines.get_run),
    web.delete("/runs/{run_id}", pipelines.cancel_run),
    web.post("/runs/{run_id}/retry", pipelines.retry_run),
    web.get("/runs/{run_id}/events", pipelines.run_events),
    web.get("/jobs/{job_id}", pipelines.get_job),
    # Users and tokens (issue 14, docs/auth.md).
    web.post("/auth/registration", auth.registration),
    web.post("/auth/login", auth.login),
    web.get("/auth/me", auth.me),
    web.post("/auth/logout", auth.logout),
    web.post("/auth/password", auth.password),
    web.post("/auth/users/{username}/disable", users.disable),
    web.post("/auth/users/{username}/enable", users.enable),
    web.delete("/auth/users/{username}", users.delete),
]

# The Open Inference Protocol (KServe V2 REST, docs/inference.md): a protocol of its own, with
# its own version in its paths, so no /v1 alias. Each opened model context is a model.
_V2_MODEL = "/v2/models/{name}"
_V2_VERSION = _V2_MODEL + "/versions/{version}"
INFERENCE_ROUTES: list[web.RouteDef] = [
    web.get("/v2", inference.server_metadata),
    web.get("/v2/health/live", inference.server_live),
    web.get("/v2/health/ready", inference.server_ready),
    *(
        route
        for prefix in (_V2_MODEL, _V2_VERSION)
        for route in (
            web.get(prefix, inference.model_metadata),
            web.get(prefix + "/ready", inference.model_ready),
            web.post(prefix + "/infer", inference.infer),
        )
    ),
]

# The API docs pages (issue 15, docs/openapi.md): HTML over /openapi.json, files shipped in the
# package. Like the dashboard, not API routes: no JSON contract, no /v1 alias, no spec entry.
DOCS_ROUTES: list[web.RouteDef] = [
    web.get("/docs", docs.swagger_ui),
    web.get("/redoc", docs.redoc),
    web.get("/docs/assets/{name}", docs.asset),
]

# The dashboard (issue 16, docs/dashboard.md): static files shipped in the package, added by
# create_app unless -ui off. Not API routes: no JSON contract, no /v1 alias, no OpenAPI entry.
# They must stay public under -auth token: the page holds the login form, and every call it
# makes is an API request that carries the token.
UI_ROUTES: list[web.RouteDef] = [
    web.get("/ui", ui.to_index),
    web.get("/ui/{path:.*}", ui.serve),
]
