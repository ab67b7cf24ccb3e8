"""Merging tickets and linking them (related, parent/child).

Merging moves every message of the source onto the target, notes it on both, and closes the
source as merged. It bypasses the state machine on purpose (an open ticket is closed without
being solved), which is the one place a ticket reaches ``closed`` from anywhere; the move is
still one ``ticket.status_changed`` plus one ``ticket.merged`` event.

Access (``policy``): linking, unlinking and merging write both tickets, so the caller must be
allowed to write both; a ticket they may not read answers 404 whichever side it is on, and a
link list shows only the linked tickets the caller may read.
"""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.problems import Problem

from ..conversation import repository as messages
from ..conversation import service as conversation
from ..db import outbox
from . import changes, policy, repository, service

INVERSE = {"related": "related", "parent": "child", "child": "parent"}


async def _pair(conn: Any, principal: Principal, a: uuid.UUID, b: uuid.UUID) -> tuple[Any, Any, policy.Viewer]:
    """Both tickets locked, each one writable by the caller (else 404), and the caller's viewer."""
    if a == b:
        raise Problem(422, "validation-error", "Same ticket", "A ticket cannot be linked or merged with itself.",
                      errors=[{"field": "other_id", "message": "must be another ticket", "code": "cross_field"}])
    viewer = await service.viewer_for(conn, principal)
    first, second = sorted((a, b))  # lock in a fixed order: no deadlock between opposite merges
    rows = {}
    for ticket_id in (first, second):
        row = await repository.lock_ticket(conn, ticket_id)
        if row is None or policy.check_write(viewer, row) is not None:
            raise service.not_found(ticket_id)
        rows[ticket_id] = row
    return rows[a], rows[b], viewer


async def visible_links(conn: Any, *, principal: Principal, ticket_id: uuid.UUID) -> list[Any]:
    """The ticket's links to tickets the caller may read (a link must not reveal another team's
    ticket, not even its number and subject)."""
    row, viewer = await service.load_with_viewer(conn, principal=principal, ticket_id=ticket_id)
    if row is None or not policy.may_read(viewer, row):
        raise service.not_found(ticket_id)
    return [r for r in await repository.list_links(conn, ticket_id) if policy.may_read(viewer, r)]


async def link(conn: Any, *, principal: Principal, ticket_id: uuid.UUID, other_id: uuid.UUID, kind: str) -> None:
    await _pair(conn, principal, ticket_id, other_id)
    if kind in ("parent", "child"):
        parent_id = other_id if kind == "parent" else ticket_id
        child_id = ticket_id if kind == "parent" else other_id
        if await repository.has_ancestor(conn, ticket_id=parent_id, ancestor_id=child_id):
            raise Problem(409, "link-cycle", "Link cycle", "That link would make a ticket its own ancestor.")
    added = await repository.insert_link(conn, ticket_id=ticket_id, other_id=other_id, kind=kind, actor=principal.ref)
    await repository.insert_link(conn, ticket_id=other_id, other_id=ticket_id, kind=INVERSE[kind], actor=principal.ref)
    if added:
        await repository.insert_audit(conn, ticket_id=ticket_id, actor=principal.ref, action="linked",
                                      changes={"kind": kind, "other_id": str(other_id)})


async def unlink(conn: Any, *, principal: Principal, ticket_id: uuid.UUID, other_id: uuid.UUID, kind: str) -> None:
    if ticket_id == other_id:  # a ticket is never linked to itself: there is no such link to remove
        raise Problem(404, "not-found", "Link not found", "There is no such link.")
    await _pair(conn, principal, ticket_id, other_id)
    removed = await repository.delete_link(conn, ticket_id=ticket_id, other_id=other_id, kind=kind)
    await repository.delete_link(conn, ticket_id=other_id, other_id=ticket_id, kind=INVERSE[kind])
    if not removed:
        raise Problem(404, "not-found", "Link not found", "There is no such link.")
    await repository.insert_audit(conn, ticket_id=ticket_id, actor=principal.ref, action="unlinked",
                                  changes={"kind": kind, "other_id": str(other_id)})


async def merge(conn: Any, *, principal: Principal, source_id: uuid.UUID, target_id: uuid.UUID,
                if_match: str | None = None) -> Any:
    """Merge ``source`` into ``target``; ``if_match`` is the source's (the request's resource)."""
    source, target, viewer = await _pair(conn, principal, source_id, target_id)
    service.check_version(source, if_match)
    refusal = policy.check_merge(viewer, source, target)
    if refusal is not None:
        raise refusal.problem(source_id)
    for row, role in ((source, "source"), (target, "target")):
        if row["status"] == "closed" or row["merged_into"] is not None:
            raise Problem(409, "ticket-closed", "Ticket closed", f"The {role} ticket is closed or merged.")
    moved, moved_public = await messages.move_messages(conn, source_id=source_id, target_id=target_id)
    actor = principal.ref
    target = await changes.apply(
        conn, target, {"message_count": target["message_count"] + moved,
                       "public_message_count": target["public_message_count"] + moved_public},
        actor=actor, action="merged_in", force=True,
    )
    await repository.copy_search(conn, source_id=source_id, target_id=target_id)
    # the target answers on its own channel's route; one it lacks comes from the source
    await messages.copy_reply_routes(conn, source_id=source_id, target_id=target_id)
    note_target = conversation.NewMessage(
        author_kind="system", author_id=None, public=False,
        body_text=f"Ticket #{source['number']} ({source['subject']}) was merged into this ticket; {moved} messages moved.",
    )
    _, target = await conversation.add(conn, target, note_target, actor=actor)
    source = await changes.apply(
        conn, source, {"status": "closed", "custom_status_id": None, "merged_into": target_id, "message_count": 0,
                 "public_message_count": 0},
        actor=actor, action="merged",
    )
    note_source = conversation.NewMessage(
        author_kind="system", author_id=None, public=False,
        body_text=f"Merged into ticket #{target['number']}.",
    )
    await conversation.add(conn, source, note_source, actor=actor)
    await repository.insert_link(conn, ticket_id=source_id, other_id=target_id, kind="merged_into", actor=actor)
    await enqueue_raw(conn, outbox, events.TicketMerged(
        source=changes.SOURCE, subject=str(source_id),
        data=events.TicketMergedData(**changes.ref(source, actor), target_ticket_id=target_id, moved_messages=moved),
    ))
    return target
