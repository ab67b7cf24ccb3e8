"""A path-prefix check in front of each included router, so a request is matched only against
the routers that can hold its path.

Starlette finds a request's route by asking every top-level route in turn; in FastAPI 0.165 each
``include_router`` is one such route, and asking it walks its routes with per-route scope
bookkeeping (about 1 µs each). The gateway's ``/v1/tickets`` sits behind its login, account,
stream, visitor, knowledge-base and Zendesk routers: about 110 µs of matching per forwarded
request on a busy 2-core machine, more than its authentication.

``install`` gives each included router the set of first-two-segment keys of its route paths
(``/v1/tickets/{id}`` → ``("v1", "tickets")``) and answers "no match" for an HTTP request whose
path has another key, without walking it. The answer is the one the router would give: a route
whose first two path segments are literal matches only paths that begin with them. A router
holding any route it cannot key that way (a parameter in the first two segments, a mount, a
host route, a websocket route) is left as it is. A path with a line feed is not judged either:
a route's pattern ends in ``$``, which also matches before a final ``\n`` (``/v1/agents%0A`` is
the agents list to Starlette), and such paths are left to the routes themselves. The order in which routers are asked, partial matches
(a 405) and the trailing-slash redirect are Starlette's, unchanged.

Installed at start-up, when the routes are final: a route added to an already included router
afterwards would not be seen (the services add none).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import routing as fastapi_routing
from starlette.routing import Match, Route

try:  # where Starlette's own route matching gets the path from
    from starlette._utils import get_route_path
except ImportError:  # pragma: no cover - an older Starlette
    def get_route_path(scope: Any) -> str:
        return scope["path"]

#: set on an app once installed
_INSTALLED = "helpdesk_route_index"
#: the scope entry holding (path, key) of the request, computed once for all the guards; the
#: trailing-slash redirect asks again with a copy whose path is another string, so the path is
#: compared by identity before the key is reused
_SCOPE_KEY = "helpdesk.route_key"


def path_key(path: str) -> tuple[str, ...]:
    """The first two segments of a path (pure): ``/v1/tickets/7`` → ``("v1", "tickets")``."""
    return tuple(path.split("/", 3)[1:3])


def route_keys(contexts: Iterable[Any]) -> frozenset[tuple[str, ...]] | None:
    """The keys of every route below one top-level route, or None when one of them can match
    paths of more than one key (pure over FastAPI's route contexts)."""
    keys: set[tuple[str, ...]] = set()
    for context in contexts:
        path = context.path
        if not isinstance(context.original_route, Route) or not isinstance(path, str) or not path.startswith("/"):
            return None
        key = path_key(path)
        if any("{" in segment for segment in key):
            return None
        keys.add(key)
    return frozenset(keys)


def request_key(scope: Any) -> tuple[str, ...] | None:
    """The key of an HTTP request's path, or None when it is not judged (not HTTP, a line feed)."""
    if scope["type"] != "http":
        return None
    path = get_route_path(scope)
    cached = scope.get(_SCOPE_KEY)
    if cached is not None and cached[0] is path:
        return cached[1]
    key = None if "\n" in path else path_key(path)
    scope[_SCOPE_KEY] = (path, key)
    return key


def _guarded(matches: Any, keys: frozenset[tuple[str, ...]]) -> Any:
    def guarded_matches(scope: Any) -> tuple[Match, Any]:
        key = request_key(scope)
        if key is not None and key not in keys:
            return Match.NONE, {}
        return matches(scope)

    return guarded_matches


def install(app: Any) -> int:
    """Guard each top-level route of ``app`` that includes a router (once per app); how many
    were guarded."""
    if getattr(app.state, _INSTALLED, False):
        return 0
    setattr(app.state, _INSTALLED, True)
    guarded = 0
    for route in app.router.routes:
        if not hasattr(route, "original_router"):  # a plain route: one regex, nothing to save
            continue
        keys = route_keys(fastapi_routing.iter_route_contexts([route]))
        if not keys:
            continue
        route.matches = _guarded(route.matches, keys)
        guarded += 1
    return guarded
