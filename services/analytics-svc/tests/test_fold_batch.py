"""A fold transaction writes what its events collected at its end (``analytics_svc.fold``:
``ticket_facts``, the SLA events' facts and targets, the customers' dimensions), in a constant
number of statements per batch: the tables come out exactly as when every event is written on
its own, with the same key twice in a batch, redeliveries inside a batch, and a process step that
reads its ticket's type in the middle of one."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from analytics_svc import fold
from analytics_svc.main import fold_handlers
from analytics_svc.readmodel.handlers import end_batch
from helpdesk_common import events

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
M = timedelta(minutes=1)
HANDLERS = fold_handlers()

TABLES = {
    "ticket_facts": ("ticket_id", ("ingested_at", "updated_at")),
    "sla_targets": ("ticket_id, metric", ()),
    "customer_dims": ("customer_id", ()),
    "ticket_metrics": ("ticket_id", ("folded_at",)),
    "ticket_history": ("ticket_id, fact_key", ()),
    "metric_rollups": ("dim, bucket, dim_value", ()),
    "sla_rollups": ("dim, bucket, dim_value, policy, metric", ()),
    "open_rollups": ("dim, bucket, dim_value", ()),
    "step_runs": ("step_id", ("updated_at",)),
}


def created(tid, customer=None, ticket_type="refund"):
    return events.TicketCreated(source="ticket-svc", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="退款 refund", status="new", priority="high", type=ticket_type, channel="email",
        tags=["退款"], requester=events.Requester(email="a@b.co"), created_by="channel:k", created_at=T0, number=7,
        customer_id=customer))


def customer_created(cid, org=None, at=T0):
    return events.CustomerCreated(source="customer-svc", subject=str(cid), data=events.CustomerCreatedData(
        customer_id=cid, identities=[], created_at=at, organization_id=org))


def customer_updated(cid, tier, at, version):
    return events.CustomerUpdated(source="customer-svc", subject=str(cid), data=events.CustomerUpdatedData(
        customer_id=cid, version=version, tier=tier, changes={"tier": {"before": None, "after": tier}},
        updated_at=at))


def linked(tid, cid):
    return events.TicketCustomerLinked(source="customer-svc", subject=str(tid), data=events.TicketCustomerLinkedData(
        ticket_id=tid, customer_id=cid))


def applied(tid, metric, at, minutes=60):
    return events.SlaApplied(source="sla-svc", subject=str(tid), time=at, data=events.SlaAppliedData(
        ticket_id=tid, metric=metric, policy="金牌", target_minutes=minutes, started_at=at, due_at=at + minutes * M))


def warning(tid, metric, at):
    return events.SlaWarning(source="sla-svc", subject=str(tid), time=at, data=events.SlaAlertData(
        ticket_id=tid, metric=metric, due_at=at + 10 * M, fire_at=at, policy="金牌", colour="yellow"))


def fulfilled(tid, metric, at):
    return events.SlaFulfilled(source="sla-svc", subject=str(tid), time=at, data=events.SlaFulfilledData(
        ticket_id=tid, metric=metric, fulfilled_at=at, breached=False))


def retyped(tid, before, after):
    return events.TicketUpdated(source="ticket-svc", subject=str(tid), data=events.TicketUpdatedData(
        ticket_id=tid, version=2, changes={"type": {"before": before, "after": after}}))


def replied(tid, at):
    return events.TicketMessageAdded(source="ticket-svc", subject=str(tid), data=events.TicketMessageAddedData(
        ticket_id=tid, message_id=uuid.uuid4(), author_kind="agent", public=True, created_at=at, first_response=True))


def step_started(tid, sid, at):
    return events.TicketStepStarted(source="ticket-svc", subject=str(tid), data=events.TicketStepStartedData(
        ticket_id=tid, step_id=sid, step="manager", kind="approval", target_minutes=60, process_version=1,
        started_at=at))


def story(tid, cid, org):
    """One ticket's events in their natural order: the requester's customer created, updated twice
    (the same key twice in a batch), the ticket created, linked, its SLA targets applied, warned
    and fulfilled, retyped, a step started (it reads the type), answered."""
    return [
        customer_created(cid, org), customer_updated(cid, "silver", T0 + M, 2),
        customer_updated(cid, "金牌", T0 + 2 * M, 3), created(tid), linked(tid, cid),
        applied(tid, "first_response", T0), applied(tid, "resolution", T0, minutes=480),
        warning(tid, "first_response", T0 + 40 * M), retyped(tid, "refund", "complaint"),
        step_started(tid, uuid.uuid4(), T0 + 5 * M), replied(tid, T0 + 45 * M),
        fulfilled(tid, "first_response", T0 + 45 * M),
    ]


async def reset(raw) -> None:
    await raw.execute(f"TRUNCATE {', '.join(TABLES)}, metric_rollups_daily")


def _figure(value) -> bool:
    return bool(value) and not (isinstance(value, list) and not any(value))


async def snapshot(raw) -> dict[str, list[dict]]:
    """Every table's rows; of the rollups, the non-zero figures (a row whose figures went back to
    zero may stay, readmodel/repository.py: a batch that moves a ticket across a dimension's
    values before writing leaves no such row)."""
    out = {}
    for table, (order, volatile) in TABLES.items():
        rows = await raw.fetch(f"SELECT * FROM {table} ORDER BY {order}")
        keys = order.split(", ")
        if table.endswith("_rollups"):
            figures = [{k: v for k, v in r.items() if k in keys or _figure(v)} for r in rows]
            out[table] = [f for f in figures if len(f) > len(keys)]
        else:
            out[table] = [{k: v for k, v in r.items() if k not in volatile} for r in rows]
    return out


async def one_by_one(raw, evts) -> None:
    """Each event in a transaction of its own, written as it is handled (no fold transaction)."""
    for e in evts:
        async with raw.transaction():
            await HANDLERS[e.type](raw, e)
            await end_batch(raw)


async def in_batches(raw, evts, size) -> None:
    """As the consumer does: ``size`` events per fold transaction."""
    for i in range(0, len(evts), size):
        try:
            async with raw.transaction():
                await fold.begin(raw)
                for e in evts[i:i + size]:
                    await HANDLERS[e.type](raw, e)
                await fold.end(raw)
        finally:
            fold.close(raw)


async def test_a_batch_writes_what_one_event_per_transaction_writes(raw):
    rng = random.Random(11)
    org = uuid.uuid4()
    stories = [story(uuid.uuid4(), uuid.uuid4(), org if i % 2 else None) for i in range(5)]
    # interleave the tickets' stories, each in its own order (events of one key stay ordered, as
    # on their partition)
    evts, queues = [], [list(s) for s in stories]
    while any(queues):
        q = rng.choice([q for q in queues if q])
        evts.append(q.pop(0))
    await reset(raw)
    await one_by_one(raw, evts)
    expected = await snapshot(raw)
    assert len(expected["ticket_facts"]) == 5 and len(expected["sla_targets"]) == 10
    assert {r["tier"] for r in expected["customer_dims"]} == {"金牌"}
    assert {r["ticket_type"] for r in expected["step_runs"]} == {"complaint"}
    assert {(r["customer_id"] is not None, r["first_response_due_at"], r["first_response_at"], r["ticket_type"])
            for r in expected["ticket_facts"]} == {(True, T0 + 60 * M, T0 + 45 * M, "complaint")}
    for size in (4, 500):
        await reset(raw)
        # redeliveries inside a batch and across batches change nothing
        await in_batches(raw, evts + evts[:7] + [e.model_copy() for e in evts[20:26]], size)
        assert await snapshot(raw) == expected, size


async def test_a_batch_takes_the_same_statements_for_two_tickets_as_for_eight(raw):
    async def statements(n: int) -> list[str]:
        sent: list[str] = []
        evts = []
        for _ in range(n):
            tid, cid = uuid.uuid4(), uuid.uuid4()
            evts += [customer_created(cid), created(tid), linked(tid, cid), applied(tid, "first_response", T0),
                     applied(tid, "resolution", T0, minutes=480)]

        def log(record) -> None:
            sent.append(record.query)

        raw.add_query_logger(log)
        try:
            await in_batches(raw, evts, len(evts))
        finally:
            raw.remove_query_logger(log)
        # the fold's own statements, not asyncpg's introspection of a type new to the connection
        return [q for q in sent if "typeinfo_tree" not in q and not q[:1].isspace()]

    await reset(raw)
    await statements(1)  # the first batch prepares the statements and loads their types
    two, eight = await statements(2), await statements(8)
    assert len(two) == len(eight), (two, eight)
    # BEGIN, ticket_facts (creations, links, first-response targets), customer_dims, the SLA facts
    # and their targets, the ticket facts, the fold's lock, history, context, three rollups, the rows
    assert len(eight) <= 15, eight


async def test_upserts_of_one_ticket_whose_columns_overlap_keep_their_order_in_a_batch(raw):
    """A creation keeps a stored type and a retype replaces it: a type cleared and then a
    re-published creation in one batch leave the creation's type, as one by one."""
    tid = uuid.uuid4()
    first = created(tid, ticket_type="refund")
    evts = [first, retyped(tid, "refund", None), first.model_copy(update={"id": uuid.uuid4()}),
            linked(tid, uuid.uuid4())]
    await reset(raw)
    await one_by_one(raw, evts)
    expected = await snapshot(raw)
    assert [r["ticket_type"] for r in expected["ticket_facts"]] == ["refund"]
    await reset(raw)
    await in_batches(raw, evts, len(evts))
    assert await snapshot(raw) == expected
