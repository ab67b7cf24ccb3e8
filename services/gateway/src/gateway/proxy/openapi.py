"""The public OpenAPI document: the gateway's own paths plus each upstream's /v1 paths."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from helpdesk_common.problems import Problem

from .endpoints import UPSTREAMS

router = APIRouter(include_in_schema=False)
_CACHE_S = 60.0


async def _fetch(session: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    try:
        async with session.get(url + "/openapi.json", timeout=aiohttp.ClientTimeout(total=3)) as r:
            return await r.json() if r.status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return None


def merge(own: dict[str, Any], upstream_docs: list[dict[str, Any]]) -> dict[str, Any]:
    doc = {**own, "paths": dict(own.get("paths", {}))}
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for up in upstream_docs:
        for path, item in up.get("paths", {}).items():
            if path.startswith("/v1/"):
                doc["paths"][path] = item
        schemas.update(up.get("components", {}).get("schemas", {}))
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer",
        "description": "A user access token from POST /v1/auth/login, or a channel API key (hdk_...).",
    }
    doc["security"] = [{"bearer": []}]
    return doc


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI for the composed document (GATEWAY_DOCS_ENABLED=false turns it off)."""
    if not request.app.state.settings.docs_enabled:
        raise Problem(404, "not-found", "Not found", "No such resource.")
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Help-desk API")


@router.get("/openapi.json")
async def openapi(request: Request) -> dict[str, Any]:
    state = request.app.state
    cached = getattr(state, "openapi_cache", None)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    settings = state.settings
    # several prefixes share one upstream (ticket-svc): fetch each document once
    urls = dict.fromkeys(getattr(settings, s) for s, _ in UPSTREAMS.values())
    fetched = await asyncio.gather(*(_fetch(state.http, url) for url in urls))
    doc = merge(request.app.openapi(), [d for d in fetched if d])
    state.openapi_cache = (doc, time.monotonic() + _CACHE_S)
    return doc
