"""The read model on a real database: order-independent folding and the one-statement KPI query."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from analytics_svc.kpis import handlers, repository
from helpdesk_common import events

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = (datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))


def created(tid, *, at=NOW, status="new", priority="high"):
    return events.TicketCreated(source="t", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="s", status=status, priority=priority, channel="email",
        requester=events.Requester(email="a@b.co"), created_by="channel:k", created_at=at))


def linked(tid, customer_id):
    return events.TicketCustomerLinked(source="t", subject=str(tid),
                                       data=events.TicketCustomerLinkedData(ticket_id=tid, customer_id=customer_id))


def applied(tid, metric="first_response"):
    return events.SlaApplied(source="t", subject=str(tid), data=events.SlaAppliedData(
        ticket_id=tid, metric=metric, policy="default", target_minutes=60, started_at=NOW, due_at=NOW + timedelta(hours=1)))


def status_changed(tid, to_status, version):
    return events.TicketStatusChanged(source="t", subject=str(tid), data=events.TicketStatusChangedData(
        ticket_id=tid, version=version, from_status="x", to_status=to_status, changed_at=NOW))


HANDLE = {"ticket.created": handlers.handle_ticket_created, "ticket.customer_linked": handlers.handle_customer_linked,
          "sla.applied": handlers.handle_sla_applied, "ticket.status_changed": handlers.handle_status_changed}


async def fold(conn, *evts):
    for e in evts:
        await HANDLE[e.type](conn, e)


async def test_every_arrival_order_folds_to_the_same_row(raw):
    customer = uuid.uuid4()
    cols = "created_at, priority, status, channel, customer_id, first_response_due_at"
    results = set()
    conn = raw
    async with raw.transaction():
        for order in itertools.permutations(["created", "linked", "applied"]):
            tid = uuid.uuid4()
            make = {"created": lambda: created(tid), "linked": lambda: linked(tid, customer), "applied": lambda: applied(tid)}
            await fold(conn, *(make[name]() for name in order))
            row = await conn.fetchrow(f"SELECT {cols}, ingested_at FROM ticket_facts WHERE ticket_id = $1", tid)
            assert row["ingested_at"] is not None
            results.add(tuple(row)[:-1])
    assert results == {(NOW, "high", "new", "email", customer, NOW + timedelta(hours=1))}


async def test_status_follows_the_newest_ticket_version_in_any_order(raw):
    statuses = set()
    conn = raw
    async with raw.transaction():
        for order in itertools.permutations(["created", "open", "solved"]):
            tid = uuid.uuid4()
            make = {"created": lambda: created(tid), "open": lambda: status_changed(tid, "open", 2),
                    "solved": lambda: status_changed(tid, "solved", 3)}
            await fold(conn, *(make[name]() for name in order))
            statuses.add(await conn.fetchval("SELECT status FROM ticket_facts WHERE ticket_id = $1", tid))
        assert statuses == {"solved"}
        before = (await repository.kpis(conn, day_start=DAY[0], day_end=DAY[1]))["open_tickets"]
        tid = uuid.uuid4()
        await fold(conn, created(tid))
        assert (await repository.kpis(conn, day_start=DAY[0], day_end=DAY[1]))["open_tickets"] == before + 1
        await fold(conn, status_changed(tid, "solved", 2))
        assert (await repository.kpis(conn, day_start=DAY[0], day_end=DAY[1]))["open_tickets"] == before


async def test_partial_rows_wait_for_creation_and_ingested_at_is_the_fold_wall_clock(raw):
    tid = uuid.uuid4()
    conn = raw
    async with raw.transaction():
        await fold(conn, linked(tid, uuid.uuid4()), applied(tid), applied(tid, metric="resolution"))
        row = await conn.fetchrow("SELECT created_at, ingested_at FROM ticket_facts")
        assert tuple(row) == (None, None)
        assert (await repository.kpis(conn, day_start=DAY[0], day_end=DAY[1]))["tickets_total"] == 0
        await fold(conn, created(tid))
        first = await conn.fetchval("SELECT ingested_at FROM ticket_facts")
        assert first > await conn.fetchval("SELECT now()")  # clock_timestamp(), not the transaction start
        await fold(conn, created(tid, status="open"))  # folded again: data updated, first fold time kept
        assert await conn.fetchval("SELECT ingested_at FROM ticket_facts") == first
        assert await conn.fetchval("SELECT status FROM ticket_facts") == "open"
        assert await conn.fetchval(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_name = 'ticket_facts' AND column_name = 'ingested_at'") == "clock_timestamp()"


async def test_kpis_count_with_one_statement(raw):
    customer = uuid.uuid4()
    conn = raw
    async with raw.transaction():
        t = [uuid.uuid4() for _ in range(7)]
        await fold(
            conn,
            created(t[0]), linked(t[0], customer), applied(t[0]),
            created(t[1], status="open"), applied(t[1]),
            created(t[2], status="solved"),
            created(t[3], status="closed", at=NOW - timedelta(days=1)),
            created(t[4], at=DAY[0] - timedelta(microseconds=1)),  # the last instant of yesterday
            created(t[5], at=DAY[1]),  # the first instant of tomorrow (clock skew)
            linked(t[6], customer), applied(t[6]),  # not created yet: not counted at all
        )
        kpis = await repository.kpis(conn, day_start=DAY[0], day_end=DAY[1])
    assert kpis == {
        "tickets_created_today": 3,
        "open_tickets": 4,
        "tickets_total": 6,
        "tickets_linked_to_customer": 1,
        "tickets_with_sla": 2,
    }
