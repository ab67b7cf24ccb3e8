"""Deliveries claimed as the consumer queues them (deliveries/handoff.py), on the real database:
what is inserted claimed and what queued, what reaches the dispatcher after a commit and what
goes back after a rollback; and end to end, that a reply the consumer queued is sent without the
dispatcher's claim ever taking it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from notify_svc.deliveries import handoff, repository

from .test_deliveries_flow import _delivery_of, _raw, notify, reply_event  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(120)


class Receiver:
    """A dispatcher's side of the hand-off: ``room`` slots, and what it was given."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.reserved = 0
        self.started: list = []
        self.woken = 0

    def reserve(self) -> float | None:
        if self.reserved + len(self.started) >= self.room:
            return None
        self.reserved += 1
        return 90.0

    def unreserve(self) -> None:
        self.reserved -= 1

    def start(self, row, *, held_s: float = 0.0) -> None:
        self.reserved -= 1
        self.started.append(row)

    def wake(self) -> None:
        self.woken += 1


def _handoff(*, room: int) -> tuple[handoff.Handoff, Receiver]:
    """A hand-off whose dispatcher has ``room`` slots."""
    box, receiver = handoff.Handoff(), Receiver(room=room)
    box.receiver = receiver
    return box, receiver


async def _ticket_of(conn, ticket_id: uuid.UUID, customer_id: uuid.UUID) -> None:
    await conn.execute("INSERT INTO notification_tickets (ticket_id, customer_id) VALUES ($1, $2)", ticket_id,
                       customer_id)


async def _queue(conn, key: str, *, ticket_id: uuid.UUID | None = None, status: str = "queued"):
    return await handoff.queue(conn, delivery_id=uuid.uuid4(), kind="reply", channel="email", destination="smtp",
                               dedupe_key=key, payload={"route": {"to": ["li@example.com"]}, "subject": "主题"},
                               max_attempts=5, ticket_id=ticket_id, status=status,
                               reason=None if status == "queued" else "no address")


@pytest.fixture
async def conn(notify_db, db):
    from alembic import command

    from helpdesk_common.migrate import alembic_config

    import asyncio

    await asyncio.to_thread(command.upgrade, alembic_config("notify_svc", notify_db), "head")
    connection = await _raw(notify_db)
    try:
        yield connection
    finally:
        await connection.close()


async def _row(conn, delivery_id):
    return await conn.fetchrow("SELECT status, attempts, lease_until, next_attempt_at FROM deliveries WHERE id = $1",
                               delivery_id)


async def test_rows_are_claimed_while_there_is_room_and_handed_over_after_the_commit(conn) -> None:
    box, receiver = _handoff(room=2)
    await box.begin(conn)
    async with conn.transaction():
        ids = [await _queue(conn, f"h{i}") for i in range(3)]
        assert receiver.started == []  # nothing before the commit
        assert receiver.reserved == 2
    box.end(conn, True)
    assert [r["id"] for r in receiver.started] == ids[:2]
    assert receiver.reserved == 0
    for delivery_id in ids[:2]:
        row = await _row(conn, delivery_id)
        assert (row["status"], row["attempts"]) == ("sending", 1)
        assert row["lease_until"] > datetime.now(UTC)
    # the third found no room: queued, for the dispatcher's claim, unclaimed and uncounted
    row = await _row(conn, ids[2])
    assert (row["status"], row["attempts"], row["lease_until"]) == ("queued", 0, None)
    # what was handed over carries what the claim returns (the dispatcher sends from it)
    claimed = {k for k in receiver.started[0].keys()}
    assert {"id", "kind", "channel", "destination", "payload", "attempts", "max_attempts", "next_trigger"} <= claimed
    assert receiver.started[0]["payload"]["subject"] == "主题"
    # ... and the claim leaves the handed-over rows alone (their lease runs), takes the queued one
    async with conn.transaction():
        taken = await repository.claim_due(conn, limit=10, lease_s=60)
    assert [r["id"] for r in taken] == [ids[2]]


async def test_a_rolled_back_transaction_hands_nothing_over_and_gives_its_slots_back(conn) -> None:
    box, receiver = _handoff(room=4)
    await box.begin(conn)
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await _queue(conn, "r1")
            await _queue(conn, "r2")
            assert receiver.reserved == 2
            raise RuntimeError("a later handler failed")
    box.end(conn, False)
    assert (receiver.started, receiver.reserved) == ([], 0)
    assert await conn.fetchval("SELECT count(*) FROM deliveries WHERE dedupe_key IN ('r1', 'r2')") == 0


async def test_held_duplicate_and_undeliverable_rows_are_not_handed_over(conn) -> None:
    box, receiver = _handoff(room=8)
    held_ticket, customer = uuid.uuid4(), uuid.uuid4()
    await _ticket_of(conn, held_ticket, customer)
    await conn.execute("INSERT INTO restricted_customers (customer_id, since) VALUES ($1, now())", customer)
    await box.begin(conn)
    async with conn.transaction():
        held = await _queue(conn, "d-held", ticket_id=held_ticket)
        first = await _queue(conn, "d-once")
        again = await _queue(conn, "d-once")
        undeliverable = await _queue(conn, "d-undeliverable", status="undeliverable")
    box.end(conn, True)
    assert again is None
    assert [r["id"] for r in receiver.started] == [first]
    assert receiver.reserved == 0
    row = await _row(conn, held)
    assert (row["status"], row["attempts"], row["lease_until"]) == ("queued", 0, None)
    assert (await _row(conn, undeliverable))["status"] == "undeliverable"
    # held, the claim does not take it either
    async with conn.transaction():
        assert await repository.claim_due(conn, limit=10, lease_s=60) == []


async def test_outside_a_consumer_transaction_rows_are_queued_and_the_dispatchers_woken(conn) -> None:
    receiver = Receiver(room=8)
    handoff.RUNNING.add(receiver)
    try:
        async with conn.transaction():
            delivery_id = await _queue(conn, "api-1")
    finally:
        handoff.RUNNING.discard(receiver)
    row = await _row(conn, delivery_id)
    assert (row["status"], row["attempts"], row["lease_until"]) == ("queued", 0, None)
    # at least once: a consumer of another app of this process may queue (and wake) meanwhile
    assert receiver.woken >= 1, receiver.woken
    assert receiver.started == []


async def test_replies_the_consumer_queues_are_sent_without_being_claimed(notify, monkeypatch) -> None:
    """End to end: the consumer's rows go straight to the dispatcher; its claim (which still runs
    on every poll) never returns one of them."""
    taken: list[uuid.UUID] = []
    claim_due = repository.claim_due

    async def watched(conn, **kwargs):
        rows = await claim_due(conn, **kwargs)
        taken.extend(r["id"] for r in rows)
        return rows

    monkeypatch.setattr(repository, "claim_due", watched)
    # more than the dispatcher's 16 send slots: one fetched batch's rows wait in it for a slot
    evts = [reply_event(to=f"h{i}@example.com") for i in range(40)]
    from helpdesk_common.testing import produce, wait_for

    await produce(notify.bootstrap, notify.topics, *evts)
    from .test_deliveries_flow import ADMIN

    wanted = {str(e.data.message_id) for e in evts}

    async def all_sent():
        items = (await notify.get("/v1/deliveries", params={"limit": 100, "status": "sent"},
                                  headers=ADMIN)).json()["items"]
        mine = [i for i in items if i["message_id"] in wanted]
        return mine if len(mine) == len(wanted) else None

    sent = await wait_for(all_sent, timeout=45)
    assert len(notify.email.sent) == 40
    assert all(d["attempts"] == 1 for d in sent)
    assert taken == []


async def _consumer_transaction(conn, box, *steps):
    """Run ``steps`` (async callables of the connection) in one transaction as the consumer
    does: the hand-off's begin, the transaction, its end with the outcome."""
    await box.begin(conn)
    committed = False
    try:
        async with conn.transaction():
            results = [await step(conn) for step in steps]
        committed = True
    finally:
        box.end(conn, committed)
    return results


async def test_a_restriction_later_in_the_transaction_holds_what_it_had_claimed(conn) -> None:
    """A reply claimed as it was queued, then the customer restricted in the same consumer
    transaction: nothing is handed over, and the row waits, held, with no attempt counted."""
    from helpdesk_common import events

    from notify_svc.privacy.handlers import handle_customer_restricted

    box, receiver = _handoff(room=8)
    ticket_id, customer = uuid.uuid4(), uuid.uuid4()
    await _ticket_of(conn, ticket_id, customer)
    restricted = events.CustomerRestricted(source="customer-svc", subject=str(customer),
                                           data=events.CustomerRestrictedData(customer_id=customer, restricted=True,
                                                                              at=datetime.now(UTC)))
    other = uuid.uuid4()
    [mine, unrelated, _] = await _consumer_transaction(
        conn, box, lambda c: _queue(c, "p-mine", ticket_id=ticket_id), lambda c: _queue(c, "p-other", ticket_id=other),
        lambda c: handle_customer_restricted(c, restricted))
    assert receiver.started == [] and receiver.reserved == 0
    row = await _row(conn, mine)
    assert (row["status"], row["attempts"], row["lease_until"]) == ("queued", 0, None)
    # the claim holds the restricted customer's row and takes the other one, put back with it
    async with conn.transaction():
        taken = await repository.claim_due(conn, limit=10, lease_s=60)
    assert [r["id"] for r in taken] == [unrelated] and taken[0]["attempts"] == 1


async def test_an_erasure_later_in_the_transaction_leaves_what_it_had_claimed_unsent(conn) -> None:
    from notify_svc.privacy.handlers import _erase

    box, receiver = _handoff(room=8)
    ticket_id, customer = uuid.uuid4(), uuid.uuid4()
    await _ticket_of(conn, ticket_id, customer)
    [mine, _] = await _consumer_transaction(conn, box, lambda c: _queue(c, "e-mine", ticket_id=ticket_id),
                                            lambda c: _erase(c, customer))
    assert receiver.started == [] and receiver.reserved == 0
    row = await conn.fetchrow("SELECT status, attempts, payload FROM deliveries WHERE id = $1", mine)
    assert (row["status"], row["attempts"], row["payload"]) == ("undeliverable", 0, {})


def test_the_dispatcher_takes_up_to_four_times_its_concurrency_and_nothing_once_stopping() -> None:
    from types import SimpleNamespace

    from notify_svc.deliveries.dispatcher import Dispatcher

    settings = SimpleNamespace(dispatcher_concurrency=2, dispatcher_lease_s=60.0)
    dispatcher = Dispatcher(runtime=None, settings=settings, adapters={})
    assert [dispatcher.reserve() for _ in range(8)] == [60.0] * 8
    assert dispatcher.reserve() is None  # the row is queued, and the dispatcher knows rows wait
    assert dispatcher._behind
    assert dispatcher._room() < 0  # the claim takes nothing while handed-over rows hold the slots
    dispatcher.unreserve()
    assert dispatcher.reserve() == 60.0
    for _ in range(8):
        dispatcher.unreserve()
    dispatcher._stopping = True
    assert dispatcher.reserve() is None


async def test_a_row_the_transaction_held_too_long_is_given_back_not_sent(conn, notify_db) -> None:
    """The consumer's transaction held a claimed row for more than a tenth of its lease: the row
    goes back to ``queued`` (its attempt uncounted) for a claim with a whole lease, rather than be
    sent with an attempt that could outlast the lease (another claim would send it too)."""
    from types import SimpleNamespace

    from helpdesk_common.db import create_raw_pool

    from notify_svc.deliveries.dispatcher import Dispatcher

    pool = await create_raw_pool(notify_db, size=1)

    class Runtime:
        def raw_transaction(self):
            import contextlib

            @contextlib.asynccontextmanager
            async def tx():
                async with pool.acquire() as c, c.transaction():
                    yield c
            return tx()

    try:
        settings = SimpleNamespace(dispatcher_concurrency=4, dispatcher_lease_s=10.0)
        dispatcher = Dispatcher(runtime=Runtime(), settings=settings, adapters={})
        row = await repository.insert_claimed(conn, delivery_id=uuid.uuid4(), kind="reply", channel="email",
                                              destination="smtp", dedupe_key="held-long", payload={}, max_attempts=5,
                                              lease_s=10.0)
        assert dispatcher.reserve() == 10.0
        dispatcher.start(row, held_s=1.5)  # 15 % of the lease
        await asyncio.gather(*dispatcher._in_flight, return_exceptions=True)
        assert dispatcher._reserved == 0
        back = await _row(conn, row["id"])
        assert (back["status"], back["attempts"], back["lease_until"]) == ("queued", 0, None)
    finally:
        await pool.close()


async def test_a_link_to_a_restricted_customer_later_in_the_transaction_holds_what_it_had_claimed(conn) -> None:
    """The ticket's customer becomes known (``ticket.customer_linked``) after a reply about it
    was claimed in the same transaction, and that customer is restricted: nothing is handed
    over; the claim holds the row as it holds any row of a restricted customer."""
    from types import SimpleNamespace

    from helpdesk_common import events

    from notify_svc.notifications.handlers import handlers

    box, receiver = _handoff(room=8)
    ticket_id, customer = uuid.uuid4(), uuid.uuid4()
    await conn.execute("INSERT INTO restricted_customers (customer_id, since) VALUES ($1, now())", customer)
    linked = events.TicketCustomerLinked(source="ticket-svc", subject=str(ticket_id),
                                         data=events.TicketCustomerLinkedData(ticket_id=ticket_id, customer_id=customer))
    handle = handlers(SimpleNamespace())["ticket.customer_linked"]
    [mine, _] = await _consumer_transaction(conn, box, lambda c: _queue(c, "l-mine", ticket_id=ticket_id),
                                            lambda c: handle(c, linked))
    assert receiver.started == [] and receiver.reserved == 0
    row = await _row(conn, mine)
    assert (row["status"], row["attempts"], row["lease_until"]) == ("queued", 0, None)
    async with conn.transaction():
        assert await repository.claim_due(conn, limit=10, lease_s=60) == []
    # a link to a customer who is not restricted takes nothing back
    other_ticket = uuid.uuid4()
    free = events.TicketCustomerLinked(source="ticket-svc", subject=str(other_ticket),
                                       data=events.TicketCustomerLinkedData(ticket_id=other_ticket,
                                                                            customer_id=uuid.uuid4()))
    [sent, _] = await _consumer_transaction(conn, box, lambda c: _queue(c, "l-free", ticket_id=other_ticket),
                                            lambda c: handle(c, free))
    assert [r["id"] for r in receiver.started] == [sent]


async def test_a_notification_claimed_as_it_is_queued_writes_its_log_entry_in_the_same_statement(conn) -> None:
    """The claimed insert carries the notification's log entry (repository.LogEntry): one entry
    with the delivery's id; the same event again claims nothing and logs nothing more."""
    box, receiver = _handoff(room=4)
    ticket_id, event_id = uuid.uuid4(), uuid.uuid4()
    entry = repository.LogEntry(event_id=event_id, key="ticket_received", recipient="customer", ticket_id=ticket_id,
                                reason=None, channel="email")
    ids = []
    for _ in range(2):
        await box.begin(conn)
        async with conn.transaction():
            ids.append(await handoff.queue(conn, delivery_id=uuid.uuid4(), kind="notification", channel="email",
                                           destination="smtp", dedupe_key=f"notification:{event_id}", max_attempts=5,
                                           payload={"route": {"to": ["li@example.com"]}}, ticket_id=ticket_id,
                                           event_id=event_id, log=entry))
        box.end(conn, True)
    assert ids[0] is not None and ids[1] is None
    assert [r["id"] for r in receiver.started] == [ids[0]]
    assert [tuple(r) for r in await conn.fetch(
        "SELECT key, recipient, status, channel, delivery_id FROM notification_log WHERE event_id = $1", event_id)] == [
        ("ticket_received", "customer", "queued", "email", ids[0])]
