"""Every request's name, ``kind/name/action``, derived from the route it matched.

Derived from the route template (so a route someone adds to service/routes.py is named too):

- kind: the value of a ``{kind}`` segment if the template has one (``/configure/{kind}/…``),
  else its first segment, a plural made singular (``/tasks/{id}`` → ``task``);
- name: the first segment after the kind: a variable's value (``/model/{ctx}/…`` → the
  context label) or the literal (``/service/upload/…`` → ``upload``); ``-`` if none;
- action: the first literal after the name (``predict``; a DELETE of an iterkey under it is
  part of the same action), else ``delete`` for DELETE, else the next variable's value
  (``/module/{ctx}/{function}`` → the function), else ``get`` for a GET of a resource named by
  a variable, else ``-``.

Path variables that may hold slashes (``{path:.*}``) never name anything. With a ``{kind}``
segment the name is the last variable (the label being made) and the literal before the kind
is the action (``/configure/model/slr/salary`` → ``model/salary/configure``; DELETE →
``model/salary/delete``). Requests no route of the table matched (static files, /api.js,
unknown paths) are ``page/-/-``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

from aiohttp import web

MatchInfo = Mapping[str, str]
_VAR = re.compile(r"^\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<pattern>.*))?\}$")


@dataclasses.dataclass(frozen=True)
class Segment:
    literal: str | None  # None for a variable
    var: str | None = None
    catch_all: bool = False  # a variable whose pattern may match "/"


@dataclasses.dataclass(frozen=True)
class Template:
    method: str
    path: str
    segments: tuple[Segment, ...]

    @property
    def canonical(self) -> str:
        parts = [s.literal if s.literal is not None else f"{{{s.var}}}" for s in self.segments]
        return "/" + "/".join(parts)

    def name(self, match_info: MatchInfo) -> str:
        segments = list(self.segments)
        kind_at = next((i for i, s in enumerate(segments) if s.var == "kind"), None)
        if kind_at is not None:
            kind = match_info.get("kind", "-")
            verbs = [s.literal for s in segments[:kind_at] if s.literal is not None]
            names = [s.var for s in segments[kind_at + 1 :] if s.var and not s.catch_all]
            name = match_info.get(names[-1], "-") if names else "-"
            action = "delete" if self.method == "DELETE" else (verbs[0] if verbs else "-")
            return _joined(kind, name, action)
        if not segments or segments[0].literal is None:
            return "page/-/-"
        kind = _singular(segments[0].literal)
        rest = [s for s in segments[1:] if not s.catch_all]
        if not rest:
            return _joined(kind, "-", "delete" if self.method == "DELETE" else "-")
        first, rest = rest[0], rest[1:]
        name = first.literal if first.literal is not None else match_info.get(first.var or "", "-")
        literal = next((s.literal for s in rest if s.literal is not None), None)
        if literal is not None:
            action = literal
        elif self.method == "DELETE":
            action = "delete"
        elif rest and rest[0].var is not None:
            action = match_info.get(rest[0].var, "-")
        elif first.literal is None and self.method in ("GET", "HEAD"):
            action = "get"
        else:
            action = "-"
        return _joined(kind, name, action)


def parse(method: str, path: str) -> Template:
    segments = []
    for part in path.strip("/").split("/"):
        if not part:
            continue
        match = _VAR.match(part)
        if match is None:
            segments.append(Segment(part))
        else:
            pattern = match["pattern"]
            catch_all = pattern is not None and ("." in pattern or "/" in pattern)
            segments.append(Segment(None, match["name"], catch_all))
    return Template(method.upper(), path, tuple(segments))


def templates(routes: Iterable[web.RouteDef]) -> dict[tuple[str, str], Template]:
    """(method, canonical path) → Template for every route of the table.

    Keyed by aiohttp's ``canonical`` form (``/service/files/{path}``, the regex dropped), which
    is what a matched request's resource reports.
    """
    table = {}
    for route in routes:
        template = parse(route.method, route.path)
        table[(template.method, template.canonical)] = template
    return table


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "ics")):
        return word[:-1]
    return word


def _joined(kind: str, name: str, action: str) -> str:
    return f"{_clean(kind)}/{_clean(name)}/{_clean(action)}"


def _clean(part: str) -> str:
    """A name part never contains the separator, so rules cannot be fooled by a label."""
    return part.replace("/", "%2F") or "-"
