"""Fold events into the metric read model, inside the consumer's transaction (bare asyncpg).

Each ticket event becomes facts with a natural key in ``ticket_history``, inserted at the end of
the batch's transaction (``end_batch``), where every ticket that got a new one is re-folded once
from all its facts (``metrics.rules.fold`` with no ``as_of``, so the result depends only on the
facts and a rebuild reproduces it), its contributions recomputed, and only the difference to what
it contributed before is added to the rollups. A redelivered or re-published event inserts
nothing and changes nothing: the read model is idempotent without
the inbox, and order-tolerant because a fold never depends on arrival order.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ..metrics import rules
from ..rounds import rounds
from . import calendars, facts, ops, repository, targets
from .contributions import (
    Contributions, DeltaSum, Dimensions, contributions, cycle_policies, delta, hour, survey_amounts, ticket_state,
)

Handler = Callable[[Any, Any], Awaitable[None]]


# --------------------------------------------------------------------------- ticket folds


async def fold_ticket_event(conn: Any, event: Any) -> None:
    """Collect the event's facts: ``end_batch`` inserts them and re-folds the ticket if any is new."""
    pairs = facts.ticket_facts(event)
    if pairs:
        ticket_id = event.data.ticket_id
        _batch(conn).facts.extend(
            (ticket_id, key, facts.kind_of(fact), fact.at, facts.to_body(fact)) for key, fact in pairs)
    ops.folded(event.type, event.time)


# --------------------------------------------------------------------------- the per-batch fold
#
# Ticket-event handlers only collect facts; in a fold transaction (begun with ``begin_batch``)
# so do the ``sla.*`` ones and the customers' dimensions; ``end_batch`` (the consumer's
# ``before_commit``, the rebuild's end of each batch transaction) writes them and re-folds every
# ticket with a new fact once, in a constant number of statements per batch. The pending facts
# and marks belong to the connection's open transaction: ``begin_batch`` (``on_begin``) starts
# them empty, ``end_batch`` takes them. A handler that reads ``customer_dims`` writes the
# collected dimensions first (``_flush_dims``).


@dataclasses.dataclass
class _Batch:
    #: tickets with a new fact recorded in this transaction
    dirty: set[uuid.UUID] = dataclasses.field(default_factory=set)
    #: ticket facts of the batch's events, inserted together by ``end_batch``
    facts: list[tuple[uuid.UUID, str, str, Any, Any]] = dataclasses.field(default_factory=list)
    #: begun with ``begin_batch`` (a fold transaction): the ``sla.*`` events' facts and targets
    #: and the customers' dimensions are written by ``end_batch`` too, else each at once
    deferring: bool = False
    #: (ticket id, metric, fact rows) of the batch's ``sla.*`` events, in event order
    sla: list[tuple[uuid.UUID, str, list[repository.FactRow]]] = dataclasses.field(default_factory=list)
    #: ``repository.upsert_customer_dims_many`` rows, in event order
    dims: list[repository.DimsRow] = dataclasses.field(default_factory=list)


_BATCHES: dict[int, _Batch] = {}


def _batch(conn: Any) -> _Batch:
    return _BATCHES.setdefault(id(conn), _Batch())


def _deferring(conn: Any) -> _Batch | None:
    batch = _BATCHES.get(id(conn))
    return batch if batch is not None and batch.deferring else None


def mark_dirty(conn: Any, ticket_id: uuid.UUID) -> None:
    _batch(conn).dirty.add(ticket_id)


async def begin_batch(conn: Any) -> None:
    """A fold transaction starts on ``conn``: what a failed one left pending is forgotten (it
    rolled back)."""
    _BATCHES[id(conn)] = _Batch(deferring=True)


def discard_batch(conn: Any) -> None:
    """Forget what a transaction on ``conn`` collected (it ended without ``end_batch``)."""
    _BATCHES.pop(id(conn), None)


async def end_batch(conn: Any) -> None:
    """Write the batch's customer dimensions, its ``sla.*`` events' facts and targets and its
    ticket facts (one statement each), and re-fold every ticket the transaction recorded a new
    fact of (before it commits)."""
    batch = _BATCHES.pop(id(conn), None)
    if batch is None:
        return
    await _write_dims(conn, batch)
    dirty = set(batch.dirty)
    if batch.sla:
        dirty |= await _record_sla(conn, batch.sla)
    if batch.facts:
        dirty |= await repository.record_ticket_facts(conn, sorted(batch.facts, key=lambda r: (r[0], r[1])))
    if dirty:
        await refold_many(conn, dirty)


async def _write_dims(conn: Any, batch: _Batch) -> None:
    """The customer dimensions collected so far (a reader of ``customer_dims`` calls this first)."""
    rows, batch.dims = batch.dims, []
    for part in rounds(rows, key=lambda r: r[0]):
        await repository.upsert_customer_dims_many(conn, part)


async def _flush_dims(conn: Any) -> None:
    batch = _deferring(conn)
    if batch is not None:
        await _write_dims(conn, batch)


async def _record_sla(conn: Any, pending: list[tuple[uuid.UUID, str, list[repository.FactRow]]]) -> set[uuid.UUID]:
    """``handle_sla_event``'s writes for a batch of events: their facts in one statement, and
    the row of every target that got a new one, folded from all its events, in another; the
    tickets to re-fold."""
    # in (ticket, key) order, as the ticket facts: transactions take the rows' locks in one order
    rows = sorted(((ticket_id, *row) for ticket_id, _, event_rows in pending for row in event_rows),
                  key=lambda r: (r[0], r[1]))
    new_keys, recorded = await repository.record_sla_facts_many(conn, rows, sorted({t for t, _, _ in pending}))
    changed = sorted({(ticket_id, metric) for ticket_id, metric, event_rows in pending
                      if any((ticket_id, r[0]) in new_keys for r in event_rows)})
    targets_rows = []
    for ticket_id, metric in changed:
        states = [facts.from_body(kind, body) for kind, body in recorded.get((ticket_id, metric), ())]
        row = targets.target_row(s for s in states if isinstance(s, facts.SlaState))
        if row is not None:
            targets_rows.append((ticket_id, metric, row))
    if targets_rows:
        await repository.store_sla_targets(conn, targets_rows)
    return {ticket_id for ticket_id, _ in changed}


async def refold(conn: Any, ticket_id: uuid.UUID) -> None:
    """Fold one ticket from all its facts (``refold_many`` of one)."""
    await refold_many(conn, {ticket_id})


async def refold_many(conn: Any, ticket_ids: Any) -> None:
    """Fold tickets from all their facts and move the rollups from their stored contributions to
    the new ones: lock (and create) their ticket_metrics rows in id order, then load every fact
    and the customers' and calendars' context in one statement each, fold in Python, and write
    the sum of all deltas (hourly, daily, SLA) and the rows with one statement each. The rows are
    locked before the facts are read, so a fold that waited for another transaction's lock sees
    that transaction's facts; a fold depends only on the facts, never on their arrival order."""
    ids = sorted(ticket_ids)
    stored = await repository.lock_tickets(conn, ids)
    histories = await repository.load_histories(conn, ids)
    states: dict[uuid.UUID, Any] = {}
    for tid in ids:
        history = [facts.from_body(kind, body) for kind, body in histories.get(tid, ())]
        states[tid] = (history, ticket_state(history))
    customer_ids = sorted({uuid.UUID(st.customer_id) for _, st in states.values() if st.customer_id is not None})
    keys = sorted({k for _, st in states.values() for k in calendars.keys_for(st.dims.team_id)})
    customers, versions = await repository.fold_contexts(conn, customer_ids, keys)
    total = DeltaSum()
    rows: list[dict[str, Any]] = []
    for tid in ids:
        history, state = states[tid]
        metric_facts = [f for f in history if facts.kind_of(f) in facts.METRIC_KINDS]
        created = next((f for f in metric_facts if isinstance(f, rules.Created)), None)
        customer = None if state.customer_id is None else customers.get(uuid.UUID(state.customer_id))
        tier, organization = state.ticket_tier, None
        if customer is not None:
            tier = tier if tier is not None else customer["tier"]
            organization = None if customer["organization_id"] is None else str(customer["organization_id"])
        dims = dataclasses.replace(state.dims, tier=tier, organization_id=organization)
        calendar_id, calendar = await calendars.calendar_for(conn, dims.team_id, versions)
        metrics = rules.fold(metric_facts, calendar=calendar) if metric_facts else None
        clock = targets.sla_clock(f for f in history if isinstance(f, facts.SlaState))
        new = contributions(
            created_at=None if created is None else created.at, metrics=metrics, dims=dims,
            policies=() if metrics is None else cycle_policies(metrics, state.targets), failures=state.failures,
            linked=state.customer_id is not None, with_sla=bool(state.targets),
            assigned=dims.assignee_id is not None,
            sla_clock=clock,
        )
        total.add(delta(Contributions.from_json(stored.get(tid)), new))
        row = ticket_row(
            state_number=state.number, created=created, metrics=metrics, dims=dims, customer_id=state.customer_id,
            calendar_id=calendar_id, contributions=new, event_at=state.newest,
        )
        # the instants the open_rollups clocks were counted from (the board counts the current
        # hour's part on these columns), none once the ticket is closed
        row["sla_overdue_at"], row["sla_at_risk_at"] = clock if new.open else (None, None)
        row["ticket_id"] = tid
        rows.append(row)
    await repository.write_folds(conn, total.hourly(), total.daily(), total.sla_rows(), rows,
                                 open_rows=total.open_rows())


def ticket_row(*, state_number: int | None, created: rules.Created | None, metrics: rules.TicketMetrics | None,
               dims: Dimensions, customer_id: str | None, calendar_id: uuid.UUID | None, contributions: Contributions,
               event_at: Any) -> dict[str, Any]:
    """The ticket_metrics values of a fold (pure). Without a calendar, business minutes are the
    calendar minutes (24x7), as in the rollups."""
    values: dict[str, Any] = dict(rules.metric_values(metrics)) if metrics is not None else {}
    for name in list(values):
        if name.endswith("_business_minutes") and values[name] is None:
            values[name] = values.get(name.replace("_business_minutes", "_minutes"))
    values.update(
        number=state_number, created_at=None if created is None else created.at,
        first_reply_at=None if metrics is None else metrics.first_reply_at,
        resolved_at=None if metrics is None else metrics.resolved_at,
        team_id=None if dims.team_id is None else uuid.UUID(dims.team_id), assignee_id=dims.assignee_id,
        channel=dims.channel, ticket_type=dims.ticket_type, priority=dims.priority,
        customer_id=None if customer_id is None else uuid.UUID(customer_id), customer_tier=dims.tier,
        organization_id=None if dims.organization_id is None else uuid.UUID(dims.organization_id), brand=dims.brand,
        tags=list(dims.tags), calendar_id=calendar_id, contributions=contributions.to_json(), event_at=event_at,
    )
    for name in ("next_replies", "reopens", "replies", "assignee_hops", "team_hops", "sla_achieved", "sla_breached"):
        values[name] = values.get(name) or 0
    for name in ("resolved", "one_touch", "first_contact", "merged"):
        values[name] = bool(values.get(name))
    return values


# --------------------------------------------------------------------------- SLA targets


async def handle_sla_event(conn: Any, event: Any) -> None:
    """Record the event; if it is new, re-fold the target's row from all its events (order-
    tolerant, ``targets.target_row``) and the ticket: applied gives the policy of later outcomes,
    breached and fulfilled are outcomes, and every one of them may move the instants the ticket
    becomes overdue or at risk (``targets.sla_clock``). In a fold transaction the batch's events
    are recorded and their targets written together by ``end_batch`` (``_record_sla``)."""
    pairs = facts.ticket_facts(event)
    ticket_id, metric = event.data.ticket_id, event.data.metric
    rows = [(key, facts.kind_of(fact), fact.at, facts.to_body(fact)) for key, fact in pairs]
    batch = _deferring(conn)
    if batch is not None:  # in a fold transaction: ``end_batch`` records the batch's together
        batch.sla.append((ticket_id, metric, rows))
        ops.folded(event.type, event.time)
        return
    recorded = await repository.record_sla_facts(conn, ticket_id, metric, rows)
    if recorded is not None:
        states = [facts.from_body(r["kind"], r["body"]) for r in recorded]
        row = targets.target_row(s for s in states if isinstance(s, facts.SlaState))
        if row is not None:
            await repository.store_sla_target(conn, ticket_id=ticket_id, metric=metric, row=row)
        mark_dirty(conn, ticket_id)
    ops.folded(event.type, event.time)


async def handle_team_calendar(conn: Any, event: Any) -> None:
    """Project the calendar (newest version wins); tickets folded afterwards count in it."""
    d = event.data
    await repository.upsert_calendar(conn, team_key=calendars.team_key(d.team_id), calendar_id=d.calendar_id,
                                     calendar=d.calendar, version=d.version)
    ops.folded(event.type, event.time)


# --------------------------------------------------------------------------- customers, surveys, deliveries


async def handle_customer_created(conn: Any, event: Any) -> None:
    d = event.data
    fields = {"organization_id"} | ({"tier"} if "tier" in (d.model_extra or {}) else set())
    await _customer_dims(conn, customer_id=d.customer_id, event_at=d.created_at, tier=(d.model_extra or {}).get("tier"),
                         organization_id=d.organization_id, fields=frozenset(fields))
    ops.folded(event.type, event.time)


async def _customer_dims(conn: Any, *, customer_id: uuid.UUID, event_at: Any, tier: str | None,
                         organization_id: uuid.UUID | None, fields: frozenset[str]) -> None:
    """``repository.upsert_customer_dims``, at the end of a fold transaction (``end_batch``)."""
    batch = _deferring(conn)
    if batch is None:
        await repository.upsert_customer_dims(conn, customer_id=customer_id, event_at=event_at, tier=tier,
                                              organization_id=organization_id, fields=fields)
        return
    batch.dims.append((customer_id, tier, organization_id, event_at, "tier" in fields, "organization_id" in fields))


async def handle_customer_updated(conn: Any, event: Any) -> None:
    """``tier`` is the customer's current tier on every update; ``organization_id`` counts when
    the event carries it."""
    d = event.data
    fields = {"tier"}
    if "organization_id" in d.model_fields_set or "organization_id" in d.changes:
        fields.add("organization_id")
    await _customer_dims(conn, customer_id=d.customer_id, event_at=d.updated_at, tier=d.tier,
                         organization_id=d.organization_id, fields=frozenset(fields))
    ops.folded(event.type, event.time)


async def handle_customer_merged(conn: Any, event: Any) -> None:
    d = event.data
    await _flush_dims(conn)
    await repository.copy_customer_dims(conn, survivor_id=d.survivor_id, merged_id=d.merged_id, event_at=d.at)
    ops.folded(event.type, event.time)


async def _customer_rollup(conn: Any, customer_id: uuid.UUID, at: Any, amounts: dict[str, float],
                           extra_pairs: tuple[tuple[str, str], ...] = ()) -> None:
    """Add figures that belong to no ticket: under ``all``, the customer's tier and organisation
    as known now, and ``extra_pairs``."""
    pairs = [("all", "")]
    await _flush_dims(conn)
    row = await repository.customer_dims(conn, customer_id) if customer_id is not None else None
    if row is not None:
        if row["tier"]:
            pairs.append(("tier", row["tier"]))
        if row["organization_id"] is not None:
            pairs.append(("organization", str(row["organization_id"])))
    pairs.extend(extra_pairs)
    await repository.apply_delta(conn, delta(Contributions(), Contributions(
        pairs=tuple(pairs), metric={hour(at): amounts})))


async def handle_survey_answered(conn: Any, event: Any) -> None:
    """About a ticket: a fact of the ticket. About the relationship (no ticket): counted once per
    survey under ``all`` and the customer's tier and organisation; the survey's key is kept in
    ``ticket_history`` under the customer's id (a customer id is never a ticket id)."""
    d = event.data
    if d.ticket_id is not None:
        await fold_ticket_event(conn, event)
        return
    value = d.rating if d.kind == "csat" else d.score
    if value is not None:
        fact = rules.SurveyAnswer(at=d.at, kind=d.kind, value=value)
        row = (f"customer-survey:{d.survey_id}", "survey", fact.at, facts.to_body(fact))
        if await repository.record_facts(conn, d.customer_id, [row]):
            await _customer_rollup(conn, d.customer_id, d.at, survey_amounts(d.kind, value))
    ops.folded(event.type, event.time)


async def handle_delivery_failed(conn: Any, event: Any) -> None:
    """Counted once per delivery: with the ticket's dimensions when it names one (a fact of the
    ticket, so it follows the ticket's team), else under ``all`` and its channel."""
    d = event.data
    if not await repository.insert_delivery_failure(conn, delivery_id=d.delivery_id, ticket_id=d.ticket_id,
                                                    channel=d.channel, kind=d.kind, at=d.at):
        ops.folded(event.type, event.time)
        return
    if d.ticket_id is not None:
        await fold_ticket_event(conn, event)
        return
    await repository.apply_delta(conn, delta(Contributions(), Contributions(
        pairs=(("all", ""), ("channel", d.channel)), metric={hour(d.at): {"delivery_failures": 1}})))
    ops.folded(event.type, event.time)


def _deflection(deflected: bool, channel: str, at: Any) -> Contributions:
    if not deflected:
        return Contributions()
    return Contributions(pairs=(("all", ""), ("channel", channel)), metric={hour(at): {"deflections": 1}})


async def handle_suggestion_outcome(conn: Any, event: Any) -> None:
    """A knowledge-base suggestion's outcome (kb-svc): a deflected one counts once in
    ``deflections`` at the hour it was decided, under ``all`` and its channel (``web``,
    ``agent``, ...). A later outcome for the same suggestion (kb-svc's correction when a ticket
    turned up late) replaces the earlier one; a replay changes nothing."""
    d = event.data
    changed, previous = await repository.record_suggestion_outcome(
        conn, suggestion_id=d.suggestion_id, deflected=d.deflected, channel=d.channel, at=d.at)
    if changed:
        old = Contributions() if previous is None else _deflection(previous["deflected"], previous["channel"],
                                                                   previous["at"])
        await repository.apply_delta(conn, delta(old, _deflection(d.deflected, d.channel, d.at)))
    ops.folded(event.type, event.time)


HANDLERS: dict[str, Handler] = {
    "ticket.created": fold_ticket_event,
    "ticket.updated": fold_ticket_event,
    "ticket.status_changed": fold_ticket_event,
    "ticket.assigned": fold_ticket_event,
    "ticket.message_added": fold_ticket_event,
    "ticket.merged": fold_ticket_event,
    "ticket.customer_linked": fold_ticket_event,
    "survey.answered": handle_survey_answered,
    "sla.applied": handle_sla_event,
    "sla.warning": handle_sla_event,
    "sla.breached": handle_sla_event,
    "sla.paused": handle_sla_event,
    "sla.resumed": handle_sla_event,
    "sla.fulfilled": handle_sla_event,
    "sla.cancelled": handle_sla_event,
    "sla.team_calendar_changed": handle_team_calendar,
    "customer.created": handle_customer_created,
    "customer.updated": handle_customer_updated,
    "customer.merged": handle_customer_merged,
    "delivery.failed": handle_delivery_failed,
    "kb.suggestion_outcome": handle_suggestion_outcome,
}
"""Every event type the read model folds; each handler is ``async (conn, event) -> None`` and
idempotent on its own (natural keys, versions), without the inbox."""
