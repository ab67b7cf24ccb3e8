"""Deliveries claimed as they are queued, and handed to this process's dispatcher once the
consumer's transaction has committed.

A row queued by the consumer used to wait for the dispatcher's next claim: a second transaction
whose UPDATE (``FOR UPDATE SKIP LOCKED`` over the due index) cost more PostgreSQL time than the
row's insert. Now, while the dispatcher of the consuming process has room, the row is inserted
already claimed (``sending``, its first attempt counted, a lease), unless it is held for a
restricted customer, and the dispatcher starts sending it right after the commit. The claim's
guarantees are those of ``repository.claim_due``: a process that dies before sending leaves the
row ``sending`` until its lease expires, and any dispatcher then claims it again; a transaction
that rolls back leaves no row and hands nothing over.

One ``Handoff`` per app, wired into its consumer as ``on_begin`` / ``after_transaction``; the
connection of an open consumer transaction names the hand-off its inserts go to, so code outside
a consumer transaction (the API) queues rows as before.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Protocol

from . import repository


class Receiver(Protocol):
    """What a hand-off needs of a dispatcher."""

    def reserve(self) -> float | None: ...  # the lease (seconds) of a slot taken, None when full

    def unreserve(self) -> None: ...

    def start(self, row: Any, *, held_s: float = 0.0) -> None: ...  # send a row claimed held_s ago

    def wake(self) -> None: ...  # a row was queued: claim soon


log = logging.getLogger(__name__)

#: the dispatchers running in this process (``Dispatcher.run``), woken after a row was queued
RUNNING: set[Any] = set()

#: consumer transactions open in this process: id(connection) -> the hand-off of its app
_OPEN: dict[int, Handoff] = {}


def wake_all() -> None:
    """Wake this process's dispatchers (a delivery was just queued). Called before the queuing
    transaction commits: a wake now may find nothing, so each dispatcher also looks again a
    little later (``Dispatcher.wake``)."""
    for dispatcher in list(RUNNING):
        dispatcher.wake()


async def queue(conn: Any, *, delivery_id: uuid.UUID, kind: str, channel: str, destination: str,
                dedupe_key: str, payload: dict[str, Any], max_attempts: int, ticket_id: uuid.UUID | None = None,
                message_id: uuid.UUID | None = None, subscription_id: uuid.UUID | None = None,
                event_id: uuid.UUID | None = None, status: str = "queued",
                reason: str | None = None, log: repository.LogEntry | None = None) -> uuid.UUID | None:
    """Insert a delivery (``repository.insert``'s arguments and answer: None when ``dedupe_key``
    has one already), with a notification's ``log`` entry in the same statement. A queued row
    inserted in a consumer transaction whose dispatcher has room
    is inserted claimed and sent once the transaction commits; any other queued row wakes the
    dispatchers of this process."""
    fields = dict(delivery_id=delivery_id, kind=kind, channel=channel, destination=destination,
                  dedupe_key=dedupe_key, payload=payload, max_attempts=max_attempts, ticket_id=ticket_id,
                  message_id=message_id, subscription_id=subscription_id, event_id=event_id, log=log)
    handoff = of(conn) if status == "queued" else None
    reserved = handoff.reserve(conn) if handoff is not None else None
    if handoff is None or reserved is None:
        created = await repository.insert(conn, status=status, reason=reason, **fields)
        if created is not None and status == "queued":
            wake_all()
        return created
    slot, lease = reserved
    row = await repository.insert_claimed(conn, lease_s=lease, **fields)
    if row is None:
        return None
    if row["status"] == "sending":
        handoff.claimed(conn, slot, row)
    # else held for a restricted customer: no dispatcher may claim it yet, nothing to wake
    return row["id"]


def of(conn: Any) -> Handoff | None:
    """The hand-off of the consumer transaction open on ``conn``; None outside one."""
    return _OPEN.get(id(conn))


class Handoff:
    def __init__(self) -> None:
        #: the app's dispatcher, once running (None: rows are queued for a later claim)
        self.receiver: Receiver | None = None
        #: per open transaction, one [dispatcher, claimed row or None] per slot reserved
        self._slots: dict[int, list[list[Any]]] = {}

    async def begin(self, conn: Any) -> None:
        """The consumer's ``on_begin``."""
        # defensive: the consumer reports every transaction's end, so there is nothing here
        self._settle(id(conn), committed=False)
        _OPEN[id(conn)] = self

    def end(self, conn: Any, committed: bool) -> None:
        """The consumer's ``after_transaction``: send what it claimed, if it committed."""
        if _OPEN.get(id(conn)) is self:
            del _OPEN[id(conn)]
        self._settle(id(conn), committed=committed)

    def reserve(self, conn: Any) -> tuple[int, float] | None:
        """A dispatcher slot for a row about to be inserted on ``conn``: (slot, lease seconds),
        or None when there is no running dispatcher or it has no room."""
        receiver = self.receiver
        lease = receiver.reserve() if receiver is not None else None
        if lease is None:
            return None
        slots = self._slots.setdefault(id(conn), [])
        slots.append([receiver, None, 0.0])
        return len(slots) - 1, lease

    def claimed(self, conn: Any, slot: int, row: Any) -> None:
        """The row inserted in ``slot``'s reservation, claimed (``None``: inserted queued, or
        not at all; the slot goes back at the end of the transaction)."""
        entry = self._slots[id(conn)][slot]
        entry[1], entry[2] = row, time.monotonic()

    def take_back(self, conn: Any) -> list[uuid.UUID]:
        """The ids of the rows this transaction claimed so far, no longer to be handed over
        (their slots go back at its end): ``forfeit``."""
        ids = []
        for slot in self._slots.get(id(conn), ()):
            if slot[1] is not None:
                ids.append(slot[1]["id"])
                slot[1] = None
        return ids

    def _settle(self, key: int, *, committed: bool) -> None:
        slots = self._slots.pop(key, None)
        if not slots:
            return
        now = time.monotonic()
        for receiver, row, claimed_at in slots:
            try:
                if committed and row is not None:
                    receiver.start(row, held_s=now - claimed_at)
                else:
                    receiver.unreserve()
            except Exception:  # one slot's failure must not strand the others
                log.exception("delivery hand-off failed", extra={"delivery_id": str(row["id"]) if row else None})


async def forfeit(conn: Any) -> int:
    """Put the rows the open consumer transaction on ``conn`` claimed back to ``queued`` (their
    first attempt uncounted), not to be handed over: a privacy event later in the same
    transaction (a restriction, an erasure) must find them as it would find any row not yet
    sent, held or made undeliverable, rather than have them sent from memory after the commit.
    The number put back."""
    handoff = of(conn)
    ids = handoff.take_back(conn) if handoff is not None else []
    if ids:
        await repository.unclaim(conn, ids)
        wake_all()  # the rows of other customers among them are due now
    return len(ids)
