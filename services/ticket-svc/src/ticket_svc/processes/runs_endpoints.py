"""The running-process API: decisions on a ticket's current step, the ticket's process, the
approvals queue. One request, one transaction; the decision locks the ticket row, which is what
serialises concurrent decisions on one ticket (the machine then answers the late ones).

Object-level rule: whoever may read the ticket may read its process; an approver or signer of
any of its steps may read it and decide too, even when the ticket's team is not theirs (they
were named to decide). A task or an agent-recorded customer confirmation needs write access to
the ticket, as solving it would. Anyone else gets 404, as for the ticket itself.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, Principal, require_user
from helpdesk_common.openapi import problem_responses
from helpdesk_common.pagination import decode_cursor, encode_cursor
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import SafeStr

from ..tickets import changes, policy
from ..tickets import repository as tickets_repository
from ..tickets import service as tickets
from . import runs_repository as repository
from . import runtime
from .definitions import KEY_PATTERN
from .runs_schemas import ApprovalPage, DecisionIn, ProcessRunRead, StepRead

tickets_router = APIRouter(prefix="/v1/tickets", tags=["processes"])
approvals_router = APIRouter(prefix="/v1/approvals", tags=["processes"])

StepKeyPath = Annotated[str, Path(pattern=KEY_PATTERN, max_length=63, description="the step's key in the definition")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255,
           description="Repeat a decision safely: the same key and body return the same answer, once."),
]


async def _load(conn: Any, principal: Principal, ticket_id: uuid.UUID, *, lock: bool) -> tuple[Any, policy.Viewer, Any]:
    """(ticket, viewer, newest process) when the caller may see the ticket or decides on its
    process; 404 otherwise."""
    row, viewer = await tickets.load_with_viewer(conn, principal=principal, ticket_id=ticket_id, lock=lock)
    if row is None or row["deleted_at"] is not None:  # a deleted ticket: not even its approvers'
        raise tickets.not_found(ticket_id)
    process = await repository.latest_process(conn, ticket_id)
    if policy.may_read(viewer, row):
        return row, viewer, process
    if process is not None and principal.is_user and await repository.is_party_to(conn, process["id"], principal.id):
        return row, viewer, process
    raise tickets.not_found(ticket_id)


@tickets_router.post(
    "/{ticket_id}/steps/{step_key}/decisions", response_model=StepRead,
    summary="Decide on the ticket's current step: approve / reject / sign / complete / confirm",
    responses=problem_responses(403, 404, 409, 422, _403="not_an_approver: the caller is not among those who decide",
                                _404="no such ticket (or not visible), no process, or no such step",
                                _409="step_finished, step_not_current, already_decided, out_of_turn, expired, "
                                     "step_unstaffed (the next step has nobody to decide it)",
                                _422="wrong_decision_for_kind, or a reused Idempotency-Key"))
async def post_decision(request: Request, ticket_id: uuid.UUID, step_key: StepKeyPath, body: DecisionIn,
                        principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    """The answer is the step after the decision (``status`` active while more decisions are
    needed). Events: ``ticket.approval_decided`` (approval, countersign), and when the decision
    ends the step ``ticket.step_completed`` (plus ``ticket.customer_confirmed`` for a
    confirmation) and whatever the next step starts."""
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        original = await tickets.claim_key(conn, principal=principal, key=idempotency_key,
                                           digest=tickets.request_hash(body), scope=f"decision:{ticket_id}:{step_key}",
                                           ticket_id=ticket_id)
        if original is not None and original[1] is not None:
            return JSONBytesResponse(original[1], headers={"Idempotent-Replayed": "true"})
        ticket, viewer, _ = await _load(conn, principal, ticket_id, lock=True)
        current = await runtime.current_step(conn, ticket_id)
        kind = current["kind"] if current is not None and current["key"] == step_key else None
        if kind in ("task", "customer_confirmation"):
            refused = policy.check_write(viewer, ticket)
            if refused is not None:
                raise refused.problem(ticket_id)
        answer = await runtime.decide(conn, ticket, step_key=step_key, actor=principal.ref, decision=body.decision,
                                      comment=body.comment, via="agent" if kind == "customer_confirmation" else "api")
        response = changes.jsonable(answer)
        if idempotency_key is not None:
            await tickets_repository.store_idempotent_response(conn, principal=principal.ref, key=idempotency_key,
                                                               response=response)
    return JSONBytesResponse(response)


@tickets_router.get("/{ticket_id}/process", response_model=ProcessRunRead,
                    summary="The ticket's process: version, current step, every step run with its decisions",
                    responses=problem_responses(404, _404="no such ticket (or not visible), or it never ran a process"))
async def get_ticket_process(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        _, _, process = await _load(conn, principal, ticket_id, lock=False)
        if process is None:
            raise Problem(404, "no-process", "No process", f"Ticket {ticket_id} never ran a process.", code="no_process")
        steps = await repository.steps_of(conn, process["id"])
    current = next((s for s in steps if s["id"] == process["current_step_id"]), None)
    return JSONBytesResponse(changes.jsonable({
        "id": process["id"], "ticket_id": process["ticket_id"], "ticket_type": process["ticket_type"],
        "version": process["version"], "state": process["state"], "flagged": process["flagged"],
        "current_step": None if current is None else {"key": current["key"], "kind": current["kind"],
                                                      "status": current["status"]},
        "started_by": process["started_by"], "started_at": process["started_at"],
        "finished_at": process["finished_at"], "steps": [runtime.step_view(s) for s in steps]}))


@approvals_router.get("", response_model=ApprovalPage, summary="The caller's approvals queue (pending or decided)",
                      responses=problem_responses(403, _403="user_id of someone else, asked by an agent"))
async def list_approvals(
    request: Request, principal: CurrentPrincipal,
    state: Literal["pending", "decided"] = "pending",
    user_id: Annotated[SafeStr | None, Query(min_length=1, max_length=128,
                                             description="whose queue (supervisors and admins); default: the caller")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JSONBytesResponse:
    """``pending``: active approval and countersign steps waiting for the user (for a sequential
    countersign, only when it is their party's turn); ``decided``: steps they decided on. Newest
    first."""
    require_user(principal)
    if user_id is not None and user_id != principal.id and not principal.has_role("supervisor", "admin"):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins read someone else's queue.")
    async with runtime_of(request).raw_connection() as conn:
        rows = await repository.queue(conn, user_id=user_id or principal.id, decided=state == "decided",
                                      after=decode_cursor(cursor) if cursor else None, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{**runtime.step_view(r), "process_version": r["version"],
              "ticket": {"id": r["ticket_id"], "number": r["number"], "subject": r["subject"],
                         "status": r["ticket_status"], "priority": r["priority"]}} for r in rows]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None
    return JSONBytesResponse(changes.jsonable({"items": items, "next_cursor": next_cursor}))
