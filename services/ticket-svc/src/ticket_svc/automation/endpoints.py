"""The trigger and automation admin API, the dry run and a ticket's rule runs.

Admins write; supervisors and agents read (channel keys nothing). One request, one transaction.
A rule is edited in place: ``version`` is its ETag, ``If-Match`` on PUT and DELETE names the
version the admin saw (412 ``version-conflict`` when another change came first; without it the
last write wins, as everywhere in this API). ``PUT /order`` takes the whole order at once, so two
admins reordering cannot interleave into an order neither chose.
"""


import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, etag_header
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import Int64Digits

from ..tickets import repository as ticket_repository
from ..tickets import service as tickets
from ..tickets.changes import jsonable
from . import executor, repository, service
from .dry_run import DryRun
from .schemas import (AutomationWrite, DryRunIn, DryRunRead, RuleOrder, RulePage, RuleRead, RuleRunPage,
                      TriggerWrite)

ADMIN = "admin"
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "not an admin (writes), or not a user"},
    404: {"description": "no such rule"},
    412: {"description": "If-Match names an older version"},
    422: {"description": "invalid rule: each error names its field"},
}


def _rule_routes(kind: str, body_model: type[Any]) -> APIRouter:
    """The same six operations for triggers and for automations."""
    plural = f"{kind}s"
    router = APIRouter(prefix=f"/v1/{plural}", tags=[plural])
    Body = body_model  # noqa: N806 - a type for FastAPI

    @router.get("", response_model=RulePage, summary=f"Every {kind} in evaluation order")
    async def list_rules(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
        require_user(principal)
        async with runtime_of(request).raw_connection() as conn:
            rows = await repository.list_rules(conn, kind)
        return JSONBytesResponse({"items": [service.to_read(r) for r in rows], "next_cursor": None})

    @router.post("", status_code=201, response_model=RuleRead, responses=_ERRORS,
                 summary=f"Add a {kind} (admin); without position: after the last one")
    async def create_rule(request: Request, body: Body, principal: CurrentPrincipal,  # type: ignore[valid-type]
                          idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
        """A retry with the same ``Idempotency-Key`` and body answers the rule it created."""
        require_user(principal, ADMIN)
        async with runtime_of(request).raw_transaction() as conn:
            original = await tickets.claim_key(conn, principal=principal, key=idempotency_key,
                                               digest=tickets.request_hash(body), scope=f"{kind}.create",
                                               ticket_id=None)
            if original is not None and original[1] is not None:
                return JSONBytesResponse(original[1], status_code=201,
                                         headers={**etag_header(original[1]["version"]), "Idempotent-Replayed": "true"})
            row = await service.create(conn, kind, body, actor=principal.ref)
            answer = JSONBytesResponse(service.to_read(row), status_code=201, headers=etag_header(row["version"]))
            if idempotency_key is not None:  # the answer as sent, so a replay is byte for byte the same
                await ticket_repository.store_idempotent_response(conn, principal=principal.ref, key=idempotency_key,
                                                                  response=orjson.loads(answer.body))
        service.invalidate(kind)
        return answer

    @router.put("/order", response_model=RulePage, responses=_ERRORS,
                summary=f"Set the evaluation order of every {kind} (admin): the whole list of ids")
    async def order_rules(request: Request, body: RuleOrder, principal: CurrentPrincipal) -> JSONBytesResponse:
        require_user(principal, ADMIN)
        async with runtime_of(request).raw_transaction() as conn:
            rows = await service.reorder(conn, kind, body.ids, actor=principal.ref)
        service.invalidate(kind)
        return JSONBytesResponse({"items": [service.to_read(r) for r in rows], "next_cursor": None})

    @router.get("/{rule_id:uuid}", response_model=RuleRead, responses=_ERRORS, summary=f"One {kind}")
    async def get_rule(request: Request, rule_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
        require_user(principal)
        async with runtime_of(request).raw_connection() as conn:
            row = await repository.get_rule(conn, kind, rule_id)
        if row is None:
            raise service.not_found(kind, rule_id)
        return JSONBytesResponse(service.to_read(row), headers=etag_header(row["version"]))

    @router.put("/{rule_id:uuid}", response_model=RuleRead, responses=_ERRORS,
                summary=f"Replace a {kind} (admin); If-Match: its version")
    async def put_rule(request: Request, rule_id: uuid.UUID, body: Body,  # type: ignore[valid-type]
                       principal: CurrentPrincipal, if_match: IfMatch = None) -> JSONBytesResponse:
        require_user(principal, ADMIN)
        async with runtime_of(request).raw_transaction() as conn:
            row = await service.replace(conn, kind, rule_id, body, if_match=if_match, actor=principal.ref)
        service.invalidate(kind)
        return JSONBytesResponse(service.to_read(row), headers=etag_header(row["version"]))

    @router.delete("/{rule_id:uuid}", status_code=204, responses=_ERRORS,
                   summary=f"Delete a {kind} (admin); If-Match: its version")
    async def delete_rule(request: Request, rule_id: uuid.UUID, principal: CurrentPrincipal,
                          if_match: IfMatch = None) -> Response:
        require_user(principal, ADMIN)
        async with runtime_of(request).raw_transaction() as conn:
            await service.delete(conn, kind, rule_id, if_match=if_match)
        service.invalidate(kind)
        return Response(status_code=204)

    return router


triggers_router = _rule_routes(service.TRIGGER, TriggerWrite)
automations_router = _rule_routes(service.AUTOMATION, AutomationWrite)
router = APIRouter(tags=["rules"])


def _id(value: Any) -> Any:
    return None if value is None else str(value)


def dry_run_read(ticket_id: uuid.UUID, result: DryRun, jsonable: Callable[[Any], Any]) -> dict[str, Any]:
    state = result.ticket
    return {
        "ticket_id": ticket_id, "passes": result.passes, "bounded": result.bounded,
        "triggers": [{"id": _id(v.id), "name": v.name, "position": v.position, "fires": v.fires,
                      "pass_number": v.pass_number,
                      "reasons": [{"condition": text, "holds": holds} for text, holds in v.reasons],
                      "changes": jsonable(v.changes), "effects": [executor.effect_json(e) for e in v.effects]}
                     for v in result.triggers],
        "ticket": jsonable({name: getattr(state, name) for name in state.__slots__}),
        "automations": [{"id": _id(v.id), "name": v.name, "state": v.state, "due_at": v.due_at,
                         "episode_key": v.episode_key,
                         "reasons": [{"condition": text, "holds": holds} for text, holds in v.reasons]}
                        for v in result.automations],
    }


@router.post("/v1/rules/dry-run", response_model=DryRunRead,
             responses={404: {"description": "no such ticket (or not one the caller may see)"}},
             summary="Which triggers an update of a ticket would fire, and when each automation is due; "
                     "nothing is written or sent")
async def dry_run(request: Request, body: DryRunIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        ticket = await tickets.get_visible(conn, principal=principal, ticket_id=body.ticket_id)
        result = await service.dry_run_on(conn, ticket, body, now=datetime.now(UTC))
    return JSONBytesResponse(dry_run_read(body.ticket_id, result, jsonable))


@router.get("/v1/tickets/{ticket_id}/rule-runs", response_model=RuleRunPage,
            responses={404: {"description": "no such ticket (or not one the caller may see)"}},
            summary="The triggers and automations that fired on a ticket, oldest first")
async def rule_runs(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal,
                    limit: Annotated[int, Query(ge=1, le=100)] = 100,
                    cursor: Annotated[Int64Digits | None, Query(max_length=19)] = None) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        await tickets.get_visible(conn, principal=principal, ticket_id=ticket_id)
        rows = await repository.list_runs(conn, ticket_id=ticket_id, after_id=int(cursor or 0), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{**{k: v for k, v in dict(r).items() if k != "pass"}, "pass_number": r["pass"]} for r in rows]
    return JSONBytesResponse({"items": items, "next_cursor": str(rows[-1]["id"]) if more and rows else None})
