"""Pipelines of module functions, their runs and jobs (service/pipelines)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.api import params
from service.api.jsonio import json_response, ok, read_json_object
from service.api.keys import PIPELINES, SANDBOX, STORE
from service.api.openapi import OK_SCHEMA, Body, Response, operation
from service.engine.pipelines.model import FINAL, RunStatus
from service.engine.pipelines.runner import Runner, export_page
from service.engine.pipelines.spec import JOB, PAGE, PIPELINE, PIPELINE_BODY, RUN, RUN_BODY
from service.engine.pipelines.validate import pipeline_request, run_files
from service.kernel.errors import BadRequest, NotAllowed, NotFound
from service.kernel.jsoncodec import dumps

PAGE_DEFAULT = 100
PAGE_MAX = 1000
# An event stream with nothing to say sends a comment this often, so a client (or a proxy)
# that went away is noticed and the stream closed.
KEEPALIVE_SECONDS = 15.0
STATUSES: tuple[RunStatus, ...] = ("PENDING", "RUNNING", "FINISHED", "FAILED", "CANCELLED")
TAGS = ("pipelines",)
NO_UPLOADS = "The server was started without -upload-dir"
NO_PIPELINE = "No pipeline of that id"
NO_RUN = "No run of that id"


def _runner(request: web.Request) -> Runner:
    runner = request.app[PIPELINES]
    if runner is None:
        raise NotAllowed("Pipelines need the server to be started with -upload-dir")
    return runner


def _page(request: web.Request) -> tuple[int, int]:
    query, wording = request.query, params.WHOLE_BETWEEN
    limit = params.query_integer(
        query, "limit", default=PAGE_DEFAULT, minimum=1, maximum=PAGE_MAX, message=wording
    )
    offset = params.query_integer(
        query, "offset", default=0, minimum=0, maximum=params.OFFSET_MAX, message=wording
    )
    return limit, offset


@operation(
    "Create a pipeline: an ordered list of module function calls, each checked now",
    tags=TAGS,
    body=Body.json(PIPELINE_BODY),
    responses={
        201: PIPELINE,
        400: "A task does not fit its function ('task N: ...'), or the body is malformed",
        409: "The server keeps the most pipelines it may",
        501: NO_UPLOADS,
    },
)
async def create_pipeline(request: web.Request) -> web.Response:
    runner = _runner(request)
    body = await read_json_object(request)
    sandbox = request.app[SANDBOX]
    assert sandbox is not None  # a runner exists only with -upload-dir
    wanted = pipeline_request(body, request.app[STORE], sandbox)
    pipeline = await runner.add_pipeline(wanted.name, wanted.tasks)
    return json_response(pipeline.export(), status=201)


@operation(
    "List pipelines, oldest first",
    tags=TAGS,
    query=PAGE,
    responses={
        200: {
            "type": "object",
            "properties": {
                "pipelines": {"type": "array", "items": PIPELINE},
                "total": {"type": "integer"},
            },
            "required": ["pipelines", "total"],
        },
        400: "limit or offset out of range",
        501: NO_UPLOADS,
    },
)
async def list_pipelines(request: web.Request) -> web.Response:
    runner = _runner(request)
    limit, offset = _page(request)
    pipelines, total = await runner.repository.pipelines(limit, offset)
    return json_response({"pipelines": [p.export() for p in pipelines], "total": total})


@operation("A pipeline", tags=TAGS, responses={200: PIPELINE, 404: NO_PIPELINE, 501: NO_UPLOADS})
async def get_pipeline(request: web.Request) -> web.Response:
    runner = _runner(request)
    pipeline_id = request.match_info["pipeline_id"]
    pipeline = await runner.repository.pipeline(pipeline_id)
    if pipeline is None:
        raise NotFound(f"Pipeline {pipeline_id!r} not found")
    return json_response(pipeline.export())


@operation(
    "Delete a pipeline (its runs stay listed)",
    tags=TAGS,
    responses={
        200: OK_SCHEMA,
        404: NO_PIPELINE,
        409: "The pipeline has runs in progress",
        501: NO_UPLOADS,
    },
)
async def delete_pipeline(request: web.Request) -> web.Response:
    await _runner(request).delete_pipeline(request.match_info["pipeline_id"])
    return ok()


@operation(
    "Start a run of a pipeline over files of the upload directory",
    tags=TAGS,
    body=Body.json(RUN_BODY),
    responses={
        201: RUN,
        400: "A file is missing, outside the upload dir or of a type task 0 does not take",
        404: NO_PIPELINE,
        501: NO_UPLOADS,
        503: "Too many runs in progress, or the server is shutting down",
    },
)
async def create_run(request: web.Request) -> web.Response:
    runner = _runner(request)
    pipeline_id, files = run_files(await read_json_object(request))
    run = await runner.start_run(pipeline_id, files)
    return json_response(run.export(), status=201)


@operation(
    "List runs with their jobs, oldest first",
    tags=TAGS,
    query={
        **PAGE,
        "pipeline": {"type": "string"},
        "status": {"enum": list(STATUSES)},
    },
    responses={
        200: {
            "type": "object",
            "properties": {"runs": {"type": "array", "items": RUN}, "total": {"type": "integer"}},
            "required": ["runs", "total"],
        },
        400: "limit, offset or status out of range",
        501: NO_UPLOADS,
    },
)
async def list_runs(request: web.Request) -> web.Response:
    runner = _runner(request)
    limit, offset = _page(request)
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}, got {status!r}")
    runs, total = await runner.repository.runs(limit, offset, request.query.get("pipeline"), status)
    return json_response(export_page(runs, total))


@operation("A run with its jobs", tags=TAGS, responses={200: RUN, 404: NO_RUN, 501: NO_UPLOADS})
async def get_run(request: web.Request) -> web.Response:
    run = await _runner(request).get(request.match_info["run_id"])
    return json_response(run.export())


@operation(
    "Cancel a run: its running job is stopped, it and the later jobs CANCELLED",
    tags=TAGS,
    responses={200: RUN, 404: NO_RUN, 409: "The run has ended already", 501: NO_UPLOADS},
)
async def cancel_run(request: web.Request) -> web.Response:
    run = await _runner(request).cancel(request.match_info["run_id"])
    return json_response(run.export())


@operation(
    "Resume a FAILED or CANCELLED run from its first unfinished job",
    tags=TAGS,
    responses={
        200: RUN,
        404: NO_RUN,
        409: "The run is in progress or FINISHED",
        501: NO_UPLOADS,
        503: "Too many runs in progress, or the server is shutting down",
    },
)
async def retry_run(request: web.Request) -> web.Response:
    run = await _runner(request).retry(request.match_info["run_id"])
    return json_response(run.export())


@operation(
    "A job of a run", tags=TAGS, responses={200: JOB, 404: "No job of that id", 501: NO_UPLOADS}
)
async def get_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    job = await _runner(request).repository.job(job_id)
    if job is None:
        raise NotFound(f"Job {job_id!r} not found")
    return json_response(job.export())


@operation(
    "Follow a run: server-sent events status, job and log until its final status",
    tags=TAGS,
    responses={
        200: Response(
            "text/event-stream of 'event: status|job|log' with JSON data",
            {"text/event-stream": {"type": "string"}},
        ),
        404: NO_RUN,
        501: NO_UPLOADS,
        503: "Too many event streams are open",
    },
)
async def run_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``status`` (the run), ``job`` (a job that changed), ``log``."""
    runner = _runner(request)
    run_id = request.match_info["run_id"]
    await runner.get(run_id)  # 404 before the stream starts
    async with runner.followers.follow(run_id) as follower:
        # Following first, then reading: nothing that happens in between is missed.
        run = await runner.get(run_id)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            await _send(response, "status", run.export())
            status = run.status
            while status not in FINAL:
                event = await follower.get(KEEPALIVE_SECONDS)
                if event is None:
                    if follower.lagged:
                        break  # too slow to follow: the client reconnects and starts afresh
                    await response.write(b": keep-alive\n\n")
                    continue
                name, data = event
                await _send(response, name, data)
                if name == "status":
                    status = data["status"]
            await asyncio.shield(response.write_eof())
        except ConnectionResetError:
            pass  # the client went away (closed the page, stopped following): the run goes on
    return response


async def _send(response: web.StreamResponse, event: str, data: object) -> None:
    await response.write(b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n")
