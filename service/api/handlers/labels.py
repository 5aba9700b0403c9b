"""``GET /labels``: every label the caller sees by kind (their own and the shared ones), its
plugin, config and open contexts (and, for models, which of those are trained); an admin's
``?all=1`` adds every user's own."""

from __future__ import annotations

import datetime
from typing import Any

from aiohttp import web

from service.api.jsonio import json_response
from service.api.keys import LABELS, STORE
from service.api.openapi import operation
from service.contexts import ContextStore
from service.engine.state.labels import Labels
from service.kernel import scope
from service.sdk.base import KINDS, Kind

LABEL = {
    "type": "object",
    "properties": {
        "plugin": {"type": "string"},
        "config": {},
        "contexts": {"type": "array", "items": {"type": "string"}},
        "preloaded": {"type": "boolean"},
        # Models only: the open contexts with something to predict with.
        "trained": {"type": "array", "items": {"type": "string"}},
        # Models only: each context's last training through the server, when and on what.
        "trainings": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "finished": {"type": "string", "format": "date-time"},
                    "sources": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["finished", "sources"],
            },
        },
        "error": {"type": "string"},
        "context_errors": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["plugin", "config", "contexts", "preloaded"],
}
SECTION = {"type": "object", "additionalProperties": LABEL}


@operation(
    "Every configured label by kind: plugin, config, open contexts, restore errors",
    tags=("plugins",),
    query={"all": {"enum": ["1", "true", "yes"]}},
    responses={
        200: {
            "type": "object",
            "properties": {
                **{kind: SECTION for kind in KINDS},
                "users": {
                    "type": "object",
                    "description": "An admin's ?all=1: each user's own labels, by kind",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {kind: SECTION for kind in KINDS},
                    },
                },
            },
            "required": list(KINDS),
        }
    },
)
async def list_labels(request: web.Request) -> web.Response:
    """The caller's labels and the shared ones; an admin's ``?all=1`` adds every user's own
    under ``users`` (keyed apart: two users may have labels of one name)."""
    store, labels = request.app[STORE], request.app[LABELS]
    out: dict[str, Any] = {kind: _section(store, labels, kind) for kind in KINDS}
    if scope.current().see_all:
        users: dict[str, Any] = {}
        for owner in store.owners():
            with scope.in_namespace(owner):
                own = {kind: store.own_labels(kind) for kind in KINDS}
                sections = {kind: _section(store, labels, kind) for kind in KINDS}
            users[owner] = {
                kind: {k: v for k, v in sections[kind].items() if k in own[kind]} for kind in KINDS
            }
        out["users"] = users
    return json_response(out)


def _section(store: ContextStore, labels: Labels, kind: Kind) -> dict[str, Any]:
    contexts: dict[str, list[str]] = {}
    for ctx_label, label in store.context_labels(kind).items():
        contexts.setdefault(label, []).append(ctx_label)
    failed = labels.visible_failed_contexts(kind)
    section: dict[str, Any] = {}
    for label, plugin in store.labels(kind).items():
        info = labels.find(kind, label)
        entry: dict[str, Any] = {
            "plugin": plugin,
            "config": None if info is None else info.config,
            "contexts": sorted(contexts.get(label, [])),
            "preloaded": info is not None and info.preloaded,
        }
        if kind == "model":
            entry["trained"] = [ctx for ctx in entry["contexts"] if store.model(ctx).trained]
            entry["trainings"] = _trainings(store, entry["contexts"])
        if label in failed:
            entry["context_errors"] = failed[label]
        section[label] = entry
    for label, info in labels.visible_errors(kind).items():
        if label not in section:
            section[label] = {
                "plugin": info.plugin,
                "config": info.config,
                "contexts": sorted(failed.get(label, {})),
                "preloaded": False,
                "error": info.error,
            }
    return dict(sorted(section.items()))


def _trainings(store: ContextStore, contexts: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for ctx in contexts:
        training = store.training(ctx)
        if training is not None:
            finished = datetime.datetime.fromtimestamp(training.finished, datetime.timezone.utc)
            out[ctx] = {
                "finished": finished.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "sources": list(training.sources),
            }
    return out
