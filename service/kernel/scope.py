"""Whose resources a request acts on: the namespace the core keys everything by.

The guard middleware sets it once per request; the context store, the iterkey cursors and the
upload sandbox read it, so every route (and every route added later) is confined without its
handler doing anything. A context variable follows the request into the tasks it starts.

- ``-auth none``, start-up preloads, admins: the shared namespace (``None``), the operator's.
- a user U: namespace ``U``; lookups that miss there fall back to the shared namespace, read
  only (operator preloads are usable by everyone, changed only by admins).
- an admin with ``?owner=U`` acts in U's namespace; with ``?all=1`` listings show everyone's.

It also carries the request's endpoint rules (``judge``): the guard judges the route's own name,
and the engine judges every other resource the request names (a source in a query or a body, a
module function in a pipeline's task, a model a scorer or a module predicts with) through
``require``, so no route can reach what the rules hide by naming it elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from service.kernel.errors import Forbidden
from service.kernel.users import User

# A request name (``kind/name/action``) → None if the rules allow it, else the refusal's message.
Judge = Callable[[str], "str | None"]


@dataclasses.dataclass(frozen=True)
class Scope:
    user: User | None = None
    namespace: str | None = None
    see_all: bool = False
    judge: Judge | None = None


OPERATOR = Scope()
# Public routes under -auth token (login, health): a namespace no user name can be, so nothing
# shared or owned is reachable from them by accident.
NOBODY = Scope(namespace="-")


def of(
    user: User, *, owner: str | None = None, see_all: bool = False, judge: Judge | None = None
) -> Scope:
    """A user's scope; an admin acts in the shared namespace unless ``owner`` names a user."""
    if not user.admin:
        return Scope(user, user.name, judge=judge)
    return Scope(user, owner, see_all, judge)


# The guard sets it directly (its hot path: no function call); everything else uses the
# functions below.
CURRENT: ContextVar[Scope] = ContextVar("scope", default=OPERATOR)


def current() -> Scope:
    return CURRENT.get()


def namespace() -> str | None:
    return CURRENT.get().namespace


def name(kind: str, label: str, action: str) -> str:
    """A resource's request name, as the guard names routes (a ``/`` in a label is ``%2F``)."""
    return f"{kind}/{label.replace('/', '%2F')}/{action}"


def require(kind: str, label: str, action: str) -> None:
    """403 unless the caller's rules allow ``kind/label/action`` (nothing without rules)."""
    judge = CURRENT.get().judge
    if judge is not None:
        refusal = judge(name(kind, label, action))
        if refusal is not None:
            raise Forbidden(refusal)


@contextlib.contextmanager
def acting_as(scope: Scope) -> Iterator[None]:
    token = CURRENT.set(scope)
    try:
        yield
    finally:
        CURRENT.reset(token)


@contextlib.contextmanager
def in_namespace(name: str | None) -> Iterator[None]:
    """Run core bookkeeping (closing another namespace's cursors) in that namespace."""
    scope = CURRENT.get()
    with acting_as(dataclasses.replace(scope, namespace=name)):
        yield
