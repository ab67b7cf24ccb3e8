"""Ticket rules: creation with idempotency, visibility, updates through the state machine,
listing and search. Every write goes through ``changes.apply`` (audit + events); who may read
and change what is ``policy`` (pure), applied here to every read and write."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from helpdesk_common import concurrency, events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw, insert_from_params, note_write
from helpdesk_common.pagination import decode_cursor, encode_cursor
from helpdesk_common.problems import Problem

from ..db import outbox
from ..pii import access as pii_access
from ..pii.codec import cc_of, csat_comment_of, requester_of
from ..routing import repository as routing_repository
from . import changes, lifecycle, policy, repository, search
from .schemas import TicketCreate, TicketPatch

SOURCE = changes.SOURCE
#: the actor of changes that follow customer-svc's events (tier on open tickets)
CUSTOMER_ACTOR = "system:customer"
INITIAL_STATUS = "new"


@dataclass(frozen=True, slots=True)
class CreateResult:
    ticket: Mapping[str, Any]
    replayed: bool


def request_hash(payload: Any) -> str:
    dumped = payload.model_dump(mode="json") if hasattr(payload, "model_dump") else payload
    return hashlib.sha256(orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)).hexdigest()


def channel_of(principal: Principal) -> str:
    return principal.channel or ("agent" if principal.is_user else "api")


def not_found(ticket_id: Any) -> Problem:
    return Problem(404, "not-found", "Ticket not found", f"No ticket {ticket_id}.")


async def viewer_for(conn: Any, principal: Principal) -> policy.Viewer:
    """The caller as the access rule sees it; reads an agent's teams (fresh: a removal from a
    team applies to the next request), nothing for staff and channel keys."""
    if not policy.needs_teams(principal):
        return policy.viewer_of(principal)
    return policy.viewer_of(principal, await routing_repository.team_ids_of(conn, principal.id))


async def authorize_change(conn: Any, *, principal: Principal, row: Mapping[str, Any],
                           changes: Mapping[str, Any]) -> None:
    """Raise the rule's problem (404 unseen, 403 forbidden field) unless ``principal`` may set
    ``changes`` on ``row``. Every user-driven write of ticket fields comes through here."""
    refusal = policy.check_change(await viewer_for(conn, principal), row, changes)
    if refusal is not None:
        raise refusal.problem(row["id"])


async def claim_key(conn: Any, *, principal: Principal, key: str | None, digest: str, scope: str,
                    ticket_id: uuid.UUID | None) -> tuple[uuid.UUID | None, Any] | None:
    """None when the key is new (or absent); else (ticket id, stored response) of the original request."""
    if key is None:
        return None
    claimed, owner, owner_hash, response = await repository.claim_idempotency_key(
        conn, principal=principal.ref, key=key, request_hash=digest, ticket_id=ticket_id, scope=scope
    )
    if claimed:
        return None
    if owner_hash != digest:
        raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                      "This Idempotency-Key was already used with a different request.")
    return owner, response


async def create_ticket(
    conn: Any, *, principal: Principal, payload: TicketCreate, idempotency_key: str | None,
    in_transaction: bool = True,
) -> CreateResult:
    """``in_transaction`` False: ``conn`` holds no transaction; one is begun here when the
    creation writes more than the ticket's own statement (an Idempotency-Key's claim and the
    ticket commit together), else ``intake.open_ticket`` decides."""
    if not in_transaction and idempotency_key is not None:
        async with conn.transaction():
            return await create_ticket(conn, principal=principal, payload=payload, idempotency_key=idempotency_key)
    ticket_id = uuid.uuid4()
    original = await claim_key(conn, principal=principal, key=idempotency_key, digest=request_hash(payload),
                               scope="ticket.create", ticket_id=ticket_id)
    if original is not None:
        existing = await repository.get_ticket_raw(conn, original[0])
        if existing is None:  # pragma: no cover - keys and tickets commit together
            raise Problem(409, "conflict", "Conflict", "The original request is not visible yet.")
        return CreateResult(existing, replayed=True)
    if payload.assignee_id is not None or payload.team_id is not None:
        refusal = policy.check_create(await viewer_for(conn, principal), team_id=payload.team_id,
                                      assignee_id=payload.assignee_id)
        if refusal is not None:
            raise refusal.problem()
    from ..intake import service as intake  # late: intake builds on this module

    row = await intake.open_ticket(
        conn, principal=principal, ticket_id=ticket_id, subject=payload.subject, description=payload.description,
        requester=payload.requester.model_dump(exclude_none=True), priority=payload.priority, type_=payload.type,
        tags=payload.tags, custom_fields=payload.custom_fields, language=payload.language, cc=payload.cc,
        channel=channel_of(principal), assignee_id=payload.assignee_id, team_id=payload.team_id,
        in_transaction=in_transaction,
    )
    return CreateResult(row, replayed=False)


async def load_with_viewer(conn: Any, *, principal: Principal, ticket_id: uuid.UUID,
                           lock: bool = False) -> tuple[Any, policy.Viewer]:
    """The ticket row (None if there is none; no access check) and the caller's viewer, in one
    statement: an agent's teams are read by a subquery of the ticket's SELECT, since this is
    the hot path of every ticket read."""
    if policy.needs_teams(principal):
        row = await repository.get_ticket_as_agent(conn, ticket_id, agent_id=principal.id, lock=lock)
        return row, policy.viewer_of(principal, row["viewer_team_ids"] if row is not None else ())
    row = await (repository.lock_ticket if lock else repository.get_ticket_raw)(conn, ticket_id)
    return row, policy.viewer_of(principal)


async def get_visible(conn: Any, *, principal: Principal, ticket_id: uuid.UUID, lock: bool = False) -> Any:
    """The ticket if the caller may read it, else 404 (existence stays private)."""
    row, viewer = await load_with_viewer(conn, principal=principal, ticket_id=ticket_id, lock=lock)
    if row is None or not policy.may_read(viewer, row):
        raise not_found(ticket_id)
    return row


async def get_writable(conn: Any, *, principal: Principal, ticket_id: uuid.UUID) -> Any:
    """The locked ticket if the caller may write to it (a message, a macro, a PATCH), else 404.
    Field-level limits are ``authorize_change``'s."""
    row, viewer = await load_with_viewer(conn, principal=principal, ticket_id=ticket_id, lock=True)
    if row is None or policy.check_write(viewer, row) is not None:
        raise not_found(ticket_id)
    return row


def check_version(row: Mapping[str, Any], if_match: str | None) -> None:
    """Optimistic concurrency on the locked ticket: the shared rule (``helpdesk_common.concurrency``):
    no If-Match or ``*`` passes, one naming the current version passes, anything else is a 412."""
    concurrency.check_version(row["version"], if_match, what="ticket")


async def resolve_status(conn: Any, requested: str) -> tuple[str, uuid.UUID | None, str | None]:
    """(category, custom status id, custom status key) for a category or a custom status key."""
    if requested in lifecycle.CATEGORIES:
        return requested, None, None
    from ..statuses import repository as statuses

    custom = await statuses.get_by_key(conn, requested)
    if custom is None or not custom["active"]:
        raise Problem(422, "validation-error", "Invalid status", f"Unknown status {requested!r}.",
                      errors=[{"field": "status", "message": "not a status category or an active custom status",
                               "code": "not_found"}])
    return custom["category"], custom["id"], custom["key"]


async def update_ticket(conn: Any, *, principal: Principal, ticket_id: uuid.UUID, patch: TicketPatch,
                        if_match: str | None) -> Any:
    row = await get_writable(conn, principal=principal, ticket_id=ticket_id)
    check_version(row, if_match)
    return await apply_patch(conn, row, patch.model_dump(exclude_unset=True), principal=principal)


async def apply_patch(conn: Any, row: Mapping[str, Any], fields: dict[str, Any], *, principal: Principal,
                      action: str = "updated") -> Any:
    """Authorize, validate and apply a patch (PATCH body or macro actions) to the locked ``row``.

    The access rule is checked here, not by the callers, so every path that sets ticket fields
    on a user's behalf (PATCH, macros, whatever comes next) gets the same answer.
    """
    from ..routing import service as routing  # late: routing builds on this module

    await authorize_change(conn, principal=principal, row=row, changes=fields)
    actor = principal.ref
    if row["merged_into"] is not None or (row["status"] == "closed" and set(fields) - {"status"}):
        raise Problem(409, "ticket-closed", "Ticket closed", "A closed ticket is final; open a follow-up instead.")
    values: dict[str, Any] = {}
    custom_key = None
    if "status" in fields and fields["status"] is not None:
        category, custom_id, custom_key = await resolve_status(conn, fields["status"])
        current = lifecycle.StatusState(row["status"], str(row["custom_status_id"]) if row["custom_status_id"] else None)
        try:
            decided = lifecycle.decide(current, lifecycle.StatusState(category, str(custom_id) if custom_id else None))
        except lifecycle.IllegalTransition as exc:
            raise Problem(409, "illegal-transition", "Illegal status change", str(exc),
                          current_status=row["status"], requested_status=fields["status"]) from exc
        if decided is not None:
            values["status"] = category
            values["custom_status_id"] = custom_id
    for name in ("subject", "priority", "type", "language"):
        if name in fields:
            values[name] = fields[name]
    tags = list(fields["tags"]) if fields.get("tags") is not None else list(row["tags"])
    tags += [t for t in fields.get("add_tags") or () if t not in tags]
    tags = [t for t in tags if t not in set(fields.get("remove_tags") or ())]
    if tags != list(row["tags"]):
        values["tags"] = tags
    for name in ("cc", "followers"):
        if fields.get(name) is not None:
            values[name] = list(dict.fromkeys(fields[name]))
    if values.get("followers"):  # agents that exist; the ones already following are not asked again
        await routing.check_followers(conn, [f for f in values["followers"] if f not in row["followers"]])
    if "custom_fields" in fields and fields["custom_fields"] is not None:
        from ..forms import service as forms

        values["custom_fields"], form_version = await forms.validate_patch(
            conn, ticket_type=values.get("type", row["type"]), ticket=row, patch=fields["custom_fields"]
        )
        if form_version is not None:
            values["form_version"] = form_version
    reason = "manual"
    if "team_id" in fields:
        if fields["team_id"] != row["team_id"]:
            await routing.check_team(conn, fields["team_id"])
        values["team_id"] = fields["team_id"]
    if "assignee_id" in fields:
        await routing.check_assignable(conn, agent_id=fields["assignee_id"], team_id=values.get("team_id", row["team_id"]))
        values["assignee_id"] = fields["assignee_id"]
        values["assignment_state"] = "accepted" if fields["assignee_id"] else None
        values["offered_at"] = None
    # a new subject replaces the old one's lexemes, in the same UPDATE (an edited subject used to
    # keep matching its old words)
    subject_search = (search.document(subject=values["subject"])
                      if "subject" in values and values["subject"] != row["subject"] else None)
    return await changes.apply(conn, row, values, actor=actor, action=action, reason=reason,
                               custom_status_key=custom_key, subject_search=subject_search)


class _LexemeStats:
    """The search column's lexeme frequencies and the ready posting keys, re-read every
    ``REFRESH_S`` (they move with ANALYZE and the search index's passes; two small reads per
    process and interval). ``forget`` makes the next search re-read them."""

    REFRESH_S = 10.0

    def __init__(self) -> None:
        self.loaded_at = -1e9
        self.frequencies: search.LexemeFrequencies = search.LexemeFrequencies()
        self.ready_keys: frozenset[str] = frozenset()
        #: keys this process asked for (``_ask_for_key``), so a search asks once
        self.asked: set[str] = set()

    async def get(self, conn: Any) -> search.LexemeFrequencies:
        if time.monotonic() - self.loaded_at > self.REFRESH_S:
            self.frequencies = await repository.lexeme_frequencies(conn)
            self.ready_keys = await repository.ready_search_keys(conn)
            self.loaded_at = time.monotonic()
        return self.frequencies

    def forget(self) -> None:
        self.loaded_at = -1e9
        self.asked.clear()


LEXEME_STATS = _LexemeStats()
log = logging.getLogger(__name__)


async def _ask_for_key(conn: Any, key: str | None) -> None:
    """An agent's common search that would walk postings but has no ready key: ask for its
    key, once per process and key (the search index's next pass fills it; until then searches
    take the older plans). Not when the passes are off, nor for a channel key's searches (keys
    cost intake, and they follow what agents look for). A failure is logged, never the search's."""
    from ..config import get_settings

    settings = get_settings()
    if key is None or key in LEXEME_STATS.asked or settings.search_index_interval_s <= 0:
        return
    LEXEME_STATS.asked.add(key)
    try:
        await repository.request_search_key(conn, key, max_keys=settings.search_index_max_keys)
    except asyncpg.PostgresError:
        LEXEME_STATS.asked.discard(key)
        log.warning("search key %r not requested", key, exc_info=True)


def _page(rows: list[Any], limit: int, sort: str) -> tuple[list[Any], str | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return rows, None
    last = rows[-1]
    return rows, encode_cursor(last["updated_at" if sort == "updated" else "created_at"], last["id"])


async def list_visible(conn: Any, *, principal: Principal, limit: int, cursor: str | None,
                       filters: dict[str, Any], q: str | None, sort: str = "created") -> tuple[list[Any], str | None]:
    filters = {**filters, **policy.list_scope(principal)}  # last: a request cannot widen its scope
    share = walk_key = None
    if q:
        query = search.tsquery(q, public_only=public_view(principal))
        if query is None:
            return [], None
        filters["tsquery"] = query
        frequencies = await LEXEME_STATS.get(conn)
        share = search.estimated_share(q, frequencies)
        walk_key = search.walk_key(q, LEXEME_STATS.ready_keys, frequencies)
        if walk_key is None and share >= repository.COMMON_SHARE and principal.is_user and sort == "created" \
                and not repository.narrow(filters):
            await _ask_for_key(conn, search.walk_key(q, None, frequencies))
    rows = await repository.list_tickets_raw(
        conn, filters=filters, limit=limit + 1, after=decode_cursor(cursor) if cursor else None, sort=sort,
        search_share=share, walk_key=walk_key,
    )
    return _page(list(rows), limit, sort)


def sla_state(row: Mapping[str, Any], now: datetime | None = None) -> str | None:
    """The colour from sla-svc's events; before any arrives, from the first-response due time."""
    if row["sla_state"] is not None:
        return row["sla_state"]
    due = row["first_response_due_at"]
    if due is None or row["first_response_at"] is not None or row["status"] in ("solved", "closed"):
        return None
    return "breached" if due < (now or datetime.now(UTC)) else "green"


def public_view(principal: Principal) -> bool:
    """Does ``principal`` read tickets from the customer's side (a channel key), where internal
    notes do not exist? Then ``to_read`` counts public messages only."""
    return principal.kind == "channel"


def to_read(row: Mapping[str, Any], custom_status: Mapping[str, Any] | None = None, *,
            viewer: Principal | None, public: bool = False) -> dict[str, Any]:
    """API shape of a ticket row (an asyncpg Record or a SQLAlchemy row mapping); ``public``
    (``public_view``) for the customer's side: ``message_count`` counts public messages only.
    The requester is decrypted and shown as ``viewer`` may see it (``pii.access``: masked for an
    agent not working the ticket); ``viewer`` is required so that no answer forgets the rule."""
    return {
        "id": row["id"],
        "number": row["number"],
        "subject": row["subject"],
        "description": row["description"],
        "status": row["status"],
        "custom_status_id": row["custom_status_id"],
        "priority": row["priority"],
        "type": row["type"],
        "channel": row["channel"],
        "language": row["language"],
        "tags": row["tags"],
        "custom_fields": row["custom_fields"],
        "form_version": row["form_version"],
        "requester": pii_access.shown(viewer, row, requester_of(row)),
        "customer_id": row["customer_id"],
        "customer_tier": row["customer_tier"],
        "cc": cc_of(row),
        "followers": row["followers"],
        "team_id": row["team_id"],
        "assignee_id": row["assignee_id"],
        "assignment_state": row["assignment_state"],
        "follow_up_of": row["follow_up_of"],
        "merged_into": row["merged_into"],
        "message_count": row["public_message_count" if public else "message_count"],
        "sla": {
            "first_response_due_at": row["first_response_due_at"],
            "first_response_at": row["first_response_at"],
            "state": sla_state(row),
            "next_due_at": row["sla_due_at"],
        },
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "solved_at": row["solved_at"],
        "closed_at": row["closed_at"],
        "version": row["version"],
        "csat": csat_of(row),
        "deleted_at": row.get("deleted_at"),  # only ever set in staff's incremental export
    }


def csat_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The customer's answer to the ticket's CSAT survey (customer-svc's ``survey.answered``)."""
    if row["csat_answered_at"] is None:
        return None
    return {"rating": row["csat_rating"], "comment": csat_comment_of(row), "answered_at": row["csat_answered_at"]}


# ---- projections fed by other services' events ------------------------------------------


async def on_requester_resolved(conn: Any, *, ticket_id: uuid.UUID, customer_id: uuid.UUID) -> None:
    """Link the ticket to its customer and take the customer's tier (a ticket opened before
    customer-svc knew the requester gets its tier here, and its SLA re-targets on the change)."""
    linked = insert_from_params(events.TicketCustomerLinked(
        source=SOURCE, subject=str(ticket_id),
        data=events.TicketCustomerLinkedData(ticket_id=ticket_id, customer_id=customer_id),
    ))
    row, tier = await repository.link_customer(conn, ticket_id=ticket_id, customer_id=customer_id, linked=linked)
    if row is not None:
        note_write()
        if row["status"] != "closed" and row["customer_tier"] != tier:
            await changes.apply(conn, row, {"customer_tier": tier}, actor=CUSTOMER_ACTOR, action="customer_tier_changed")


async def on_customer_updated(conn: Any, *, customer_id: uuid.UUID, tier: str | None, version: int) -> int:
    """Keep the newest tier customer-svc announced and put it on the customer's open tickets.

    Each ticket whose tier changes gets an audit entry and a ``ticket.updated`` (sla-svc
    re-targets its live timers on it). Older versions arriving late change nothing.
    Returns how many tickets changed.
    """
    if not await repository.upsert_customer_tier(conn, customer_id=customer_id, tier=tier, version=version):
        return 0
    stale = await repository.lock_tickets_with_stale_tier(conn, customer_id=customer_id, tier=tier)
    for row in stale:
        await changes.apply(conn, row, {"customer_tier": tier}, actor=CUSTOMER_ACTOR, action="customer_tier_changed")
    return len(stale)
