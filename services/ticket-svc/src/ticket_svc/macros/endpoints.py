"""Macros API and applying a macro to a ticket (one request, one transaction)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch
from helpdesk_common.identity import CurrentPrincipal, Principal, require_user
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from ..conversation import service as conversation
from ..pii import access as pii_access
from ..pii.codec import requester_of
from ..routing import repository as agents
from ..tickets import service as tickets
from ..tickets.schemas import TicketRead, TicketPatch
from . import kb, render, repository
from .schemas import MacroApplied, MacroIn, MacroPreview, MacroRead

router = APIRouter(tags=["macros"])


def _read(row: Any) -> dict[str, Any]:
    d = row["definition"]
    return {"id": row["id"], "name": row["name"], "actions": d.get("actions", {}), "reply": d.get("reply"),
            "shared": row["owner"] is None, "created_by": row["created_by"], "updated_at": row["updated_at"]}


def _may_use(principal: Principal, row: Any) -> bool:
    return row["owner"] is None or row["owner"] == principal.ref


@router.post("/v1/macros", status_code=201, response_model=MacroRead, summary="Create a macro")
async def create_macro(request: Request, body: MacroIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    if body.shared and not principal.has_role("admin", "supervisor"):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins create shared macros.")
    definition = {"actions": body.actions.model_dump(mode="json", exclude_unset=True),
                  "reply": body.reply.model_dump() if body.reply else None}
    async with runtime_of(request).raw_transaction() as conn:
        row = await repository.insert(conn, macro_id=uuid.uuid4(), name=body.name, definition=definition,
                                      owner=None if body.shared else principal.ref, created_by=principal.ref)
    return JSONBytesResponse(_read(row), status_code=201)


@router.get("/v1/macros", response_model=list[MacroRead], summary="Shared macros and mine")
async def list_macros(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse([_read(r) for r in await repository.visible(conn, user_ref=principal.ref)])


@router.delete("/v1/macros/{macro_id}", status_code=204, summary="Delete a macro")
async def delete_macro(request: Request, macro_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        row = await repository.get(conn, macro_id)
        if row is None or not _may_use(principal, row):
            raise Problem(404, "not-found", "Macro not found", f"No macro {macro_id}.")
        if row["owner"] is None and not principal.has_role("admin", "supervisor"):
            raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins delete shared macros.")
        await repository.delete(conn, macro_id)
    return Response(status_code=204)


async def _usable_macro(conn: Any, principal: Principal, macro_id: uuid.UUID) -> Any:
    macro = await repository.get(conn, macro_id)
    if macro is None or not _may_use(principal, macro):
        raise Problem(404, "not-found", "Macro not found", f"No macro {macro_id}.")
    return macro


async def _kb_snippets(request: Request, reply: dict[str, Any] | None,
                       ticket: Any) -> dict[render.KbRef, Any]:
    """The reply snippets its knowledge-base placeholders name, asked of kb-svc as the agent
    (outside any transaction: kb-svc may take up to its timeout)."""
    refs = render.kb_refs(reply["body"]) if reply else []
    if not refs:
        return {}
    return await kb.snippets_of(request).fetch(refs, token=kb.identity_token(request),
                                               language=ticket["language"])


async def _reply_text(conn: Any, principal: Principal, reply: dict[str, Any], ticket: Any,
                      snippets: dict[render.KbRef, Any]) -> tuple[str, list[dict[str, str]]]:
    agent = await agents.get_agent(conn, principal.id)
    # the requester as the caller may see it: a macro is no way round the masking rule
    context = render.context_for({**ticket, "requester": pii_access.shown(principal, ticket, requester_of(ticket))},
                                 agent_id=principal.id,
                                 agent_name=agent["display_name"] if agent else principal.name)
    return render.render_with_kb(reply["body"], context, snippets)


@router.get("/v1/tickets/{ticket_id}/macros/{macro_id}/preview", response_model=MacroPreview,
            summary="What applying a macro would post and change (placeholders filled), without applying it")
async def preview_macro(request: Request, ticket_id: uuid.UUID, macro_id: uuid.UUID,
                        principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        macro = await _usable_macro(conn, principal, macro_id)
        ticket = await tickets.get_visible(conn, principal=principal, ticket_id=ticket_id)
    reply = macro["definition"].get("reply")
    snippets = await _kb_snippets(request, reply, ticket)
    body, warnings = None, []
    if reply:
        async with runtime_of(request).raw_connection() as conn:
            text, warnings = await _reply_text(conn, principal, reply, ticket, snippets)
        body = {"body": text, "public": reply.get("public", True)}
    return JSONBytesResponse({"reply": body, "actions": macro["definition"].get("actions") or {},
                              "warnings": warnings})


@router.post("/v1/tickets/{ticket_id}/macros/{macro_id}", response_model=MacroApplied,
             summary="Apply a macro: its field changes and its reply, in one transaction")
async def apply_macro(request: Request, ticket_id: uuid.UUID, macro_id: uuid.UUID, principal: CurrentPrincipal,
                      if_match: IfMatch = None) -> JSONBytesResponse:
    require_user(principal)
    # kb-svc is asked before the transaction, so the ticket's row lock is not held while it answers
    async with runtime_of(request).raw_connection() as conn:
        macro = await _usable_macro(conn, principal, macro_id)
        reply = macro["definition"].get("reply")
        ticket = await tickets.get_visible(conn, principal=principal, ticket_id=ticket_id) \
            if reply and render.kb_refs(reply["body"]) else None
    snippets = await _kb_snippets(request, reply, ticket) if ticket is not None else {}
    warnings: list[dict[str, str]] = []
    async with runtime_of(request).raw_transaction() as conn:
        macro = await _usable_macro(conn, principal, macro_id)
        row = await tickets.get_writable(conn, principal=principal, ticket_id=ticket_id)
        tickets.check_version(row, if_match)
        definition = macro["definition"]
        reply = definition.get("reply")
        if reply:
            text, warnings = await _reply_text(conn, principal, reply, row, snippets)
            from ..conversation.schemas import MessageIn

            posted = await conversation.post(conn, ticket=row, principal=principal,
                                             body=MessageIn(body=text, public=reply.get("public", True)), attachments=(),
                                             settings=runtime_of(request).settings)
            row = await tickets.get_writable(conn, principal=principal, ticket_id=posted.message["ticket_id"])
        actions = TicketPatch.model_validate(definition.get("actions") or {}).model_dump(exclude_unset=True)
        if actions:  # apply_patch applies the access rule to the actions, as for a PATCH
            row = await tickets.apply_patch(conn, row, actions, principal=principal, action=f"macro:{macro['name']}")
    return JSONBytesResponse({**tickets.to_read(row, viewer=principal), "warnings": warnings},
                             headers={"ETag": f'W/"{row["version"]}"'})
