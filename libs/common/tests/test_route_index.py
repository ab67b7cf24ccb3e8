"""``route_index``: a guarded app chooses the route an unguarded one chooses, for every path and
method, and answers the same; routers it cannot key are left unguarded."""

from __future__ import annotations

import logging

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import Match

from helpdesk_common import route_index


def make_app() -> FastAPI:
    """Routers of every kind a service has: literal prefixes, a parameter in the second
    segment, a path-converter catch-all, a trailing slash, a websocket, a mount, a plain route."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)  # the routers' indexes: 0, 1, ...
    tickets = APIRouter(prefix="/v1/tickets")

    @tickets.get("")
    def list_tickets() -> dict:
        return {"route": "list"}

    @tickets.post("")
    def create_ticket() -> dict:
        return {"route": "create"}

    @tickets.get("/{ticket_id}")
    def get_ticket(ticket_id: str) -> dict:
        return {"route": "get", "id": ticket_id}

    @tickets.get("/{ticket_id}/messages/")
    def messages(ticket_id: str) -> dict:
        return {"route": "messages", "id": ticket_id}

    auth = APIRouter()

    @auth.post("/v1/auth/login")
    def login() -> dict:
        return {"route": "login"}

    @auth.get("/healthz")
    def health() -> dict:
        return {"route": "health"}

    @auth.get("/")
    def root() -> dict:
        return {"route": "root"}

    wild = APIRouter()  # a parameter in the second segment: cannot be keyed

    @wild.get("/v2/{kind}/items")
    def items(kind: str) -> dict:
        return {"route": "items", "kind": kind}

    proxy = APIRouter()

    @proxy.api_route("/v1/tickets/{rest:path}", methods=["GET", "POST", "DELETE"])
    def proxy_tickets(rest: str) -> dict:
        return {"route": "proxy", "rest": rest}

    @proxy.api_route("/v1/kb", methods=["GET"])
    def kb() -> dict:
        return {"route": "kb"}

    sockets = APIRouter()

    @sockets.websocket("/v1/stream/ws")
    async def ws(websocket) -> None:  # pragma: no cover - never connected here
        await websocket.close()

    mounted = FastAPI()

    @mounted.get("/inner")
    def inner() -> dict:
        return {"route": "inner"}

    for router in (tickets, auth, wild, proxy, sockets):
        app.include_router(router)
    app.mount("/static", mounted)

    @app.get("/v1/plain")
    def plain() -> dict:
        return {"route": "plain"}

    return app


def chosen(app: FastAPI, path: str, method: str, root_path: str = "") -> tuple[int | None, int | None]:
    """The index of the top-level route Starlette takes (first full match, else first partial)."""
    scope = {"type": "http", "path": root_path + path, "root_path": root_path, "method": method, "headers": [],
             "app": app}
    full = partial = None
    for index, route in enumerate(app.router.routes):
        match, _ = route.matches(dict(scope))
        if match is Match.FULL:
            full = index
            break
        if match is Match.PARTIAL and partial is None:
            partial = index
    return full, partial


SEGMENTS = st.sampled_from(["v1", "v2", "tickets", "auth", "login", "kb", "x", "messages", "static", "inner",
                            "healthz", "plain", "stream", "ws", "items", "", "7", "%20", "票", "\n", "kb\n",
                            "tickets\n"])
PATHS = st.lists(SEGMENTS, min_size=0, max_size=5).map(lambda parts: "/" + "/".join(parts))
METHODS = st.sampled_from(["GET", "POST", "DELETE", "PUT"])


def test_keys_and_what_is_left_unguarded() -> None:
    app = make_app()
    guarded = route_index.install(app)
    assert guarded == 3  # tickets, auth, proxy; not the parameter-first router nor the websocket's
    assert route_index.install(app) == 0  # once per app
    assert route_index.path_key("/v1/tickets/7/messages") == ("v1", "tickets")
    assert route_index.path_key("/healthz") == ("healthz",)
    assert route_index.path_key("/") == ("",)


@settings(max_examples=400, deadline=None)
@given(path=PATHS, method=METHODS, root_path=st.sampled_from(["", "/api"]))
def test_a_guarded_app_chooses_the_same_route(path: str, method: str, root_path: str) -> None:
    plain, guarded = make_app(), make_app()
    route_index.install(guarded)
    assert chosen(guarded, path, method, root_path) == chosen(plain, path, method, root_path)


def test_guards_skip_the_routers_a_path_cannot_reach() -> None:
    """The point of it: ``POST /v1/auth/login`` is not looked for in the tickets' router, and a
    websocket, a line feed or an unguarded router still are."""
    app = make_app()
    route_index.install(app)
    asked: list[int] = []
    for index, route in enumerate(app.router.routes):
        if hasattr(route, "original_router"):
            original = route.original_router.matches

            def spy(scope, _index=index, _original=original):
                asked.append(_index)
                return _original(scope)

            route.original_router.matches = spy
    assert chosen(app, "/v1/auth/login", "POST")[0] == 1
    assert asked == [1]  # the tickets' router (0) was skipped unasked
    asked.clear()
    assert chosen(app, "/v1/tickets\n", "GET")[0] == 0 and asked == [0]
    asked.clear()
    chosen(app, "/v2/a/items", "GET")
    assert asked == [2]  # only the unguarded, parameter-first router is walked
    asked.clear()
    scope = {"type": "websocket", "path": "/v1/auth/login", "root_path": "", "headers": []}
    app.router.routes[0].matches(scope)
    assert asked == [0]  # websockets are not judged


def test_routers_with_mounts_or_nested_parameters_stay_unguarded() -> None:
    outer, inner = APIRouter(prefix="/v1/things"), APIRouter(prefix="/nested")

    @inner.get("/x")
    def x() -> dict:
        return {}

    outer.include_router(inner)
    mounting = APIRouter()
    mounting.mount("/v1/files", FastAPI())
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(outer)
    app.include_router(mounting)
    assert route_index.install(app) == 1  # the nested router is keyed by its full path; the mount is not
    assert chosen(app, "/v1/things/nested/x", "GET")[0] == 0
    assert chosen(app, "/v1/files/a/b", "GET")[0] == 1


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/tickets"), ("POST", "/v1/tickets"), ("PUT", "/v1/tickets"), ("GET", "/v1/tickets/"),
    ("GET", "/v1/tickets/7"), ("GET", "/v1/tickets/7/messages"), ("GET", "/v1/tickets/7/messages/"),
    ("DELETE", "/v1/tickets/7"), ("GET", "/v1/tickets/7/x/y"), ("POST", "/v1/auth/login"), ("GET", "/v1/auth/login"),
    ("GET", "/healthz"), ("GET", "/healthz/"), ("GET", "/"), ("GET", "/v2/a/items"), ("GET", "/v1/kb"),
    ("GET", "/v1/kb/"), ("GET", "/static/inner"), ("GET", "/v1/plain"), ("GET", "/nowhere"), ("GET", "/v1/票"),
])
def test_a_guarded_app_answers_the_same(method: str, path: str) -> None:
    plain, guarded = make_app(), make_app()
    route_index.install(guarded)
    with TestClient(plain) as a, TestClient(guarded) as b:
        left = a.request(method, path, follow_redirects=False)
        right = b.request(method, path, follow_redirects=False)
    assert (right.status_code, right.content, right.headers.get("location")) == \
        (left.status_code, left.content, left.headers.get("location"))


@pytest.fixture
def service_apps(monkeypatch) -> list[tuple[str, FastAPI]]:
    """The gateway's and ticket-svc's apps (the two with the most routes), built without starting,
    from settings of their own: the environment, the settings caches and the process's logging
    (``build_app`` configures it) are as they were afterwards."""
    from gateway import config as gateway_config
    from helpdesk_common.testing import SESSION_PII_ENV
    from ticket_svc import config as ticket_config
    from gateway.main import create_app as gateway_app
    from ticket_svc.main import create_app as ticket_app

    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1:1/x")
    monkeypatch.setenv("TICKET_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1:1/x")
    for name, value in SESSION_PII_ENV["TICKET_"].items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    caches = (gateway_config.get_settings, ticket_config.get_settings)
    for cache in caches:
        cache.cache_clear()
    try:
        yield [("gateway", gateway_app()), ("ticket-svc", ticket_app())]
    finally:
        for cache in caches:
            cache.cache_clear()
        root.handlers[:], root.level = handlers, level


def test_the_services_routes_are_chosen_the_same(service_apps) -> None:
    """Every route path of the real apps (parameters filled in), with and without a slash or a
    final line feed, under every method, and some paths no route has: the same route either way."""
    from fastapi.routing import iter_route_contexts

    for name, app in service_apps:
        contexts = list(iter_route_contexts(app.routes))
        paths = {"/", "/v1", "/v1/", "/v1/nothing", "/api/v2/nothing", "/nothing/at/all"}
        for context in contexts:
            if isinstance(context.path, str) and context.path.startswith("/"):
                filled = "/".join("7" if "{" in seg else seg for seg in context.path.split("/"))
                paths |= {filled, filled.rstrip("/") + "/", filled + "/x", filled + "\n"}
        before = {(p, m): chosen(app, p, m) for p in paths for m in ("GET", "POST", "PATCH")}
        assert route_index.install(app) > 0, name
        after = {(p, m): chosen(app, p, m) for p in paths for m in ("GET", "POST", "PATCH")}
        assert after == before, name
