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
import functools
import re
from collections.abc import Iterable, Mapping

from aiohttp import web

MatchInfo = Mapping[str, str]
# (True, variable name) or (False, literal text) of one part of a request's name.
Part = tuple[bool, str]
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

    @functools.cached_property
    def canonical(self) -> str:
        parts = [s.literal if s.literal is not None else f"{{{s.var}}}" for s in self.segments]
        return "/" + "/".join(parts)

    @functools.cached_property
    def plan(self) -> tuple[Part, Part, Part]:
        """kind, name and action: each a literal, or the path variable whose value it is.
        Worked out once per route, so naming a request is three lookups."""
        segments = list(self.segments)
        kind_at = next((i for i, s in enumerate(segments) if s.var == "kind"), None)
        if kind_at is not None:
            verbs = [s.literal for s in segments[:kind_at] if s.literal is not None]
            names = [s.var for s in segments[kind_at + 1 :] if s.var and not s.catch_all]
            verb = "delete" if self.method == "DELETE" else (verbs[0] if verbs else "-")
            return _var("kind"), _var(names[-1]) if names else _lit("-"), _lit(verb)
        if not segments or segments[0].literal is None:
            return _lit("page"), _lit("-"), _lit("-")
        kind = _lit(_singular(segments[0].literal))
        rest = [s for s in segments[1:] if not s.catch_all]
        if not rest:
            return kind, _lit("-"), _lit("delete" if self.method == "DELETE" else "-")
        first, rest = rest[0], rest[1:]
        name = _lit(first.literal) if first.literal is not None else _var(first.var or "")
        literal = next((s.literal for s in rest if s.literal is not None), None)
        action: Part
        if literal is not None:
            action = _lit(literal)
        elif self.method == "DELETE":
            action = _lit("delete")
        elif rest and rest[0].var is not None:
            action = _var(rest[0].var)
        elif first.literal is None and self.method in ("GET", "HEAD"):
            action = _lit("get")
        else:
            action = _lit("-")
        return kind, name, action

    @functools.cached_property
    def pieces(self) -> tuple[str, str | None, str]:
        """The name as text around its one path variable, if it has at most one:
        ``(whole name, None, "")`` with none, ``(before, variable, after)`` with one
        (``source/``, ``ctx``, ``/record``), so naming a request is one lookup and two joins;
        ``("", None, "")`` with more (``name`` works through ``plan``)."""
        variables = [text for is_var, text in self.plan if is_var]
        if not variables:
            return self.planned({}), None, ""
        if len(variables) > 1:
            return "", None, ""
        texts = ["\0" if is_var else text for is_var, text in self.plan]
        before, after = "/".join(texts).split("\0")
        return before, variables[0], after

    def name(self, match_info: MatchInfo) -> str:
        """The request's ``kind/name/action`` (the guard inlines the one-variable case)."""
        before, variable, after = self.pieces
        if variable is not None:
            value = match_info.get(variable)
            return before + (value.replace("/", "%2F") if value else "-") + after
        return before or self.planned(match_info)

    def planned(self, match_info: MatchInfo) -> str:
        """``name``, worked out part by part from ``plan``."""
        (kind_var, kind), (name_var, name), (action_var, action) = self.plan
        if kind_var:
            kind = _clean(match_info.get(kind, "-"))
        if name_var:
            name = _clean(match_info.get(name, "-"))
        if action_var:
            action = _clean(match_info.get(action, "-"))
        return f"{kind}/{name}/{action}"


def parse(method: str, path: str) -> Template:
    segments = []
    for part in _segments(path):
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


def _segments(path: str) -> list[str]:
    """The path's segments, split at each "/" outside braces (a variable's regex may hold one)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in path.strip("/"):
        if char == "/" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return parts


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


def _lit(text: str) -> Part:
    return (False, _clean(text))


def _var(name: str) -> Part:
    return (True, name)


def _clean(part: str) -> str:
    """A name part never contains the separator, so rules cannot be fooled by a label."""
    return part.replace("/", "%2F") or "-"
