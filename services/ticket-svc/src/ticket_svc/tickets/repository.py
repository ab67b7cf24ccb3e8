"""All SQL of the tickets domain (SQLAlchemy Core: this is the intake hot path)."""

from __future__ import annotations

import operator
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from helpdesk_common.outbox import insert_from_sql

from ..db import outbox
from . import search
from .models import tickets


# Everything request-facing runs on a bare asyncpg connection (runtime.raw_transaction):
# per statement, SQLAlchemy's async layer cost more CPU than the database work
# (docs/ARCHITECTURE.md). Event handlers below still use SQLAlchemy Core.
#: columns no read needs: the search vector and the requester's blind indexes (pii/codec.py)
_NOT_READ = frozenset({"search", "requester_identity_bidx", "requester_bidx"})
_TICKET_COLUMNS = ", ".join(c.name for c in tickets.c if c.name not in _NOT_READ)
_T_COLUMNS = ", ".join(f"t.{c.name}" for c in tickets.c if c.name not in _NOT_READ)
#: what a page of the list reads: the columns ``service.to_read`` shows and the cursor's. A page
#: of full rows decoded 14 more columns per ticket that no list answer shows (routing's offer, the
#: conversation key, the deletion's bookkeeping...); tests/tickets/test_list_columns.py keeps the
#: two in step
LIST_COLUMNS = (
    "id", "number", "subject", "description", "status", "custom_status_id", "priority", "type", "channel",
    "language", "tags", "custom_fields", "form_version", "requester", "customer_id", "customer_tier", "cc",
    "followers", "team_id", "assignee_id", "assignment_state", "follow_up_of", "merged_into", "message_count",
    "public_message_count", "first_response_due_at", "first_response_at", "sla_state", "sla_due_at", "created_at",
    "updated_at", "solved_at", "closed_at", "version", "csat_rating", "csat_comment", "csat_answered_at",
    "deleted_at",
)
_LIST_COLUMNS = ", ".join(LIST_COLUMNS)
_CLAIM_KEY = (
    "INSERT INTO idempotency_keys (principal, key, request_hash, ticket_id, scope) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT DO NOTHING RETURNING ticket_id, request_hash, response"
)
_KEY_OWNER = "SELECT ticket_id, request_hash, response, scope FROM idempotency_keys WHERE principal = $1 AND key = $2"
#: the customer of the requester's primary identity, from the projection row of its blind index
#: ($12), else of its plaintext ($26, only compared) in a row written before migration 0018: one
#: probe of each unique index at most, whatever the statistics say. As one condition with an OR
#: (``value_bidx = $12 OR (value_bidx IS NULL AND value = $26)``) a plan made while the
#: statistics still described a small table (a young deployment's first minutes, before
#: autovacuum's next analyze) read every row of the identity's kind and filtered them, twice per
#: ticket (customer and tier): 0.44 ms of a 0.9 ms insert at a thousand customers (auto_explain
#: under bench/post.lua).
_REQUESTER_CUSTOMER = (
    "requester_customer AS (SELECT (SELECT customer_id FROM ("
    "SELECT customer_id FROM customer_identity_projection WHERE kind = $11 AND value_bidx = $12 "
    "UNION ALL SELECT customer_id FROM customer_identity_projection "
    "WHERE kind = $11 AND value_bidx IS NULL AND value = $26) AS found LIMIT 1) AS id)"
)
_INSERT_COLUMNS = (
    "INSERT INTO tickets (id, subject, description, status, priority, type, channel, tags, custom_fields, requester, "
    "requester_identity_kind, requester_identity_bidx, created_by, created_at, updated_at, language, cc, "
    "conversation_key, follow_up_of, form_version, search, status_changed_at, awaiting_agent_since, message_count, "
    "public_message_count, requester_bidx, customer_id, customer_tier{care}) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, "
    "$21::text::tsvector, $14, $22, $23, $24, $25, "
)
#: the insert for a requester to look up, without its ``WITH`` (``_opening_sql`` adds its own CTEs)
_INSERT_TICKET_BODY = (
    _INSERT_COLUMNS.format(care="")
    + "(SELECT id FROM requester_customer), "
    "(SELECT t.tier FROM requester_customer r JOIN customer_tier_projection t ON t.customer_id = r.id)) "
    f"RETURNING {_TICKET_COLUMNS}"
)
_INSERT_TICKET = f"WITH {_REQUESTER_CUSTOMER} {_INSERT_TICKET_BODY}"
#: a ticket ticket-svc opens for a known customer (care, follow-up): the customer is given, not
#: looked up by the requester's identity; ``care_of`` claims the customer's one open care ticket
_INSERT_TICKET_FOR_CUSTOMER = (
    _INSERT_COLUMNS.format(care=", care_of")
    + "$26::uuid, (SELECT tier FROM customer_tier_projection WHERE customer_id = $26::uuid), $27::uuid) "
    f"RETURNING {_TICKET_COLUMNS}"
)
_GET_TICKET = f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id = $1"
_GET_TICKET_FOR_UPDATE = f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id = $1 FOR UPDATE"
#: a reply quoting a deleted ticket's number opens a new ticket (as Zendesk's do): not found here
_GET_BY_NUMBER = f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE number = $1 AND deleted_at IS NULL"
#: the ticket plus the caller's teams in the same statement (agents' reads: no second round trip)
_AGENT_TEAMS = "ARRAY(SELECT m.team_id FROM team_members m WHERE m.agent_id = $2) AS viewer_team_ids"
_GET_TICKET_AS_AGENT = f"SELECT {_TICKET_COLUMNS}, {_AGENT_TEAMS} FROM tickets WHERE id = $1"
_GET_TICKET_AS_AGENT_FOR_UPDATE = f"{_GET_TICKET_AS_AGENT} FOR UPDATE OF tickets"

#: columns a service-layer update may set (names are never taken from requests)
UPDATABLE = frozenset({
    "subject", "status", "custom_status_id", "priority", "type", "tags", "custom_fields", "language", "team_id",
    "assignee_id", "assignment_state", "offered_at", "offered_to", "cc", "followers", "form_version", "merged_into",
    "first_response_at", "awaiting_agent_since", "status_changed_at", "solved_at", "closed_at", "updated_by",
    "message_count", "public_message_count", "customer_id", "customer_tier", "care_of",
    "deleted_at", "deleted_by", "status_before_delete",
})


async def claim_idempotency_key(
    conn: Any, *, principal: str, key: str, request_hash: str, ticket_id: uuid.UUID | None, scope: str = "ticket.create"
) -> tuple[bool, uuid.UUID | None, str, Any]:
    """Claim ``key``; returns (claimed by us, owner ticket id, owner's request hash, stored response).

    A concurrent claim of the same key blocks on the unique index until the first
    transaction ends, then either sees its committed row or takes the key itself. A key
    used for another kind of request (scope) reads as a different request body.
    """
    claimed = await conn.fetchrow(_CLAIM_KEY, principal, key, request_hash, ticket_id, scope)
    if claimed is not None:
        return True, claimed[0], claimed[1], claimed[2]
    owner = await conn.fetchrow(_KEY_OWNER, principal, key)
    owner_hash = owner[1] if owner[3] == scope else f"scope:{owner[3]}"
    return False, owner[0], owner_hash, owner[2]


async def store_idempotent_response(conn: Any, *, principal: str, key: str, response: Any) -> None:
    await conn.execute("UPDATE idempotency_keys SET response = $3 WHERE principal = $1 AND key = $2",
                       principal, key, response)


_OPENING_SQL: dict[tuple[bool, bool, bool], str] = {}
#: what the opening statement decides of ``ticket.created``: the number (a sequence), and the
#: customer and tier (the projections' lookup by the requester's identity)
CREATED_FROM_ROW = ("number", "customer_id", "customer_tier")


def _opening_sql(known: bool, audited: bool, announced: bool) -> str:
    """The ticket's INSERT (``_INSERT_TICKET``/``_FOR_CUSTOMER``) with its opening message and,
    when given, its creation audit row and its ``ticket.created`` outbox row as data-modifying
    CTEs of one statement: one round trip where there were four. They take the ticket's id (and
    the event its ``CREATED_FROM_ROW``) from its RETURNING, so they run after it (and the
    foreign keys are checked at the end of the statement, when all of them exist)."""
    sql = _OPENING_SQL.get((known, audited, announced))
    if sql is None:
        from ..conversation.repository import insert_message_sql

        ticket = _INSERT_TICKET_FOR_CUSTOMER if known else _INSERT_TICKET_BODY
        first = 28 if known else 27
        sql = (f"WITH {'' if known else _REQUESTER_CUSTOMER + ', '}t AS ({ticket}), "
               f"m AS ({insert_message_sql(first, ticket_id='(SELECT id FROM t)')}) ")
        after = first + 16
        if audited:
            sql += (f", a AS (INSERT INTO ticket_audit (ticket_id, actor, action, changes, at) "
                    f"VALUES ((SELECT id FROM t), ${after}, ${after + 1}, ${after + 2}, clock_timestamp())) ")
            after += 3
        if announced:
            sql += f", o AS ({insert_from_sql(outbox, source='t', first=after, data_from=CREATED_FROM_ROW)}) "
        sql += "SELECT * FROM t"
        _OPENING_SQL[(known, audited, announced)] = sql
    return sql


def _ticket_args(v: dict[str, Any]) -> list[Any]:
    known = "customer_id" in v
    extra = (v["customer_id"], v.get("care_of")) if known else (v.get("requester_identity_plain"),)
    return [
        v["id"], v["subject"], v["description"], v["status"], v["priority"], v["type"], v["channel"], v["tags"],
        v["custom_fields"], v["requester"], v["requester_identity_kind"], v["requester_identity_bidx"],
        v["created_by"], v["created_at"], v["updated_at"], v.get("language"), v.get("cc", []),
        v.get("conversation_key"), v.get("follow_up_of"), v.get("form_version"), v.get("search", ""),
        v.get("awaiting_agent_since"), v.get("message_count", 0), v.get("public_message_count", 0),
        v.get("requester_bidx", []), *extra,
    ]


async def insert_ticket(conn: Any, v: dict[str, Any], *, message: dict[str, Any] | None = None,
                        audit: tuple[str, str, dict[str, Any]] | None = None, created: list[Any] | None = None) -> Any:
    """Insert and link to a known customer, with its tier, in the same statement (projection
    lookups by the primary identity's blind index); with ``customer_id`` in ``v`` that customer
    instead (and ``care_of``). ``v`` holds the requester as ``pii.codec.requester_columns`` made it.

    ``message``: the opening message's row (``conversation.service.row_values``), ``audit``:
    the creation's audit entry (actor, action, changes), and ``created``: the
    ``outbox.insert_from_params`` of its ``ticket.created`` (``CREATED_FROM_ROW`` taken from
    the row), written in the same statement (``created`` needs ``message``)."""
    known = "customer_id" in v
    args = _ticket_args(v)
    if message is None:
        assert created is None, "the event is written with the opening message"
        return await conn.fetchrow(_INSERT_TICKET_FOR_CUSTOMER if known else _INSERT_TICKET, *args)
    from ..conversation.repository import message_args

    assert len(args) == (27 if known else 26)
    return await conn.fetchrow(_opening_sql(known, audit is not None, created is not None), *args,
                               *message_args(message, with_ticket=False), *(audit or ()), *(created or ()))


async def get_ticket_raw(conn: Any, ticket_id: uuid.UUID) -> Any:
    return await conn.fetchrow(_GET_TICKET, ticket_id)


async def lock_ticket(conn: Any, ticket_id: uuid.UUID) -> Any:
    return await conn.fetchrow(_GET_TICKET_FOR_UPDATE, ticket_id)


async def get_ticket_as_agent(conn: Any, ticket_id: uuid.UUID, *, agent_id: str, lock: bool = False) -> Any:
    """The ticket (optionally locked) with ``viewer_team_ids``: the agent's current team ids,
    read in the same statement so the access check costs no extra round trip."""
    return await conn.fetchrow(_GET_TICKET_AS_AGENT_FOR_UPDATE if lock else _GET_TICKET_AS_AGENT, ticket_id, agent_id)


async def get_ticket_by_number(conn: Any, number: int) -> Any:
    if not 0 < number < 2**63:
        return None
    return await conn.fetchrow(_GET_BY_NUMBER, number)


async def update_ticket(conn: Any, ticket_id: uuid.UUID, values: dict[str, Any], *,
                        search: str | None = None, subject_search: str | None = None) -> Any:
    """Set ``values``, bump the version, and update the search vector: ``subject_search`` (a
    ``search.document`` of the new subject) replaces the subject's lexemes, which are the ones
    of weight A, and ``search`` (a document of new text) is appended. Returns the new row."""
    names = sorted(values)
    unknown = set(names) - UPDATABLE
    if unknown:  # pragma: no cover - a programming error, never request input
        raise ValueError(f"not updatable: {unknown}")
    sets = [f"{name} = ${i + 2}" for i, name in enumerate(names)]
    args: list[Any] = [ticket_id, *(values[n] for n in names)]
    vector = "search"
    if subject_search is not None:
        args.append(subject_search)
        vector = f"ts_filter(search, '{{b,c,d}}') || ${len(args)}::text::tsvector"  # search.NOT_SUBJECT
    if search:
        args.append(search)
        vector = f"{vector} || ${len(args)}::text::tsvector"
    if vector != "search":
        sets.append(f"search = {vector}")
    sets += ["version = version + 1", "updated_at = clock_timestamp()"]
    return await conn.fetchrow(
        f"UPDATE tickets SET {', '.join(sets)} WHERE id = $1 RETURNING {_TICKET_COLUMNS}", *args
    )


async def list_deleted(conn: Any, *, limit: int, after: tuple[datetime, uuid.UUID] | None,
                       numbers: list[int] | None = None) -> list[Any]:
    """Soft-deleted tickets, most recently deleted first (the partial index ``ix_tickets_deleted``)."""
    args: list[Any] = [limit]
    where = ["deleted_at IS NOT NULL"]
    if after is not None:
        args += [after[0], after[1]]
        where.append("(deleted_at, id) < ($2, $3)")
    if numbers:
        args.append(numbers)
        where.append(f"number = ANY(${len(args)}::bigint[])")
    return await conn.fetch(
        "SELECT id, number, subject, status_before_delete, deleted_at, deleted_by, created_at FROM tickets "
        f"WHERE {' AND '.join(where)} ORDER BY deleted_at DESC, id DESC LIMIT $1", *args)


async def newest_open_in_conversation(conn: Any, conversation_keys: list[str]) -> Any:
    """The newest open ticket of a conversation, under any of its stored keys (``codec.conversation_lookup``)."""
    return await conn.fetchrow(
        f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE conversation_key = ANY($1::text[]) AND status <> 'closed' "
        "ORDER BY created_at DESC LIMIT 1",
        conversation_keys,
    )


async def ticket_by_email_refs(conn: Any, refs: list[str]) -> Any:
    """The ticket of the newest message whose e-mail Message-ID is among ``refs``."""
    return await conn.fetchrow(
        f"SELECT {_T_COLUMNS} FROM messages m JOIN tickets t ON t.id = m.ticket_id "
        "WHERE m.email_message_id = ANY($1::text[]) AND t.deleted_at IS NULL ORDER BY m.created_at DESC LIMIT 1",
        refs,
    )


async def insert_audit(conn: Any, *, ticket_id: uuid.UUID, actor: str, action: str, changes: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO ticket_audit (ticket_id, actor, action, changes, at) VALUES ($1, $2, $3, $4, clock_timestamp())",
        ticket_id, actor, action, changes,
    )


async def list_audit(conn: Any, *, ticket_id: uuid.UUID, after_id: int, limit: int) -> list[Any]:
    return await conn.fetch(
        "SELECT id, actor, action, changes, at FROM ticket_audit WHERE ticket_id = $1 AND id > $2 "
        "ORDER BY id LIMIT $3",
        ticket_id, after_id, limit,
    )


async def insert_link(conn: Any, *, ticket_id: uuid.UUID, other_id: uuid.UUID, kind: str, actor: str) -> bool:
    done = await conn.fetchval(
        "INSERT INTO ticket_links (ticket_id, other_id, kind, created_by) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING true",
        ticket_id, other_id, kind, actor,
    )
    return bool(done)


async def delete_link(conn: Any, *, ticket_id: uuid.UUID, other_id: uuid.UUID, kind: str) -> bool:
    done = await conn.fetchval(
        "DELETE FROM ticket_links WHERE ticket_id = $1 AND other_id = $2 AND kind = $3 RETURNING true",
        ticket_id, other_id, kind,
    )
    return bool(done)


async def list_links(conn: Any, ticket_id: uuid.UUID) -> list[Any]:
    return await conn.fetch(
        "SELECT l.ticket_id, l.other_id, l.kind, l.created_at, o.number AS other_number, o.subject AS other_subject, "
        "o.status AS other_status, o.team_id, o.assignee_id, o.created_by, o.deleted_at "
        "FROM ticket_links l JOIN tickets o ON o.id = l.other_id WHERE l.ticket_id = $1 ORDER BY l.created_at",
        ticket_id,
    )


def _list_where(f: dict[str, Any], args: list[Any], *, opaque_tsquery: bool = False) -> list[str]:
    """WHERE clauses for the list filters; every value goes in as a bind parameter.

    ``opaque_tsquery``: the query as a sub-select, whose value no plan sees (an InitPlan), for a
    rare search that nothing else narrows (``fixed_plan_search``). PostgreSQL planned such a
    statement for each query's own estimate and kept that custom plan, since a generic plan's
    default estimate costs more than a rare query's: at every execution, 0.07 ms of planning for
    0.02 of executing. Opaque, the custom plans cost what the generic one does, which is kept
    after five. A common search's walk keeps the query in sight: its recheck per posting costs
    more through the sub-select."""
    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where: list[str] = []
    # soft-deleted tickets: hidden unless asked for ("only": the deleted tickets' list; "any": the
    # incremental export, which shows a deletion as a change)
    deleted = f.get("deleted")
    if deleted == "only":
        where.append("deleted_at IS NOT NULL")
    elif deleted != "any":
        where.append("deleted_at IS NULL")
    simple = {"created_by": "created_by", "status": "status", "priority": "priority", "customer_id": "customer_id",
              "customer_tier": "customer_tier",
              "team_id": "team_id", "channel": "channel", "type": "type", "custom_status_id": "custom_status_id"}
    for key, column in simple.items():
        if f.get(key) is not None:
            where.append(f"{column} = {arg(f[key])}")
    if f.get("numbers"):
        where.append(f"number = ANY({arg(list(f['numbers']))}::bigint[])")
    if f.get("statuses"):
        where.append(f"status = ANY({arg(list(f['statuses']))}::text[])")
    if f.get("assignee_id") is not None:
        where.append("assignee_id IS NULL" if f["assignee_id"] == "none" else f"assignee_id = {arg(f['assignee_id'])}")
    if f.get("tags"):
        where.append(f"tags @> {arg(list(f['tags']))}::text[]")
    for key, op, column in (("created_after", ">=", "created_at"), ("created_before", "<", "created_at"),
                            ("updated_after", ">=", "updated_at"), ("updated_before", "<", "updated_at")):
        if f.get(key) is not None:
            where.append(f"{column} {op} {arg(f[key])}")
    sla = f.get("sla_state")
    if sla == "none":
        where.append("sla_state IS NULL")
    elif sla is not None:
        where.append(f"sla_state = {arg(sla)}")
    if f.get("requester_bidx"):  # any identity of the requester (pii.codec.query_indexes; GIN)
        where.append(f"requester_bidx && {arg(list(f['requester_bidx']))}::text[]")
    if f.get("tsquery"):
        query = f"{arg(f['tsquery'])}::tsquery"
        where.append(f"search @@ (SELECT {query})" if opaque_tsquery else f"search @@ {query}")
    if f.get("visible_to_agent") is not None:
        # policy.may_read for an agent, as SQL: triage, theirs, or one of their teams (read fresh)
        agent = arg(f["visible_to_agent"])
        where.append(f"(team_id IS NULL OR assignee_id = {agent} OR team_id IN "
                     f"(SELECT m.team_id FROM team_members m WHERE m.agent_id = {agent}))")
    return where


def page_limit(limit: int) -> str:
    """A page's LIMIT written into the statement's text, for the two search statements whose
    plan does not depend on their parameters' values: the walk over a key's postings (its shape
    fixed by the statement) and a rare search's GIN plan when nothing but the search narrows it
    (``fixed_plan_search``). PostgreSQL plans a prepared statement for its parameters' values five
    times, then keeps one generic plan if that costs no more than they did; a generic plan
    cannot know a LIMIT parameter and costs it as a tenth of the rows, so the walk was planned
    again at every execution (0.18 ms of planning against 0.16 of executing, at a million
    tickets). With the number in the text its generic plan costs what the custom ones did and is
    kept until asyncpg prepares the statement again (``max_cached_statement_lifetime``, 300 s).
    Every other list statement keeps its LIMIT parameter: a generic plan there could keep a
    date-index walk chosen for a common value and run it for a rare one."""
    return f"LIMIT {operator.index(limit)}"


#: filters that leave a search's plan to the search alone: the soft-deletion switch (a constant)
#: and an agent's visibility (an OR no index serves)
_PLAN_NEUTRAL_FILTERS = frozenset({"tsquery", "deleted", "visible_to_agent"})


def fixed_plan_search(filters: dict[str, Any]) -> bool:
    """Is this a search that no filter but the search itself narrows? Then its rare-term plan is
    the GIN index's whatever the terms, and may be kept as one generic plan (``page_limit``,
    ``_list_where``'s ``opaque_tsquery``). With another filter (a channel's own tickets, a team,
    a customer, a tag) the filter's value decides between its index and the GIN index, and each
    execution keeps its own plan."""
    return filters.get("tsquery") is not None and all(
        value is None or value == [] for name, value in filters.items() if name not in _PLAN_NEUTRAL_FILTERS)


#: a search whose terms may match at least this share of tickets walks the date index
#: (it finds a page after ~1/share rows); a rarer one reads its few matches from the GIN index
COMMON_SHARE = 0.002


async def lexeme_frequencies(conn: Any) -> search.LexemeFrequencies:
    """The search column's most common lexemes and their document frequencies (ANALYZE stats)."""
    row = await conn.fetchrow(
        "SELECT most_common_elems::text::text[] AS elems, most_common_elem_freqs AS freqs FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = 'tickets' AND attname = 'search'"
    )
    if row is None or row["elems"] is None:
        return search.LexemeFrequencies()
    return search.LexemeFrequencies(zip(row["elems"], row["freqs"]))


async def list_tickets_raw(conn: Any, *, filters: dict[str, Any], limit: int,
                           after: tuple[datetime, uuid.UUID] | None, sort: str = "created",
                           search_share: float | None = None, walk_key: str | None = None) -> list[Any]:
    """A page of tickets, newest first.

    With a full-text query the plan is chosen here, from ``search_share`` (see
    ``search.estimated_share``), because PostgreSQL's own estimate for ANDed CJK bigrams is
    off by two orders of magnitude: a common query walks the date index and stops after a page,
    a rare one uses the GIN index and sorts its few matches.
    """
    args: list[Any] = []
    column = "updated_at" if sort == "updated" else "created_at"
    common = (search_share or 0.0) >= COMMON_SHARE
    fixed = not common and fixed_plan_search(filters)
    where = _list_where(filters, args, opaque_tsquery=fixed)
    if after is not None:
        args += [after[0], after[1]]
        where.append(f"({column}, id) < (${len(args) - 1}, ${len(args)})")
    if fixed:
        limit_sql = page_limit(limit)
    else:
        args.append(limit)
        limit_sql = f"LIMIT ${len(args)}"

    def select(order_by: str) -> str:
        return (f"SELECT {_LIST_COLUMNS} FROM tickets" + (" WHERE " + " AND ".join(where) if where else "")
                + f" ORDER BY {order_by} DESC, id DESC {limit_sql}")

    if filters.get("tsquery") is None:
        return await conn.fetch(select(column), *args)
    if not common:
        # a rare query: its few GIN matches, sorted. Ordering by an expression of the date (the
        # same order) keeps PostgreSQL off the date index, which it would otherwise walk in hope
        # of matches soon: one statement, where ``SET LOCAL enable_indexscan = off`` needed a
        # transaction and three more round trips
        return await conn.fetch(select(f"{column} + interval '0'"), *args)
    if walk_key is not None and sort == "created":
        rows = await _list_by_postings(conn, key=walk_key, filters=filters, limit=limit, after=after)
        if rows is not None:
            return rows
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        return await conn.fetch(select(column), *args)


#: filters that leave few tickets: a common search under one of them reads its own index (by
#: channel key, customer, requester, number or assignee) rather than walk postings it would reject
_NARROW_FILTERS = ("created_by", "customer_id", "requester_bidx", "numbers", "assignee_id")


def narrow(filters: dict[str, Any]) -> bool:
    """Does a filter leave so few tickets that their own index beats walking postings?"""
    return any(filters.get(name) is not None for name in _NARROW_FILTERS)


async def _list_by_postings(conn: Any, *, key: str, filters: dict[str, Any], limit: int,
                            after: tuple[datetime, uuid.UUID] | None) -> list[Any] | None:
    """A page of a common search from the key's time-ordered postings (migration 0023): the
    newest tickets containing the key, each checked against the whole query and the filters,
    until a page is full. Below the postings' ``covered_since`` (older tickets, trimmed away)
    the page goes on with the date-index plan. None when the key is not ready, or a narrow
    filter makes the date-ordered indexes the better plan.

    The cover comes from the walk's own statement (``_cover`` on every row, and on one row of
    NULLs when the walk found nothing), so the two parts meet exactly, in one snapshot's terms.
    """
    if narrow(filters):
        return None
    args: list[Any] = []
    where = _list_where(filters, args)  # unqualified names resolve to tickets, inside the LATERAL
    args.append(key)
    k = f"${len(args)}"
    bounds = [f"p.key = {k}", "p.created_at >= c.since"]
    for name, op in (("created_before", "<"), ("created_after", ">=")):
        if filters.get(name) is not None:
            args.append(filters[name])
            bounds.append(f"p.created_at {op} ${len(args)}")
    if after is not None:
        args += [after[0], after[1]]
        bounds.append(f"(p.created_at, p.ticket_id) < (${len(args) - 1}, ${len(args)})")
    found = await conn.fetch(
        "WITH c AS MATERIALIZED (SELECT covered_since, coalesce(covered_since, '-infinity') AS since "
        f"FROM ticket_search_keys WHERE key = {k} AND state = 'ready') "
        "SELECT w.*, c.covered_since AS _cover FROM c LEFT JOIN LATERAL ("
        "  SELECT t.* FROM ticket_search_postings p "
        f"  CROSS JOIN LATERAL (SELECT {_LIST_COLUMNS} FROM tickets WHERE id = p.ticket_id AND "
        # OFFSET 0 keeps the subquery a per-posting probe by primary key: flattened, PostgreSQL
        # believes ANDed CJK bigrams rare and joins all their GIN matches instead (400 ms)
        + " AND ".join(where or ["true"]) + " OFFSET 0) t "
        f"  WHERE {' AND '.join(bounds)} ORDER BY p.created_at DESC, p.ticket_id DESC {page_limit(limit)}"
        ") w ON true",
        *args,
    )
    if not found:
        return None  # not ready in this snapshot
    cover = found[0]["_cover"]
    rows = [row for row in found if row["id"] is not None]
    if len(rows) >= limit or cover is None:
        return rows
    before = filters.get("created_before")
    older = {**filters, "created_before": min(before, cover) if before else cover}
    rest = await list_tickets_raw(conn, filters=older, limit=limit - len(rows), after=after,
                                  search_share=COMMON_SHARE)
    return [*rows, *rest]


async def ready_search_keys(conn: Any) -> frozenset[str]:
    """The posting keys a search may walk; none on a database not yet migrated to 0023 (a
    rolling deploy: searches keep the older plans until the migration runs)."""
    try:
        rows = await conn.fetch("SELECT key FROM ticket_search_keys WHERE state = 'ready'")
    except asyncpg.UndefinedTableError:
        return frozenset()
    return frozenset(r["key"] for r in rows)


async def request_search_key(conn: Any, key: str, *, max_keys: int) -> bool:
    """Ask for postings of ``key`` (state ``filling``, no horizon yet) unless ``max_keys`` keys
    exist; True when added. The next pass gives it a horizon and fills it."""
    try:
        return bool(await conn.fetchval(
            "INSERT INTO ticket_search_keys (key) SELECT $1 WHERE (SELECT count(*) FROM ticket_search_keys) < $2 "
            "ON CONFLICT DO NOTHING RETURNING true", key, max_keys))
    except asyncpg.UndefinedTableError:  # before migration 0023 (see ready_search_keys)
        return False


async def mark_search_key_horizons(conn: Any) -> None:
    """Give each new key a horizon: this statement's own transaction id. Run after the keys
    committed (a later pass's statement, for a key a search asked for): ids are handed out in
    order, and a transaction that wrote a ticket without seeing a key took its id before (a
    write takes its id before its trigger runs), so it is below; one that writes later sees
    the key (each statement of a READ COMMITTED trigger takes a fresh snapshot; ticket-svc
    writes tickets in READ COMMITTED only). Not ``pg_snapshot_xmax``: that is one past the
    newest *completed* id, and a running writer may hold an id at or above it."""
    await conn.execute(
        "UPDATE ticket_search_keys SET horizon = pg_current_xact_id() WHERE state = 'filling' AND horizon IS NULL")


async def fillable_search_keys(conn: Any) -> list[str]:
    """Filling keys whose horizon's transaction and every older one have ended: a fill now sees
    every ticket the triggers did not give a posting."""
    return [r["key"] for r in await conn.fetch(
        "SELECT key FROM ticket_search_keys WHERE state = 'filling' AND horizon IS NOT NULL "
        "AND horizon < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY added_at, key")]


async def fill_search_key(conn: Any, key: str, query: str, *, per_key: int) -> bool:
    """Write the postings of the newest ``per_key`` tickets matching ``query`` (``search.key_query``)
    and mark the key ready; True if it was filling. When ``per_key`` were found, the cover starts
    one microsecond after the oldest of them, so tickets created at that same instant and left
    out stay below it (the date-index plan finds them)."""
    if per_key < 1:
        raise ValueError("per_key must be at least 1")
    return await conn.fetchval(
        "WITH found AS MATERIALIZED (SELECT created_at, id FROM tickets WHERE search @@ $2::tsquery "
        "  ORDER BY created_at DESC, id DESC LIMIT $3), "
        "ins AS (INSERT INTO ticket_search_postings (key, created_at, ticket_id) SELECT $1, created_at, id FROM found "
        "  ON CONFLICT DO NOTHING) "
        "UPDATE ticket_search_keys SET state = 'ready', covered_since = CASE WHEN (SELECT count(*) FROM found) >= $3 "
        "  THEN (SELECT min(created_at) FROM found) + interval '1 microsecond' END "
        "WHERE key = $1 AND state = 'filling' RETURNING true",
        key, query, per_key,
    ) or False


async def trim_search_postings(conn: Any, *, per_key: int) -> int:
    """Keep about ``per_key`` postings per ready key: the cover moves up to the ``per_key``-th
    newest and the postings below it go (with any an update of an old ticket left there).
    Returns the postings removed."""
    return int(await conn.fetchval(
        "WITH cut AS ("
        "  SELECT k.key, greatest(k.covered_since, (SELECT p.created_at FROM ticket_search_postings p WHERE p.key = k.key "
        "    ORDER BY p.created_at DESC, p.ticket_id DESC OFFSET $1 - 1 LIMIT 1)) AS since "
        "  FROM ticket_search_keys k WHERE k.state = 'ready'), "
        "moved AS (UPDATE ticket_search_keys k SET covered_since = cut.since FROM cut "
        "  WHERE k.key = cut.key AND cut.since IS NOT NULL AND EXISTS "
        "    (SELECT 1 FROM ticket_search_postings p WHERE p.key = cut.key AND p.created_at < cut.since) "
        "  RETURNING k.key, k.covered_since), "
        "gone AS (DELETE FROM ticket_search_postings p USING moved "
        "  WHERE p.key = moved.key AND p.created_at < moved.covered_since RETURNING 1) "
        "SELECT count(*) FROM gone",
        per_key,
    ))


#: a plaintext row of the same identity written before 0018 goes (the plaintext is only matched,
#: never stored) in the statement that upserts the sealed rows: one round trip per event (two
#: before, and one more per identity past the first)
_UPSERT_IDENTITIES = (
    "WITH legacy AS (DELETE FROM customer_identity_projection p USING unnest($1::text[], $2::text[]) AS i(kind, value) "
    "WHERE p.value_bidx IS NULL AND p.kind = i.kind AND p.value = i.value) "
    "INSERT INTO customer_identity_projection (kind, value_enc, value_bidx, customer_id) "
    "SELECT u.kind, u.enc, u.bidx, $5 FROM unnest($1::text[], $3::text[], $4::text[]) AS u(kind, enc, bidx) "
    "ON CONFLICT (kind, value_bidx) DO UPDATE "
    "SET customer_id = EXCLUDED.customer_id, value_enc = EXCLUDED.value_enc, updated_at = now()"
)


async def upsert_identities(conn: Any, *, customer_id: uuid.UUID,
                            identities: list[tuple[str, str, str, str]]) -> None:
    """(kind, plaintext value, value_enc, value_bidx) of each identity (``pii.codec``): stored as
    the ciphertext and the index, the customer's now, in one statement (``_UPSERT_IDENTITIES``).
    An identity listed twice is written once (one INSERT cannot update a row twice)."""
    unique = list({(kind, bidx): (kind, value, enc, bidx) for kind, value, enc, bidx in identities}.values())
    if unique:
        await conn.execute(_UPSERT_IDENTITIES, [i[0] for i in unique], [i[1] for i in unique],
                           [i[2] for i in unique], [i[3] for i in unique], customer_id)


_LINK_CUSTOMER = (
    "WITH t AS (UPDATE tickets SET customer_id = $2, updated_at = clock_timestamp(), version = version + 1 "
    f"WHERE id = $1 AND customer_id IS DISTINCT FROM $2 RETURNING {_TICKET_COLUMNS}), "
    f"o AS ({insert_from_sql(outbox, source='t', first=3)}) "
    "SELECT t.*, (SELECT tier FROM customer_tier_projection WHERE customer_id = $2) AS known_tier FROM t"
)


async def link_customer(conn: Any, *, ticket_id: uuid.UUID, customer_id: uuid.UUID,
                        linked: list[Any]) -> tuple[dict[str, Any] | None, str | None]:
    """Set the ticket's customer and, when that changed the row, write ``linked`` (the
    ``outbox.insert_from_params`` of its ``ticket.customer_linked``) in the same statement:
    (the new row, the customer's tier as the projection knows it), or (None, None) when the
    ticket already had that customer. One round trip where there were three."""
    found = await conn.fetchrow(_LINK_CUSTOMER, ticket_id, customer_id, *linked)
    if found is None:
        return None, None
    row = dict(found)
    return row, row.pop("known_tier")


async def upsert_customer_tier(conn: Any, *, customer_id: uuid.UUID, tier: str | None, version: int) -> bool:
    """Record a customer's tier unless a newer version is already known; True when written."""
    return bool(await conn.fetchval(
        "INSERT INTO customer_tier_projection (customer_id, tier, version) VALUES ($1, $2, $3) "
        "ON CONFLICT (customer_id) DO UPDATE SET tier = EXCLUDED.tier, version = EXCLUDED.version, updated_at = now() "
        "WHERE customer_tier_projection.version < EXCLUDED.version RETURNING true",
        customer_id, tier, version,
    ))


async def lock_tickets_with_stale_tier(conn: Any, *, customer_id: uuid.UUID, tier: str | None) -> list[Any]:
    """The customer's tickets that are not closed (nor merged away) and show another tier, locked."""
    return await conn.fetch(
        f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE customer_id = $1 AND status <> 'closed' "
        "AND merged_into IS NULL AND customer_tier IS DISTINCT FROM $2 ORDER BY id FOR UPDATE",
        customer_id, tier,
    )


async def copy_search(conn: Any, *, source_id: uuid.UUID, target_id: uuid.UUID) -> None:
    """Add a merged ticket's lexemes to its target; the source's subject (weight A) becomes public
    text (B) there, so a later subject change of the target keeps it."""
    await conn.execute(
        "UPDATE tickets SET search = search || (SELECT setweight(ts_filter(s.search, '{a}'), 'B') "
        "|| ts_filter(s.search, '{b,c,d}') FROM tickets s WHERE s.id = $1) WHERE id = $2",
        source_id, target_id,
    )


async def has_ancestor(conn: Any, *, ticket_id: uuid.UUID, ancestor_id: uuid.UUID) -> bool:
    """Is ``ancestor_id`` ``ticket_id`` itself or one of its parents, transitively (bounded depth)?"""
    return bool(await conn.fetchval(
        "WITH RECURSIVE up(id, depth) AS (SELECT $1::uuid, 0 UNION ALL "
        "SELECT l.other_id, up.depth + 1 FROM ticket_links l JOIN up ON l.ticket_id = up.id "
        "WHERE l.kind = 'parent' AND up.depth < 50) SELECT EXISTS (SELECT 1 FROM up WHERE id = $2)",
        ticket_id, ancestor_id,
    ))
