"""Calls of the owning services' own API, as the caller.

Each call carries the caller's signed identity (like the forwarding hop), so what a user may
see or change is decided by the service that owns it, exactly as on ``/v1``. A service's
problem comes back as a ``Problem`` with its status, detail and field errors, which
``errors.ZendeskRoute`` turns into Zendesk's envelope."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
from fastapi import Request

from helpdesk_common import tracing
from helpdesk_common.identity import AGENT_ROLES, IDENTITY_HEADER, Principal
from helpdesk_common.observability import request_id_var
from helpdesk_common.problems import Problem

from ..proxy.upstreams import base_url

#: the service behind each setting, for error messages
SERVICES = {"ticket_url": "ticket service", "customer_url": "customer service"}


def require_agent(principal: Principal) -> None:
    """The surface is for the help desk's users (Zendesk's agents and admins); channel keys and
    knowledge-base editors have their own routes."""
    if principal.kind != "user" or principal.role not in AGENT_ROLES:
        raise Problem(403, "forbidden", "Forbidden", "The Zendesk-compatible API is for agents, supervisors and admins.")


async def call(request: Request, principal: Principal, setting: str, method: str, path: str, *,
               json: Any = None, params: Sequence[tuple[str, str]] | None = None,
               headers: dict[str, str] | None = None) -> tuple[Any, dict[str, str]]:
    """The service's JSON answer and its headers; a ``Problem`` for a 4xx/5xx or no answer."""
    state = request.app.state
    service = SERVICES.get(setting, "service")
    sent = {IDENTITY_HEADER: state.signer.token_for(principal), "accept": "application/json", **(headers or {})}
    rid = request_id_var.get()
    if rid:
        sent["x-request-id"] = rid
    tracing.inject_into(sent)
    data = orjson.dumps(json) if json is not None else None
    if data is not None:
        sent["content-type"] = "application/json"
    try:
        async with state.http.request(method, base_url(getattr(state.settings, setting)) + path, data=data,
                                      params=list(params or ()), headers=sent, allow_redirects=False) as response:
            raw = await response.read()
            status, answer_headers = response.status, {k.lower(): v for k, v in response.headers.items()}
    except asyncio.TimeoutError as exc:
        raise Problem(504, "gateway-timeout", "Upstream timeout", f"The {service} did not answer in time.") from exc
    except aiohttp.ClientError as exc:
        raise Problem(502, "bad-gateway", "Upstream unavailable", f"The {service} is unavailable.") from exc
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if status >= 400:
        doc = body if isinstance(body, dict) else {}
        keep = {k: answer_headers[k] for k in ("retry-after",) if k in answer_headers}
        raise Problem(status, str(doc.get("type", "error")).rsplit("/", 1)[-1], str(doc.get("title", "Error")),
                      doc.get("detail"), headers=keep or None, errors=doc.get("errors"))
    return body, answer_headers
