"""The ticket projection (customer_tickets): real events through the real consumer, handlers on a
connection for orders the broker would not produce, and the pure rules."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from customer_svc.customers.handlers import HANDLERS as requester_handlers
from customer_svc.ticket_facts import service as facts
from customer_svc.ticket_facts.handlers import HANDLERS as fact_handlers
from helpdesk_common.consumer import compose_handlers
from helpdesk_common import events
from helpdesk_common.outbox import watching_writes
from helpdesk_common.testing import produce, wait_for

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def created(ticket_id: uuid.UUID, *, customer_id: uuid.UUID | None = None, ticket_type: str | None = None,
            email: str | None = None, at: datetime = T0) -> events.TicketCreated:
    return events.TicketCreated(source="test", subject=str(ticket_id), data=events.TicketCreatedData(
        ticket_id=ticket_id, subject="订单没有收到 / parcel missing", status="new", priority="normal",
        type=ticket_type, channel="email", tags=["delivery"], requester=events.Requester(email=email),
        customer_id=customer_id, created_by="channel:k", created_at=at, number=42, language="zh-CN"))


def status(ticket_id: uuid.UUID, before: str, after: str, *, version: int | None, at: datetime,
           reason: str | None = None) -> events.TicketStatusChanged:
    return events.TicketStatusChanged(source="test", subject=str(ticket_id), data=events.TicketStatusChangedData(
        ticket_id=ticket_id, number=42, status=after, version=version, from_status=before, to_status=after,
        changed_at=at, reason=reason))


def message(ticket_id: uuid.UUID, author: str, *, public: bool = True, channel: str | None = None,
            at: datetime, first_response: bool = False) -> events.TicketMessageAdded:
    return events.TicketMessageAdded(source="test", subject=str(ticket_id), data=events.TicketMessageAddedData(
        ticket_id=ticket_id, number=42, message_id=uuid.uuid4(), author_kind=author, public=public, channel=channel,
        created_at=at, first_response=first_response, response=first_response))


def breached(ticket_id: uuid.UUID, *, at: datetime) -> events.SlaBreached:
    return events.SlaBreached(source="test", subject=str(ticket_id), data=events.SlaAlertData(
        ticket_id=ticket_id, metric="first_response", due_at=at, fire_at=at))


async def rows(db, sql: str, **params) -> list:
    async with db.connect() as conn:
        return (await conn.execute(text(sql), params)).mappings().all()


async def projected(db, ticket_id: uuid.UUID):
    found = await rows(db, "SELECT * FROM customer_tickets WHERE ticket_id = :t", t=ticket_id)
    return found[0] if found else None


async def timeline_kinds(db, customer_id: uuid.UUID) -> list[str]:
    return [r["kind"] for r in await rows(db, "SELECT kind FROM customer_timeline WHERE customer_id = :c "
                                               "ORDER BY at, kind", c=customer_id)]


async def test_a_ticket_life_is_projected_once_through_the_consumer(full, infra, db):
    ticket_id = uuid.uuid4()
    life = [
        created(ticket_id, email="li.na@example.com"),
        status(ticket_id, "new", "open", version=2, at=T0 + timedelta(minutes=1)),
        message(ticket_id, "customer", channel="wechat", at=T0 + timedelta(minutes=2)),
        message(ticket_id, "agent", public=False, at=T0 + timedelta(minutes=3)),  # an internal note
        message(ticket_id, "agent", at=T0 + timedelta(minutes=5), first_response=True),
        status(ticket_id, "open", "solved", version=4, at=T0 + timedelta(hours=1)),
        status(ticket_id, "solved", "open", version=5, at=T0 + timedelta(hours=2)),
        breached(ticket_id, at=T0 + timedelta(hours=3)),
    ]
    await produce(infra.kafka_bootstrap, full.topics, *life)

    async def settled():
        row = await projected(db, ticket_id)
        return row if row is not None and row["breaches"] == 1 and row["reopened"] == 1 else None

    row = await wait_for(settled)
    customer_id = row["customer_id"]
    assert customer_id is not None  # linked by the requester resolution in the same transaction
    assert (row["status"], row["subject"], row["number"], row["channel"], row["created_at"]) == (
        "open", "订单没有收到 / parcel missing", 42, "email", T0)
    assert row["first_response_at"] == T0 + timedelta(minutes=5)
    assert (row["last_customer_message_at"], row["last_customer_channel"]) == (T0 + timedelta(minutes=2), "wechat")
    assert row["last_message_at"] == T0 + timedelta(minutes=5)
    assert row["solved_at"] is None  # reopened: no longer solved
    assert row["first_breached_at"] == row["last_breached_at"] == T0 + timedelta(hours=3)
    kinds = ["ticket.created", "message.customer", "message.agent", "ticket.solved", "ticket.reopened"]
    assert await timeline_kinds(db, customer_id) == kinds
    summaries = await rows(db, "SELECT summary FROM customer_timeline WHERE customer_id = :c", c=customer_id)
    assert all("body" not in s["summary"] for s in summaries)
    assert await rows(db, "SELECT 1 FROM insight_dirty WHERE customer_id = :c", c=customer_id)

    # the same events again (a redelivery), then one new message to know the replay was consumed
    marker = message(ticket_id, "customer", channel="email", at=T0 + timedelta(hours=4))
    await produce(infra.kafka_bootstrap, full.topics, *life, marker)

    async def marker_seen():
        row = await projected(db, ticket_id)
        return row if row["last_customer_message_at"] == T0 + timedelta(hours=4) else None

    row = await wait_for(marker_seen)
    assert (row["breaches"], row["reopened"], row["status"]) == (1, 1, "open")
    assert await timeline_kinds(db, customer_id) == [*kinds, "message.customer"]
    assert len(await rows(db, "SELECT 1 FROM customers")) == 1


async def apply(raw, *evts) -> None:
    """Each event through the projection's and the requester resolution's handlers composed as
    consumers.py composes them, one transaction each (other packages' handlers are theirs to test)."""
    handlers = compose_handlers(fact_handlers, requester_handlers)
    for e in evts:
        async with raw.transaction():
            await handlers[e.type](raw, e)


async def insert_customer(raw) -> uuid.UUID:
    customer_id = uuid.uuid4()
    await raw.execute("INSERT INTO customers (id, name, search) VALUES ($1, 'Wang', ''::tsvector)", customer_id)
    return customer_id


async def test_events_before_ticket_created_leave_a_placeholder_that_creation_completes(raw, db):
    customer_id = await insert_customer(raw)
    ticket_id = uuid.uuid4()
    await apply(raw,
                breached(ticket_id, at=T0 + timedelta(hours=2)),
                status(ticket_id, "open", "solved", version=3, at=T0 + timedelta(hours=1)),
                message(ticket_id, "agent", at=T0 + timedelta(minutes=30), first_response=True))
    row = await projected(db, ticket_id)
    assert (row["customer_id"], row["subject"], row["status"], row["breaches"]) == (None, None, "solved", 1)

    await apply(raw, created(ticket_id, customer_id=customer_id))
    row = await projected(db, ticket_id)
    # creation fills what is unknown; the later status stays
    assert (row["customer_id"], row["subject"], row["status"], row["created_at"], row["tags"]) == (
        customer_id, "订单没有收到 / parcel missing", "solved", T0, ["delivery"])
    assert (row["breaches"], row["solved_at"], row["first_response_at"]) == (
        1, T0 + timedelta(hours=1), T0 + timedelta(minutes=30))
    # what happened before the customer was known is projected, not on the timeline
    assert await timeline_kinds(db, customer_id) == ["ticket.created"]

    # an older status change replayed late (a DLQ replay) does not move the status back
    await apply(raw, status(ticket_id, "new", "open", version=2, at=T0 + timedelta(minutes=10)))
    assert (await projected(db, ticket_id))["status"] == "solved"


async def test_resolution_links_the_ticket_and_ticket_svc_relinks_it(raw, db):
    first, second = await insert_customer(raw), await insert_customer(raw)
    ticket_id = uuid.uuid4()
    async with raw.transaction():
        await facts.ticket_created(raw, created(ticket_id).data)
        await facts.customer_resolved(raw, ticket_id=ticket_id, customer_id=first)
    assert (await projected(db, ticket_id))["customer_id"] == first
    async with raw.transaction():  # a second resolution does not override a known customer
        await facts.customer_resolved(raw, ticket_id=ticket_id, customer_id=second)
    assert (await projected(db, ticket_id))["customer_id"] == first
    await apply(raw, events.TicketCustomerLinked(source="test", subject=str(ticket_id),
                                                 data=events.TicketCustomerLinkedData(ticket_id=ticket_id,
                                                                                      customer_id=second)))
    assert (await projected(db, ticket_id))["customer_id"] == second
    dirty = {r["customer_id"] for r in await rows(db, "SELECT customer_id FROM insight_dirty")}
    assert {first, second} <= dirty

    unknown = uuid.uuid4()  # a resolution without a projected ticket makes no row (no phantom open ticket)
    async with raw.transaction():
        await facts.customer_resolved(raw, ticket_id=unknown, customer_id=first)
    assert await projected(db, unknown) is None


async def test_updates_assignment_merge_and_care_tasks(raw, db):
    customer_id = await insert_customer(raw)
    ticket_id, care_id, target = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    team = uuid.uuid4()
    await apply(
        raw,
        created(ticket_id, customer_id=customer_id),
        events.TicketUpdated(source="test", subject=str(ticket_id), data=events.TicketUpdatedData(
            ticket_id=ticket_id, version=2, changes={"subject": {"before": "x", "after": "新的主题"},
                                                     "tags": {"before": ["delivery"], "after": ["refund", "vip"]},
                                                     "priority": {"before": "normal", "after": "high"},
                                                     "type": {"before": None, "after": 7}})),
        events.TicketAssigned(source="test", subject=str(ticket_id), data=events.TicketAssignedData(
            ticket_id=ticket_id, version=3, team_id=team, assignee_id="u-9", reason="manual",
            assigned_at=T0 + timedelta(minutes=1))),
        events.TicketMerged(source="test", subject=str(ticket_id), data=events.TicketMergedData(
            ticket_id=ticket_id, version=4, target_ticket_id=target, moved_messages=2)),
        created(care_id, customer_id=customer_id, ticket_type="care", at=T0 + timedelta(days=1)),
    )
    row = await projected(db, ticket_id)
    assert (row["subject"], row["tags"], row["priority"], row["type"]) == ("新的主题", ["refund", "vip"], "high", None)
    assert (row["team_id"], row["assignee_id"], row["merged_into"], row["version"]) == (team, "u-9", target, 4)
    assert await timeline_kinds(db, customer_id) == ["ticket.created", "care_task.created"]


def test_status_rules():
    row = {"version": 4, "reopened": 0, "solved_at": T0, "closed_at": None}
    values, kind = facts.status_values(row, from_status="solved", to_status="open", at=T0, version=5)
    assert kind == "ticket.reopened"
    assert values == {"version": 5, "reopened": 1, "status": "open", "solved_at": None, "closed_at": None}
    stale, kind = facts.status_values(row, from_status="open", to_status="solved", at=T0, version=3)
    assert (stale, kind) == ({"version": 4}, "ticket.solved")
    values, kind = facts.status_values({**row, "version": None}, from_status="open", to_status="pending", at=T0,
                                       version=None)
    assert (values, kind) == ({"version": 0, "status": "pending"}, None)


async def test_a_deleted_ticket_leaves_the_360_until_it_is_restored(raw, db):
    """A soft deletion is no closing: the timeline says "deleted", the ticket leaves the figures
    and the lists (as a merged one does), and its restore is no reopening."""
    from customer_svc.overview import repository as overview

    customer_id = await insert_customer(raw)
    kept, spam = uuid.uuid4(), uuid.uuid4()
    await apply(raw, created(kept, customer_id=customer_id), created(spam, customer_id=customer_id),
                status(spam, "new", "closed", version=2, at=T0 + timedelta(minutes=5), reason="deleted"))
    row = await projected(db, spam)
    assert (row["status"], row["deleted_at"], row["closed_at"], row["reopened"]) == (
        "closed", T0 + timedelta(minutes=5), None, 0)
    figures = await overview.ticket_figures(raw, customer_id, since=T0 - timedelta(days=1), task_types=["care"])
    assert (figures["total"], figures["open"], figures["solved_recent"]) == (1, 1, 0)
    assert [r["ticket_id"] for r in await overview.recent_tickets(raw, customer_id, each=5)] == [kept]

    await apply(raw, status(spam, "closed", "new", version=3, at=T0 + timedelta(minutes=9), reason="restored"))
    row = await projected(db, spam)
    assert (row["status"], row["deleted_at"], row["reopened"]) == ("new", None, 0)
    figures = await overview.ticket_figures(raw, customer_id, since=T0 - timedelta(days=1), task_types=["care"])
    assert (figures["total"], figures["open"]) == (2, 2)
    assert await timeline_kinds(db, customer_id) == ["ticket.created", "ticket.created", "ticket.deleted",
                                                     "ticket.restored"]


def test_message_rules():
    empty = {"last_message_at": None, "first_response_at": None, "last_customer_message_at": None, "channel": "email"}
    assert facts.message_values(empty, author_kind="customer", public=True, channel=None, at=T0, responds=False) == {
        "last_message_at": T0, "last_customer_message_at": T0, "last_customer_channel": "email"}
    assert facts.message_values(empty, author_kind="agent", public=False, channel=None, at=T0,
                                responds=False) == {"last_message_at": T0}
    # an agent's public message that answers nobody (an opening message) is not a response
    assert facts.message_values(empty, author_kind="agent", public=True, channel=None, at=T0,
                                responds=False) == {"last_message_at": T0}
    later = {**empty, "last_message_at": T0, "first_response_at": T0}
    earlier = T0 - timedelta(minutes=1)
    assert facts.message_values(later, author_kind="agent", public=True, channel=None, at=earlier, responds=True) == {
        "first_response_at": earlier}
    assert facts.message_kind("system", True) is None
    assert facts.message_kind("agent", False) is None
    assert facts.is_fresh(None, 1) and facts.is_fresh(3, None) and facts.is_fresh(3, 3) and not facts.is_fresh(3, 2)


async def test_a_new_requesters_ticket_is_projected_with_its_customer_in_one_write(raw, db):
    """ticket.created resolves the requester first and writes the projected row with its customer:
    one insert, no second write linking it (pg_stat_xact_user_tables counts this transaction's own
    row operations). A new requester costs two statements: the identity lookup, then the customer
    with its identities and ``customer.created``, the projected row with its timeline entry, dirty
    mark and the resolution's outbox row (three before: the customer was a statement of its own)."""
    ticket_id = uuid.uuid4()
    handlers = compose_handlers(fact_handlers, requester_handlers)
    event = created(ticket_id, email="wang.fang@example.cn")
    statements: list[str] = []

    def log(record) -> None:
        statements.append(record.query)

    raw.add_query_logger(log)
    try:
        with watching_writes() as writes:
            async with raw.transaction():
                await handlers[event.type](raw, event)
                counts = {r["relname"]: (r["n_tup_ins"], r["n_tup_upd"]) for r in await raw.fetch(
                    "SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables")}
    finally:
        raw.remove_query_logger(log)
    assert writes.wrote  # the relay is woken for the events
    # the handler's own statements (the logger is called soon after each one, so read them once
    # the transaction is over), not asyncpg's introspection of a type new to the connection
    sent = [q for q in statements if "typeinfo_tree" not in q and not q[:1].isspace()
            and "pg_stat_xact_user_tables" not in q and q != "COMMIT;"]
    assert len(sent) == 3 and sent[0] == "BEGIN;", sent
    assert counts["customer_tickets"] == (1, 0)
    assert {name: counts[name] for name in ("customers", "customer_identities", "customer_timeline", "insight_dirty",
                                            "outbox")} == {
        "customers": (1, 0), "customer_identities": (1, 0), "customer_timeline": (1, 0), "insight_dirty": (1, 0),
        "outbox": (2, 0)}  # customer.created and customer.requester_resolved
    row = await projected(db, ticket_id)
    [customer] = await rows(db, "SELECT id FROM customers")
    assert row["customer_id"] == customer["id"]
    assert await timeline_kinds(db, customer["id"]) == ["ticket.created"]
    [entry] = await rows(db, "SELECT id, at, ref_id, summary FROM customer_timeline WHERE customer_id = :c",
                         c=customer["id"])
    assert (entry["at"], entry["ref_id"]) == (T0, ticket_id)
    assert entry["summary"] == facts.ticket_summary(row)
    assert len(await rows(db, "SELECT 1 FROM insight_dirty WHERE customer_id = :c", c=customer["id"])) == 1
    # the same event again changes nothing (the requester is known, the row and its entry exist)
    async with raw.transaction():
        await handlers[event.type](raw, event)
    assert len(await rows(db, "SELECT 1 FROM customers")) == 1
    assert await timeline_kinds(db, customer["id"]) == ["ticket.created"]
    # the events in their order, the replay's resolution announced again (as before the merge)
    announced = await raw.fetch("SELECT event_type, key FROM outbox ORDER BY seq")
    assert [(r["event_type"], r["key"]) for r in announced] == [
        ("customer.created", str(customer["id"])), ("customer.requester_resolved", str(ticket_id)),
        ("customer.requester_resolved", str(ticket_id))]
    # a requester without any identity: the row without a customer, no entry, no mark
    anonymous = uuid.uuid4()
    async with raw.transaction():
        await handlers["ticket.created"](raw, created(anonymous))
    assert (await projected(db, anonymous))["customer_id"] is None
    assert len(await rows(db, "SELECT 1 FROM customer_timeline")) == 1
    assert len(await rows(db, "SELECT 1 FROM insight_dirty")) == 1
    # a row made by an earlier event: the resolution's events are written all the same
    early = uuid.uuid4()
    await apply(raw, status(early, "new", "open", version=2, at=T0), created(early, email="li.lei@example.cn"))
    assert (await projected(db, early))["customer_id"] is not None
    announced = await raw.fetch("SELECT event_type FROM outbox WHERE key <> $1 AND key <> $2 ORDER BY seq",
                                str(ticket_id), str(customer["id"]))
    assert [r["event_type"] for r in announced] == ["customer.created", "customer.requester_resolved"]


async def test_a_new_requesters_customer_in_the_projections_statement_is_the_one_it_made_alone(raw, db):
    """The customer written by the projection's statement (a new requester's, through the
    handler) and the one requester resolution writes by itself (``resolve_requester`` without
    ``defer_new``) are alike: the organisation of the address's domain joined,
    ``customer.created`` carrying the row's own creation time and organisation and the
    requester's name, the identities sealed and found again."""
    from customer_svc.customers import service as customers

    org = uuid.uuid4()
    await raw.execute("INSERT INTO organizations (id, name, name_key) VALUES ($1, 'Acme 科技', 'acme 科技')", org)
    await raw.execute("INSERT INTO organization_domains (domain, organization_id) VALUES ('acme.cn', $1)", org)
    handlers = compose_handlers(fact_handlers, requester_handlers)
    by_handler = created(uuid.uuid4(), email="Zhang.Wei@ACME.cn")
    by_handler = by_handler.model_copy(update={"data": by_handler.data.model_copy(update={
        "requester": events.Requester(email="Zhang.Wei@ACME.cn", name="张伟 Zhang")})})
    async with raw.transaction():
        await handlers[by_handler.type](raw, by_handler)
    async with raw.transaction():
        alone, made = await customers.resolve_requester(raw, ticket_id=uuid.uuid4(),
                                                        requester={"email": "li.na@acme.cn"})
    assert made
    first = await raw.fetchval("SELECT customer_id FROM customer_tickets WHERE ticket_id = $1",
                               by_handler.data.ticket_id)
    customer_rows = {r["id"]: r for r in await raw.fetch("SELECT id, organization_id, created_at FROM customers")}
    published = [events.decode(bytes(r["payload"])) for r in await raw.fetch(
        "SELECT payload FROM outbox WHERE event_type = 'customer.created' ORDER BY seq")]
    assert [e.data.customer_id for e in published] == [first, alone]
    for event in published:
        row = customer_rows[event.data.customer_id]
        assert (event.data.organization_id, event.data.created_at) == (row["organization_id"], row["created_at"]) \
            and row["organization_id"] == org
        assert len(event.data.identities) == 1
    assert [e.data.name for e in published] == ["张伟 Zhang", None]
    assert published[0].data.identities[0].value == "zhang.wei@acme.cn"
    named = await raw.fetchrow("SELECT name, name_enc FROM customers WHERE id = $1", first)
    assert named["name"] is None and named["name_enc"]  # sealed, as resolution alone stores it
    # the identity is found again: the next ticket of the same person resolves to that customer
    again = created(uuid.uuid4(), email="zhang.wei@acme.cn")
    async with raw.transaction():
        await handlers[again.type](raw, again)
    assert len(await raw.fetch("SELECT 1 FROM customers")) == 2
    assert (await projected(db, again.data.ticket_id))["customer_id"] == first


async def test_a_new_requesters_identity_claimed_first_by_another_rolls_the_statement_back(raw, db, customer_db):
    """The projection's statement inserts the customer whatever its identities' insert found; one
    claimed and committed by another transaction between the lookup and that statement makes
    the handler raise, and the rollback leaves nothing of ours: only the other customer (the
    consumer's retry then resolves to it: test_resolution.py)."""
    import pytest

    from customer_svc.customers import service as customers
    from customer_svc.identities import repository as identities
    from helpdesk_common.db import create_raw_pool

    handlers = compose_handlers(fact_handlers, requester_handlers)
    event = created(uuid.uuid4(), email="race.fang@example.cn")
    lookup = identities.owners_of
    pool = await create_raw_pool(customer_db, size=1)

    async def claimed_meanwhile(conn, pairs):  # the lookup sees no owner; then another commits one
        found = await lookup(conn, pairs)
        async with pool.acquire() as other, other.transaction():
            winner = await insert_customer(other)
            await identities.add_identities(other, customer_id=winner, identities=pairs)
        return found

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(identities, "owners_of", claimed_meanwhile)
            with pytest.raises(customers.IdentityTakenConcurrently):
                async with raw.transaction():
                    await handlers[event.type](raw, event)
    finally:
        await pool.close()
    assert await raw.fetchval("SELECT count(*) FROM customers") == 1  # the other one
    assert await raw.fetchval("SELECT count(*) FROM customer_identities") == 1
    assert await raw.fetchval("SELECT count(*) FROM customer_tickets") == 0
    assert await raw.fetchval("SELECT count(*) FROM outbox") == 0
    # the retry resolves to the other customer
    async with raw.transaction():
        await handlers[event.type](raw, event)
    winner = await raw.fetchval("SELECT id FROM customers")
    assert (await projected(db, event.data.ticket_id))["customer_id"] == winner
