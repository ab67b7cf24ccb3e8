"""The public OpenAPI document: the gateway's own paths plus each upstream's /v1 paths."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import re
import time
from typing import Any

import aiohttp
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from helpdesk_common.openapi import problem
from helpdesk_common.problems import Problem

from .endpoints import UPSTREAMS
from .upstreams import base_url

router = APIRouter(include_in_schema=False)
_CACHE_S = 60.0
#: a service builds its document on first request: seconds on a loaded machine, so be patient
_FETCH_TIMEOUT_S = 10.0
_SCHEMA_REF = "#/components/schemas/"


async def _fetch(session: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    try:
        async with session.get(url + "/openapi.json", timeout=aiohttp.ClientTimeout(total=_FETCH_TIMEOUT_S)) as r:
            return await r.json() if r.status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return None


def _rename_refs(node: Any, renamed: dict[str, str]) -> Any:
    """``node`` with every ``$ref`` to a renamed component schema pointing at its new name."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_SCHEMA_REF):
                name = value[len(_SCHEMA_REF):]
                out[key] = _SCHEMA_REF + renamed.get(name, name)
            else:
                out[key] = _rename_refs(value, renamed)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, renamed) for item in node]
    return node


def _gateway_answers(operation: dict[str, Any], *, forwarded: bool) -> None:
    """What the gateway itself may answer on an operation: 429 (its rate limits) on every
    authenticated one, 502/504 (the service unreachable or too slow) on forwarded ones."""
    responses = operation.setdefault("responses", {})
    statuses = ([429] if operation.get("security") != [] else []) + ([502, 504] if forwarded else [])
    for status in statuses:
        responses.setdefault(str(status), problem(status))
    operation["responses"] = dict(sorted(responses.items()))


def merge(own: dict[str, Any], upstream_docs: list[tuple[str, dict[str, Any], set[str]]]) -> dict[str, Any]:
    """The gateway's own document plus, for each upstream (name, document, the /v1 prefixes the
    gateway forwards to it), the paths under those prefixes and the component schemas they use.

    Services name their schemas independently, so two may use one name for different shapes
    (``TicketRead``, ``Problem``, ...). A name already taken by a different schema is renamed
    for that upstream (``<Service>_<Name>``) and its ``$ref``s rewritten, so no service's
    schema overwrites another's; identical schemas are kept once.
    """
    doc = copy.deepcopy(own)
    doc["paths"] = dict(doc.get("paths", {}))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for operations in doc["paths"].values():
        for operation in operations.values():
            _gateway_answers(operation, forwarded=False)
    for name, up, prefixes in upstream_docs:
        up_schemas = up.get("components", {}).get("schemas", {})
        renamed: dict[str, str] = {}
        while True:  # a schema that refers to a renamed one differs too: until nothing changes
            clashing = {schema_name for schema_name, schema in up_schemas.items()
                        if schema_name in schemas and schemas[schema_name] != _rename_refs(schema, renamed)}
            if clashing <= renamed.keys():
                break
            renamed.update({schema_name: f"{_pascal(name)}_{schema_name}" for schema_name in clashing})
        for schema_name, schema in up_schemas.items():
            schemas[renamed.get(schema_name, schema_name)] = _rename_refs(schema, renamed)
        for path, item in up.get("paths", {}).items():
            parts = path.split("/")
            if len(parts) > 2 and parts[1] == "v1" and parts[2] in prefixes:
                item = _rename_refs(item, renamed)
                for operation in item.values():
                    _gateway_answers(operation, forwarded=True)
                doc["paths"][path] = item
    doc["components"]["schemas"] = dict(sorted(schemas.items()))
    for _name, up, _prefixes in upstream_docs:  # a service's own schemes (ticket-svc: visitorToken)
        for scheme_name, scheme in up.get("components", {}).get("securitySchemes", {}).items():
            doc["components"].setdefault("securitySchemes", {}).setdefault(scheme_name, scheme)
    doc["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer",
        "description": ("A user access token from POST /v1/auth/login, or a channel API key (hdk_...); on the "
                        "knowledge base's public routes also a customer token (hkc1..., POST /v1/kb/customer-tokens)."),
    }
    doc["security"] = [{"bearer": []}]
    return doc


def _pascal(name: str) -> str:
    """A service's name as a schema name prefix: ``ticket service`` -> ``TicketService``."""
    return "".join(part.capitalize() for part in name.replace("-", " ").split())


#: where FastAPI's Swagger UI page loads its script, style and icon from
_SWAGGER_ASSETS = "https://cdn.jsdelivr.net"
_SWAGGER_ICON = "https://fastapi.tiangolo.com"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def docs_csp(html: str) -> str:
    """The Content-Security-Policy of the Swagger UI page: its assets from their CDN, its one
    inline script by hash, calls to this origin only (Try it out), never framed."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
                      for script in _INLINE_SCRIPT.findall(html))
    return (f"default-src 'none'; script-src {_SWAGGER_ASSETS} {hashes}; "
            f"style-src {_SWAGGER_ASSETS} 'unsafe-inline'; img-src 'self' data: {_SWAGGER_ICON}; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _require_docs(request: Request) -> None:
    if not request.app.state.settings.api_docs_enabled:
        raise Problem(404, "not-found", "Not found", "No such resource.")


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI for the composed document, when API_DOCS_ENABLED (docs/security.md)."""
    _require_docs(request)
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="Help-desk API")
    page.headers["Content-Security-Policy"] = docs_csp(bytes(page.body).decode())
    return page


@router.get("/openapi.json")
async def openapi(request: Request) -> dict[str, Any]:
    """The composed document, when API_DOCS_ENABLED; otherwise a 404 like any unknown path."""
    _require_docs(request)
    state = request.app.state
    cached = getattr(state, "openapi_cache", None)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    settings = state.settings
    # several prefixes share one upstream (ticket-svc): fetch each document once
    upstreams: dict[str, tuple[str, set[str]]] = {}
    for prefix, (setting, service_name) in UPSTREAMS.items():
        upstreams.setdefault(getattr(settings, setting), (service_name, set()))[1].add(prefix)
    fetched = await asyncio.gather(*(_fetch(state.http, base_url(url)) for url in upstreams))
    doc = merge(request.app.openapi(), [(name, up, prefixes)
                                        for (name, prefixes), up in zip(upstreams.values(), fetched) if up])
    if all(up is not None for up in fetched):
        # a document missing a service (down, or slow to answer) is served but not kept: the
        # next request asks again instead of hiding that service's operations for a minute
        state.openapi_cache = (doc, time.monotonic() + _CACHE_S)
    return doc
