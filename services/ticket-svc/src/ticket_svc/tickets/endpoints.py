"""Tickets API. One request = one transaction, committed here.

Responses are serialised straight from rows with orjson (declared ``response_model`` keeps
the OpenAPI document exact without paying for a second validation on the hot path).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import Field
from starlette.responses import Response

from helpdesk_common import concurrency
from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.json_route import JsonBodyRoute
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import Int64, Int64Digits, SafeStr, UtcDatetime, fold_key

from ..pii.codec import codec
from . import deletion, merge, repository, service
from .schemas import (
    AssignIn,
    AuditPage,
    DeletedTicketPage,
    LinkIn,
    LinkRead,
    MergeIn,
    Priority,
    Status,
    TicketCreate,
    TicketPage,
    TicketPatch,
    TicketRead,
)

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255,
           description="Repeat a create safely: the same key and body return the same ticket."),
]
IfMatch = concurrency.IfMatch
SlaState = Literal["green", "yellow", "red", "breached", "none"]


def _etag(row) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return concurrency.etag_header(row["version"])


async def create_ticket(
    request: Request, payload: TicketCreate, principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None
) -> JSONBytesResponse:
    # no transaction yet: the service begins one when the creation is more than one statement
    async with runtime_of(request).raw_session() as conn:
        result = await service.create_ticket(
            conn, principal=principal, payload=payload, idempotency_key=idempotency_key, in_transaction=False,
        )
    headers = {"Location": f"/v1/tickets/{result.ticket['id']}", **_etag(result.ticket)}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(service.to_read(result.ticket, viewer=principal, public=service.public_view(principal)),
                             status_code=201, headers=headers)


# the intake's route: FastAPI's per-request machinery only for a request that is not a plain one
# (helpdesk_common/json_route.py; round 19 of docs/performance.md)
router.add_api_route("", create_ticket, methods=["POST"], status_code=201, response_model=TicketRead,
                     summary="Create a ticket", route_class_override=JsonBodyRoute)


@router.get("/deleted", response_model=DeletedTicketPage,
            summary="Deleted tickets, most recently deleted first (admins, supervisors)")
async def list_deleted(request: Request, principal: CurrentPrincipal,
                       limit: Annotated[int, Query(ge=1, le=100)] = 25,
                       cursor: Annotated[str | None, Query(max_length=512)] = None,
                       number: Annotated[list[Annotated[Int64, Field(ge=1)]] | None, Query(
                           max_length=100, description="only these ticket numbers; repeat for several")] = None,
                       ) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        rows, next_cursor = await deletion.list_deleted(conn, principal=principal, limit=limit, cursor=cursor,
                                                        numbers=number)
    return JSONBytesResponse({"items": [deletion.to_deleted_read(r) for r in rows], "next_cursor": next_cursor})


@router.get("/{ticket_id}", response_model=TicketRead, summary="Read a ticket")
async def get_ticket(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    async with runtime_of(request).raw_connection() as conn:
        row = await service.get_visible(conn, principal=principal, ticket_id=ticket_id)
    return JSONBytesResponse(service.to_read(row, viewer=principal, public=service.public_view(principal)),
                             headers=_etag(row))


@router.patch("/{ticket_id}", response_model=TicketRead, summary="Change status, priority, assignment, fields")
async def patch_ticket(request: Request, ticket_id: uuid.UUID, patch: TicketPatch, principal: CurrentPrincipal,
                       if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).raw_transaction() as conn:
        row = await service.update_ticket(conn, principal=principal, ticket_id=ticket_id, patch=patch,
                                          if_match=if_match)
    return JSONBytesResponse(service.to_read(row, viewer=principal), headers=_etag(row))


@router.delete("/{ticket_id}", status_code=204,
               summary="Delete a ticket (soft: closed, hidden, restorable; admins, supervisors)")
async def delete_ticket(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal,
                        if_match: IfMatch = None) -> Response:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        await deletion.delete(conn, principal=principal, ticket_id=ticket_id, if_match=if_match)
    return Response(status_code=204)


@router.post("/{ticket_id}/restore", response_model=TicketRead,
             summary="Restore a deleted ticket with the status it had (admins, supervisors)")
async def restore_ticket(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        row = await deletion.restore(conn, principal=principal, ticket_id=ticket_id)
    return JSONBytesResponse(service.to_read(row, viewer=principal), headers=_etag(row))


async def list_filters(
    status: Annotated[list[Status] | None, Query(max_length=50)] = None,
    priority: Priority | None = None,
    customer_id: uuid.UUID | None = None,
    assignee_id: Annotated[SafeStr | None, Query(max_length=128, description='an agent id, or "none"')] = None,
    team_id: uuid.UUID | None = None,
    tag: Annotated[list[SafeStr] | None, Query(max_length=10)] = None,
    channel: Annotated[SafeStr | None, Query(max_length=32)] = None,
    type: Annotated[SafeStr | None, Query(max_length=64)] = None,
    created_after: UtcDatetime | None = None,
    created_before: UtcDatetime | None = None,
    updated_after: UtcDatetime | None = None,
    updated_before: UtcDatetime | None = None,
    sla_state: SlaState | None = None,
    customer_tier: Annotated[SafeStr | None, Query(min_length=1, max_length=50,
                                               description="the customer's tier, compared case-folded")] = None,
    number: Annotated[list[Annotated[Int64, Field(ge=1)]] | None, Query(
        max_length=100, description="ticket numbers (the number people and Zendesk-style ids use); repeat "
                                    "for several")] = None,
    requester: Annotated[SafeStr | None, Query(
        min_length=1, max_length=256,
        description="the requester's e-mail address, phone number, openid or external id (exact; matched "
                    "through blind indexes, docs/security.md \"Personal data at rest\")")] = None,
) -> dict[str, Any]:
    """The list's filters as ``repository.list_tickets_raw`` takes them; a dependency so the
    ticket list and the report downloads (``/v1/export/tickets.csv``, ``.xlsx``) accept exactly
    the same parameters with the same checks. Async, though it awaits nothing: a sync
    dependency runs in the thread pool on every request (5 % of ticket-svc's CPU under search)."""
    return {
        "statuses": status, "priority": priority, "customer_id": customer_id, "assignee_id": assignee_id,
        "team_id": team_id, "tags": tag, "channel": channel, "type": type, "created_after": created_after,
        "created_before": created_before, "updated_after": updated_after, "updated_before": updated_before,
        "sla_state": sla_state, "customer_tier": fold_key(customer_tier) if customer_tier is not None else None,
        "requester_bidx": codec().query_indexes(requester) if requester is not None else None,
        "numbers": number,
    }


ListFilters = Annotated[dict[str, Any], Depends(list_filters)]


@router.get("", response_model=TicketPage, summary="List and search tickets",
            responses=problem_responses(404, _404="no saved view `view_id` of the caller's"))
async def list_tickets(
    request: Request,
    principal: CurrentPrincipal,
    filters: ListFilters,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    q: Annotated[SafeStr | None, Query(max_length=500, description="full-text search, Chinese or English")] = None,
    sort: Literal["created", "updated"] = "created",
    view_id: uuid.UUID | None = None,
) -> JSONBytesResponse:
    async with runtime_of(request).raw_connection() as conn:
        if view_id is not None:
            from ..views import service as views

            saved = await views.filters_of(conn, principal=principal, view_id=view_id)
            filters = {**saved, **{k: v for k, v in filters.items() if v is not None}}
            q = q or saved.get("q")
        rows, next_cursor = await service.list_visible(
            conn, principal=principal, limit=limit, cursor=cursor, filters=filters, q=q, sort=sort,
        )
    public = service.public_view(principal)
    return JSONBytesResponse({"items": [service.to_read(r, viewer=principal, public=public) for r in rows],
                              "next_cursor": next_cursor})


@router.get("/{ticket_id}/audit", response_model=AuditPage, summary="Every change: actor, time, before/after")
async def audit_trail(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal,
                      limit: Annotated[int, Query(ge=1, le=100)] = 100,
                      cursor: Annotated[Int64Digits | None, Query(max_length=19)] = None) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        await service.get_visible(conn, principal=principal, ticket_id=ticket_id)
        rows = await repository.list_audit(conn, ticket_id=ticket_id, after_id=int(cursor or 0), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONBytesResponse({
        "items": [dict(r) for r in rows],
        "next_cursor": str(rows[-1]["id"]) if more and rows else None,
    })


@router.post("/{ticket_id}/assign", response_model=TicketRead, summary="Assign by hand (supervisors, admins)")
async def assign(request: Request, ticket_id: uuid.UUID, body: AssignIn, principal: CurrentPrincipal,
                 if_match: IfMatch = None) -> JSONBytesResponse:
    require_user(principal, "admin", "supervisor")
    from ..routing import service as routing

    async with runtime_of(request).raw_transaction() as conn:
        row = await service.get_visible(conn, principal=principal, ticket_id=ticket_id, lock=True)
        service.check_version(row, if_match)
        team_id = body.team_id if "team_id" in body.model_fields_set else row["team_id"]
        await service.authorize_change(conn, principal=principal, row=row,
                                       changes={"team_id": team_id, "assignee_id": body.assignee_id})
        if row["status"] == "closed":
            raise Problem(409, "ticket-closed", "Ticket closed", "A closed ticket is final.")
        await routing.check_assignable(conn, agent_id=body.assignee_id, team_id=body.team_id)
        if team_id != row["team_id"]:
            await routing.check_team(conn, team_id)
        row = await routing.assign(conn, row, team_id=team_id, assignee_id=body.assignee_id, reason="manual",
                                   actor=principal.ref, offered=False)
    return JSONBytesResponse(service.to_read(row, viewer=principal), headers=_etag(row))


@router.post("/{ticket_id}/accept", response_model=TicketRead, summary="Accept a ticket offered to me")
async def accept(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal,
                 if_match: IfMatch = None) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        row = await service.get_visible(conn, principal=principal, ticket_id=ticket_id, lock=True)
        service.check_version(row, if_match)
        if row["assignee_id"] != principal.id:
            raise Problem(409, "not-offered", "Not offered to you", "This ticket is not assigned to you.")
        if row["assignment_state"] == "offered":
            from . import changes

            row = await changes.apply(conn, row, {"assignment_state": "accepted", "offered_at": None},
                                      actor=principal.ref, force=True)
    return JSONBytesResponse(service.to_read(row, viewer=principal), headers=_etag(row))


@router.get("/{ticket_id}/links", response_model=list[LinkRead], summary="Related, parent/child, follow-up links")
async def list_links(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    async with runtime_of(request).raw_connection() as conn:
        rows = await merge.visible_links(conn, principal=principal, ticket_id=ticket_id)
    return JSONBytesResponse([{k: r[k] for k in ("other_id", "kind", "other_number", "other_subject",
                                                  "other_status", "created_at")} for r in rows])


@router.post("/{ticket_id}/links", status_code=204, summary="Link two tickets")
async def add_link(request: Request, ticket_id: uuid.UUID, body: LinkIn, principal: CurrentPrincipal) -> Response:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        await merge.link(conn, principal=principal, ticket_id=ticket_id, other_id=body.other_id, kind=body.kind)
    return Response(status_code=204)


@router.delete("/{ticket_id}/links/{kind}/{other_id}", status_code=204, summary="Remove a link")
async def remove_link(request: Request, ticket_id: uuid.UUID, kind: Literal["related", "parent", "child"],
                      other_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        await merge.unlink(conn, principal=principal, ticket_id=ticket_id, other_id=other_id, kind=kind)
    return Response(status_code=204)


@router.post("/{ticket_id}/merge", response_model=TicketRead,
             summary="Merge this ticket into another (If-Match: this ticket's version)")
async def merge_into(request: Request, ticket_id: uuid.UUID, body: MergeIn, principal: CurrentPrincipal,
                     if_match: IfMatch = None) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        target = await merge.merge(conn, principal=principal, source_id=ticket_id, target_id=body.target_id,
                                   if_match=if_match)
    return JSONBytesResponse(service.to_read(target, viewer=principal), headers=_etag(target))
