"""Micro-benchmark: what the query-parameter rule (``helpdesk_common.app.reject_undeclared_query``)
costs per request, in process (no network, no database), on this machine.

Three FastAPI apps built by ``build_app`` with the same two routes (the shape of
``GET /v1/tickets`` and of an intake ``POST``): the rule as shipped (a wrapper around each
route's ``handle``), the same check as an app-level dependency (the alternative it replaced),
and no rule at all (the baseline). Each request goes through the whole ASGI
stack (middlewares, routing, dependencies, pydantic, orjson) with a fake receive/send, so the
difference is the rule's full cost, dependency solving included.

    .venv/bin/python bench/query_rule.py [--requests 20000]

Prints a table and writes ``bench/results/query_rule-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from unittest.mock import patch

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from helpdesk_common import app as app_module
from helpdesk_common.app import ServiceParts, build_app, unknown_query_names
from helpdesk_common.settings import ServiceSettings

LIST_QUERY = b"status=open&status=pending&priority=high&tag=vip&limit=25&sort=updated&q=printer"


class Body(BaseModel):
    subject: str
    description: str = ""


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/tickets")
    async def list_tickets(limit: Annotated[int, Query(ge=1, le=100)] = 25, cursor: str | None = None,
                           q: str | None = None, status: Annotated[list[str] | None, Query()] = None,
                           priority: str | None = None, tag: Annotated[list[str] | None, Query()] = None,
                           sort: str = "created") -> dict[str, Any]:
        return {"items": [], "next_cursor": None}

    @router.post("/v1/tickets", status_code=201)
    async def create(body: Body) -> dict[str, Any]:
        return {"subject": body.subject}

    return router


async def _as_dependency(request: Request) -> None:
    """The alternative measured against the shipped rule: the same check as an app-level
    dependency (FastAPI solves it on every request)."""
    query = request.scope.get("query_string")
    if query:
        route = request.scope["route"]
        allowed = getattr(route, "_bench_allowed", None)
        if allowed is None:
            allowed = route._bench_allowed = app_module.declared_query_names(route.dependant)
        if unknown_query_names(query, allowed):
            raise RuntimeError("unexpected unknown parameter")


class _WithDependency(app_module.ServiceApp):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, dependencies=[Depends(_as_dependency)], **kwargs)


def _app(variant: str) -> Any:
    def build() -> Any:
        return build_app(ServiceSettings(service_name="bench"), ServiceParts(title="bench", routers=[_router()]))

    if variant == "shipped":
        return build()
    with patch.object(app_module, "install_query_rule", lambda app: None):
        if variant == "none":
            return build()
        with patch.object(app_module, "ServiceApp", _WithDependency):
            return build()


def _scope(method: str, query: bytes, body: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": "/v1/tickets", "raw_path": b"/v1/tickets", "query_string": query,
            "root_path": "", "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                                         (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def _batch(app: Any, scope: dict[str, Any], body: bytes, n: int) -> float:
    """Seconds per request over ``n`` requests."""
    message = {"type": "http.request", "body": body, "more_body": False}
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(event: dict[str, Any]) -> None:
        if event["type"] == "http.response.start":
            status.append(event["status"])

    started = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    elapsed = (time.perf_counter() - started) / n
    assert set(status) <= {200, 201}, set(status)
    return elapsed


async def main(n: int, rounds: int = 15) -> dict[str, Any]:
    """The variants run interleaved, round after round (the machine is shared: load comes and
    goes), and each is reported by its fastest round, the one least disturbed."""
    apps = {"rule (route.handle wrapper, shipped)": _app("shipped"), "rule as app-level dependency": _app("dependency"),
            "no rule (baseline)": _app("none")}
    cases = {"GET list, 7 params": ("GET", LIST_QUERY, b""),
             "POST intake, no query": ("POST", b"", b'{"subject": "printer", "description": "jam"}')}
    results: dict[str, Any] = {}
    for case, (method, query, body) in cases.items():
        scope = _scope(method, query, body)
        times: dict[str, list[float]] = {name: [] for name in apps}
        for name, app in apps.items():
            await _batch(app, scope, body, n // 10)  # warm-up
        for _ in range(rounds):
            for name, app in apps.items():
                times[name].append(await _batch(app, scope, body, n // rounds))
        for name in apps:
            results[f"{case} / {name}"] = min(times[name])
    allowed = frozenset({"limit", "cursor", "q", "status", "priority", "tag", "sort"})
    best = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            unknown_query_names(LIST_QUERY, allowed)
        best.append((time.perf_counter() - started) / n)
    results["unknown_query_names alone (7 params)"] = min(best)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    import logging

    logging.disable(logging.CRITICAL)
    results = asyncio.run(main(args.requests))
    print(f"{'case':<72} {'µs/request':>10}")
    for case, seconds in results.items():
        print(f"{case:<72} {seconds * 1e6:>10.1f}")
    for case in ("GET list, 7 params", "POST intake, no query"):
        base = results[f"{case} / no rule (baseline)"]
        for variant in ("rule (route.handle wrapper, shipped)", "rule as app-level dependency"):
            delta = results[f"{case} / {variant}"] - base
            print(f"{'cost of ' + variant + ', ' + case:<80} {delta * 1e6:>6.1f} µs ({delta / base:+.1%})")
    out = Path(__file__).parent / "results" / f"query_rule-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({k: round(v * 1e6, 2) for k, v in results.items()}, indent=2) + "\n")
    print(f"written {out}")
