"""The metric read model's fold on the real database: ``readmodel.handlers.HANDLERS`` called with
contract events on the consumer's kind of connection. Every arrival order gives the same ticket
row and rollups, redeliveries and re-publications change nothing, late events fix figures
without double counting, and a reassignment moves a ticket's figures to its new team. The last
test goes through the real consumer: events published on four topics (tickets, customers, SLA,
deliveries) reach the read model next to the older kpis tables (one event, both handlers, one
transaction), and a duplicate counts once."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from analytics_svc.readmodel.handlers import HANDLERS, end_batch
from helpdesk_common import events
from helpdesk_common.testing import produce, wait_for

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
M = timedelta(minutes=1)
TEAM_X, TEAM_Y = uuid.uuid4(), uuid.uuid4()

# --------------------------------------------------------------------------- events


def created(tid, *, at=T0, team=TEAM_X, assignee=None, tags=("退款", "vip"), customer=None, tier=None, brand="acme"):
    return events.TicketCreated(source="ticket-svc", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="退款 refund", status="new", priority="normal", type="question", channel="email",
        tags=list(tags), requester=events.Requester(email="a@b.co"), created_by="channel:k", created_at=at,
        number=7, team_id=team, assignee_id=assignee, customer_id=customer, customer_tier=tier,
        custom_fields={"brand": brand} if brand else {}))


def status(tid, to, at, version, frm="open"):
    return events.TicketStatusChanged(source="ticket-svc", subject=str(tid), data=events.TicketStatusChangedData(
        ticket_id=tid, from_status=frm, to_status=to, changed_at=at, version=version))


def message(tid, author, at, public=True, mid=None):
    return events.TicketMessageAdded(source="ticket-svc", subject=str(tid), data=events.TicketMessageAddedData(
        ticket_id=tid, message_id=mid or uuid.uuid4(), author_kind=author, public=public, created_at=at))


def assigned(tid, at, assignee, team):
    return events.TicketAssigned(source="ticket-svc", subject=str(tid), data=events.TicketAssignedData(
        ticket_id=tid, assignee_id=assignee, team_id=team, reason="manual", assigned_at=at))


def updated(tid, version, **changes):
    return events.TicketUpdated(source="ticket-svc", subject=str(tid), data=events.TicketUpdatedData(
        ticket_id=tid, version=version, changes={k: {"before": b, "after": a} for k, (b, a) in changes.items()}))


def linked(tid, customer):
    return events.TicketCustomerLinked(source="customer-svc", subject=str(tid), data=events.TicketCustomerLinkedData(
        ticket_id=tid, customer_id=customer))


def merged(tid, target):
    return events.TicketMerged(source="ticket-svc", subject=str(tid), time=T0 + 30 * M,
                               data=events.TicketMergedData(ticket_id=tid, target_ticket_id=target, moved_messages=1))


def sla_applied(tid, metric, at, policy="gold", minutes=60):
    return events.SlaApplied(source="sla-svc", subject=str(tid), time=at, data=events.SlaAppliedData(
        ticket_id=tid, metric=metric, policy=policy, target_minutes=minutes, started_at=at,
        due_at=at + minutes * M))


def sla_fulfilled(tid, metric, at, breached=False):
    return events.SlaFulfilled(source="sla-svc", subject=str(tid), time=at, data=events.SlaFulfilledData(
        ticket_id=tid, metric=metric, fulfilled_at=at, breached=breached))


def sla_breached(tid, metric, at, policy="gold"):
    return events.SlaBreached(source="sla-svc", subject=str(tid), time=at, data=events.SlaAlertData(
        ticket_id=tid, metric=metric, due_at=at, fire_at=at, policy=policy, colour="breached"))


def answered(tid, rating, at, customer=None, survey=None, kind="csat", score=None):
    sid = survey or uuid.uuid4()
    return events.SurveyAnswered(source="customer-svc", subject=str(sid), data=events.SurveyAnsweredData(
        survey_id=sid, kind=kind, customer_id=customer or uuid.uuid4(), ticket_id=tid, rating=rating, score=score,
        comment="很好 good", at=at))


def delivery_failed(tid, at, delivery=None, channel="email"):
    return events.DeliveryFailed(source="notify-svc", subject=str(delivery or tid), data=events.DeliveryStatusData(
        delivery_id=delivery or uuid.uuid4(), kind="reply", channel=channel, status="failed", attempts=5,
        ticket_id=tid, at=at))


def republished(event):
    """The same event re-published from an outbox: a new envelope id, same content."""
    return event.model_copy(update={"id": uuid.uuid4()})


# --------------------------------------------------------------------------- helpers


async def fold(raw, *evts):
    for e in evts:
        async with raw.transaction():
            await HANDLERS[e.type](raw, e)
            await end_batch(raw)


async def reset(raw):
    await raw.execute("TRUNCATE ticket_history, ticket_metrics, metric_rollups, metric_rollups_daily, sla_rollups, "
                      "sla_targets, delivery_failures, customer_dims, business_calendars")




async def ticket_row(raw, tid):
    row = await raw.fetchrow("SELECT * FROM ticket_metrics WHERE ticket_id = $1", tid)
    return None if row is None else {k: v for k, v in row.items() if k != "folded_at"}


async def rollups(raw):
    """Every rollup row with a non-zero figure (rows back at zero may stay: same figures)."""
    rows = await raw.fetch("SELECT * FROM metric_rollups ORDER BY dim, bucket, dim_value")
    out = {}
    for r in rows:
        values = {k: v for k, v in r.items() if k not in ("dim", "bucket", "dim_value") and v}
        for h in ("first_reply_hist", "resolution_hist"):
            if values.get(h) is not None and not any(values[h]):
                del values[h]
        if values:
            out[(r["dim"], r["bucket"], r["dim_value"])] = values
    sla = {(r["dim"], r["bucket"], r["dim_value"], r["policy"], r["metric"]): (r["achieved"], r["breached"])
           for r in await raw.fetch("SELECT * FROM sla_rollups") if r["achieved"] or r["breached"]}
    return out, sla


def rollup(state, dim, value, bucket):
    return state[0].get((dim, bucket.replace(minute=0, second=0, microsecond=0), value), {})


def history(tid):
    """A small ticket: created, first reply, customer answers, reply and solve, CSAT, SLA."""
    return [
        created(tid),
        sla_applied(tid, "first_response", T0),
        message(tid, "agent", T0 + 20 * M),
        status(tid, "pending", T0 + 21 * M, 2, frm="new"),
        sla_fulfilled(tid, "first_response", T0 + 20 * M),
        message(tid, "customer", T0 + 90 * M),
        status(tid, "open", T0 + 90 * M, 3, frm="pending"),
        message(tid, "agent", T0 + 100 * M),
        status(tid, "solved", T0 + 101 * M, 4),
        answered(tid, 5, T0 + 3 * 60 * M),
    ]


# --------------------------------------------------------------------------- tests


async def test_a_ticket_folds_into_its_row_and_rollups(raw):
    tid = uuid.uuid4()
    await fold(raw, *history(tid))
    row = await ticket_row(raw, tid)
    assert row["created_at"] == T0 and row["status"] == "solved" and row["resolved"]
    assert row["first_reply_at"] == T0 + 20 * M and row["resolved_at"] == T0 + 101 * M
    assert row["first_reply_minutes"] == 20 and row["first_reply_business_minutes"] == 20  # no calendar: 24x7
    assert row["full_resolution_minutes"] == 101 and row["next_replies"] == 1 and row["replies"] == 2
    assert row["team_id"] == TEAM_X and row["channel"] == "email" and row["brand"] == "acme"
    assert sorted(row["tags"]) == ["vip", "退款"] and row["csat"] == 5 and row["sla_achieved"] == 1
    assert row["event_at"] == T0 + 3 * 60 * M and row["number"] == 7
    state = await rollups(raw)
    for dim, value in (("all", ""), ("team", str(TEAM_X)), ("channel", "email"), ("tag", "退款"), ("tag", "vip"),
                       ("brand", "acme"), ("type", "question"), ("priority", "normal")):
        assert rollup(state, dim, value, T0)["created"] == 1
        assert rollup(state, dim, value, T0)["first_reply_n"] == 1
        assert rollup(state, dim, value, T0)["first_reply_sum"] == 20
        assert rollup(state, dim, value, T0)["sla_n"] == 1 and rollup(state, dim, value, T0)["sla_achieved"] == 1
        solved = rollup(state, dim, value, T0 + 101 * M)
        assert solved["solved"] == 1 and solved["resolution_sum"] == 101 and solved["next_reply_n"] == 1
        assert solved["next_reply_sum"] == 10 and solved["replies"] == 2 and "one_touch" not in solved
        assert solved["agent_wait_sum"] == 69
        assert rollup(state, dim, value, T0 + 180 * M) == {"csat_n": 1, "csat_satisfied": 1, "csat_rating_sum": 5}
    assert ("agent", T0.replace(minute=0), "") not in state[0]  # no assignee: no agent row
    assert state[1][("team", T0.replace(minute=0), str(TEAM_X), "gold", "first_response")] == (1, 0)


async def test_every_arrival_order_gives_the_same_row_and_rollups(raw):
    tid = uuid.uuid4()
    evts = history(tid)
    await fold(raw, *evts)
    expected_row, expected = await ticket_row(raw, tid), await rollups(raw)
    rng = random.Random(13)
    orders = [list(reversed(evts))] + [rng.sample(evts, len(evts)) for _ in range(8)]
    for order in orders:
        await reset(raw)
        await fold(raw, *order)
        row = await ticket_row(raw, tid)
        assert row == expected_row
        assert await rollups(raw) == expected


async def test_all_permutations_of_a_short_history(raw):
    tid = uuid.uuid4()
    evts = [created(tid), message(tid, "agent", T0 + 5 * M), status(tid, "solved", T0 + 6 * M, 2, frm="new"),
            assigned(tid, T0 + M, "a1", TEAM_Y)]
    results = set()
    for order in itertools.permutations(evts):
        await reset(raw)
        await fold(raw, *order)
        row = await ticket_row(raw, tid)
        results.add((repr(sorted(row.items())), repr(sorted((await rollups(raw))[0].items()))))
    assert len(results) == 1


async def test_redelivery_and_republication_change_nothing(raw):
    tid = uuid.uuid4()
    evts = history(tid)
    await fold(raw, *evts)
    row, state = await ticket_row(raw, tid), await rollups(raw)
    await fold(raw, *evts, *(republished(e) for e in evts))
    assert await ticket_row(raw, tid) == row
    assert await rollups(raw) == state


async def test_a_late_reply_fixes_the_first_reply_without_double_counting(raw):
    tid = uuid.uuid4()
    await fold(raw, created(tid), message(tid, "agent", T0 + 50 * M))
    # attributed to the hour of the reply (10:20)
    assert rollup(await rollups(raw), "all", "", T0 + 50 * M)["first_reply_sum"] == 50
    # an earlier reply arrives late (another partition, a retry): the first reply was at 09:40
    await fold(raw, message(tid, "agent", T0 + 10 * M))
    state = await rollups(raw)
    assert rollup(state, "all", "", T0 + 50 * M) == {}
    assert rollup(state, "all", "", T0)["first_reply_n"] == 1
    assert rollup(state, "all", "", T0)["first_reply_sum"] == 10
    hist = rollup(state, "all", "", T0)["first_reply_hist"]
    assert sum(hist) == 1 and hist[8] == 1  # bin [10, 12)
    assert (await ticket_row(raw, tid))["first_reply_minutes"] == 10


async def test_reassignment_moves_the_figures_from_team_x_to_team_y(raw):
    tid = uuid.uuid4()
    await fold(raw, created(tid, assignee="a1"), message(tid, "agent", T0 + 10 * M),
               status(tid, "solved", T0 + 11 * M, 2, frm="new"))
    state = await rollups(raw)
    assert rollup(state, "team", str(TEAM_X), T0)["solved"] == 1
    assert rollup(state, "agent", "a1", T0)["created"] == 1
    await fold(raw, assigned(tid, T0 + 20 * M, "b2", TEAM_Y))
    state = await rollups(raw)
    assert rollup(state, "team", str(TEAM_X), T0) == {}
    assert rollup(state, "agent", "a1", T0) == {}
    moved = rollup(state, "team", str(TEAM_Y), T0)
    assert moved["created"] == 1 and moved["solved"] == 1 and moved["first_reply_sum"] == 10
    assert moved["team_hops"] == 1 and moved["assignee_hops"] == 1
    assert rollup(state, "agent", "b2", T0)["solved"] == 1
    assert rollup(state, "all", "", T0)["created"] == 1


async def test_an_update_before_the_creation_keeps_the_newer_dimensions(raw):
    tid, customer = uuid.uuid4(), uuid.uuid4()
    await fold(raw, updated(tid, 5, priority=("normal", "urgent"), tags=(["a"], ["b", "售后"]),
                            custom_fields=({"brand": "acme"}, {"brand": "小米"})))
    await fold(raw, created(tid), linked(tid, customer))
    row = await ticket_row(raw, tid)
    assert row["priority"] == "urgent" and row["tags"] == ["b", "售后"] and row["brand"] == "小米"
    assert row["customer_id"] == customer
    state = await rollups(raw)
    assert rollup(state, "priority", "urgent", T0)["created"] == 1
    assert rollup(state, "priority", "normal", T0) == {}
    assert rollup(state, "tag", "售后", T0)["created"] == 1 and rollup(state, "tag", "退款", T0) == {}


async def test_tier_and_organization_come_from_the_customer(raw):
    tid, customer, org = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await fold(raw, events.CustomerUpdated(source="customer-svc", subject=str(customer),
                                           data=events.CustomerUpdatedData(
                                               customer_id=customer, version=2, tier="金牌", changes={},
                                               updated_at=T0 - M, organization_id=org)))
    await fold(raw, created(tid, customer=customer))
    row = await ticket_row(raw, tid)
    assert row["customer_tier"] == "金牌" and row["organization_id"] == org
    state = await rollups(raw)
    assert rollup(state, "tier", "金牌", T0)["created"] == 1
    assert rollup(state, "organization", str(org), T0)["created"] == 1
    # the ticket's own tier (from ticket.created) wins over the customer's
    other = uuid.uuid4()
    await fold(raw, created(other, customer=customer, tier="gold"))
    assert (await ticket_row(raw, other))["customer_tier"] == "gold"


async def test_a_merged_ticket_is_never_resolved(raw):
    tid = uuid.uuid4()
    await fold(raw, created(tid), merged(tid, uuid.uuid4()), status(tid, "closed", T0 + 31 * M, 2, frm="new"))
    row = await ticket_row(raw, tid)
    assert row["merged"] and not row["resolved"] and row["resolved_at"] is None
    state = await rollups(raw)
    assert rollup(state, "all", "", T0) == {"created": 1}


async def test_a_breach_and_its_late_fulfilment_are_one_cycle_under_the_policy(raw):
    tid = uuid.uuid4()
    await fold(raw, created(tid), sla_breached(tid, "first_response", T0 + 60 * M, policy="铂金"),
               sla_fulfilled(tid, "first_response", T0 + 70 * M, breached=True),
               sla_applied(tid, "first_response", T0, policy="铂金"))
    state = await rollups(raw)
    assert rollup(state, "all", "", T0 + 60 * M)["sla_n"] == 1
    assert "sla_achieved" not in rollup(state, "all", "", T0 + 60 * M)
    assert state[1] == {(dim, (T0 + 60 * M).replace(minute=0), value, "铂金", "first_response"): (0, 1)
                        for dim, value in (("all", ""), ("team", str(TEAM_X)), ("channel", "email"),
                                           ("type", "question"), ("priority", "normal"), ("brand", "acme"),
                                           ("tag", "vip"), ("tag", "退款"))}
    target = await raw.fetchrow("SELECT * FROM sla_targets WHERE ticket_id = $1", tid)
    # sla.applied came last but is the oldest event: it fills the policy, the breach's colour stays
    assert target["policy"] == "铂金" and target["colour"] == "breached" and target["target_minutes"] == 60


async def test_surveys_without_a_ticket_and_delivery_failures_count_once(raw):
    customer = uuid.uuid4()
    nps = answered(None, None, T0, customer=customer, kind="nps", score=10)
    failure = delivery_failed(None, T0 + M)
    await fold(raw, nps, republished(nps), failure, republished(failure))
    state = await rollups(raw)
    assert rollup(state, "all", "", T0) == {"nps_n": 1, "nps_promoters": 1, "delivery_failures": 1}
    assert rollup(state, "channel", "email", T0) == {"delivery_failures": 1}
    assert await raw.fetchval("SELECT count(*) FROM ticket_metrics") == 0  # no ticket row for a customer
    tid = uuid.uuid4()
    about_ticket = delivery_failed(tid, T0 + 2 * M)
    await fold(raw, about_ticket, created(tid), republished(about_ticket))
    state = await rollups(raw)
    assert rollup(state, "team", str(TEAM_X), T0)["delivery_failures"] == 1
    assert rollup(state, "all", "", T0)["delivery_failures"] == 2


@pytest.mark.parametrize("seed", [1, 2])
async def test_many_tickets_in_any_interleaving_sum_up(raw, seed):
    rng = random.Random(seed)
    tickets = [uuid.uuid4() for _ in range(5)]
    evts = [e for t in tickets for e in history(t)]
    await fold(raw, *rng.sample(evts, len(evts)))
    state = await rollups(raw)
    assert rollup(state, "all", "", T0)["created"] == 5
    assert rollup(state, "all", "", T0 + 101 * M)["solved"] == 5
    assert rollup(state, "all", "", T0 + 101 * M)["resolution_sum"] == 5 * 101

async def fold_batches(raw, evts, size):
    """As the consumer does: ``size`` events per transaction, each ticket re-folded once at its end."""
    for i in range(0, len(evts), size):
        async with raw.transaction():
            for e in evts[i:i + size]:
                await HANDLERS[e.type](raw, e)
            await end_batch(raw)


async def daily_rollups(raw):
    rows = await raw.fetch("SELECT * FROM metric_rollups_daily ORDER BY dim, bucket, dim_value")
    return {(r["dim"], r["bucket"], r["dim_value"]): {k: v for k, v in r.items()
                                                      if k not in ("dim", "bucket", "dim_value") and v}
            for r in rows}


async def test_a_batch_folds_like_one_event_per_transaction_and_fills_the_daily_table(raw):
    """Many tickets' events in batches (with redeliveries inside a batch and across batches) give
    the same rows and rollups as one event per transaction; the daily table holds the hourly sums
    per UTC day; ``linked`` and ``with_sla`` count at creation."""
    rng = random.Random(7)
    tickets = [uuid.uuid4() for _ in range(6)]
    customer = uuid.uuid4()
    evts = [e for t in tickets for e in history(t)] + [linked(tickets[0], customer), linked(tickets[1], customer)]
    evts.append(created(tickets[5], at=T0 + 15 * 60 * M))  # ticket 5's creation is also a day later
    evts = [e for e in evts if not (e.type == "ticket.created" and e.data.ticket_id == tickets[5]
                                    and e.data.created_at == T0)]
    order = rng.sample(evts, len(evts))
    await reset(raw)
    await fold(raw, *order)
    expected_rows = [await ticket_row(raw, t) for t in tickets]
    expected = await rollups(raw)
    assert rollup(expected, "all", "", T0)["linked"] == 2 and rollup(expected, "all", "", T0)["with_sla"] == 5
    for size in (3, 500):
        await reset(raw)
        replayed = order[:10]
        await fold_batches(raw, order + replayed + [republished(e) for e in order[5:12]], size)
        assert [await ticket_row(raw, t) for t in tickets] == expected_rows
        assert await rollups(raw) == expected
        by_day: dict = {}
        for (dim, bucket, value), cols in expected[0].items():
            day = by_day.setdefault((dim, bucket.replace(hour=0), value), {})
            for k, v in cols.items():
                if k.endswith("_hist"):
                    day[k] = [a + b for a, b in zip(day.get(k, [0] * len(v)), v, strict=True)]
                else:
                    day[k] = day.get(k, 0) + v
        assert await daily_rollups(raw) == by_day
        assert len({k[1] for k in by_day}) == 2  # two UTC days


async def test_events_from_the_broker_are_folded_once(full, infra, db):
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    tid = uuid.uuid4()
    evts = [created(tid, at=now), message(tid, "agent", now + timedelta(minutes=3)),
            status(tid, "solved", now + timedelta(minutes=4), 2, frm="new"),
            answered(tid, 4, now + timedelta(minutes=30)), delivery_failed(tid, now + timedelta(minutes=5))]
    before = REGISTRY.get_sample_value("analytics_events_folded_total", {"type": "ticket.created"}) or 0.0
    await produce(infra.kafka_bootstrap, full.topics, *evts, republished(evts[0]), evts[1])

    async def folded():
        async with db.connect() as conn:
            row = (await conn.execute(text(
                "SELECT resolved, first_reply_minutes, csat FROM ticket_metrics WHERE ticket_id = :t"),
                {"t": tid})).first()
            failures = await conn.scalar(text(
                "SELECT coalesce(sum(delivery_failures), 0) FROM metric_rollups WHERE dim = 'all'"))
        return row if row is not None and row.resolved and row.csat == 4 and failures == 1 else None

    row = await wait_for(folded)
    assert row.first_reply_minutes == 3
    async with db.connect() as conn:
        totals = (await conn.execute(text(
            "SELECT sum(created) AS created, sum(solved) AS solved, sum(first_reply_n) AS replies, "
            "sum(csat_n) AS csat FROM metric_rollups WHERE dim = 'all'"))).one()
        # the older kpis table still gets its row from the same consumer
        legacy = await conn.scalar(text("SELECT count(*) FROM ticket_facts WHERE ticket_id = :t"), {"t": tid})
    assert (totals.created, totals.solved, totals.replies, totals.csat) == (1, 1, 1, 1)
    assert legacy == 1
    after = REGISTRY.get_sample_value("analytics_events_folded_total", {"type": "ticket.created"}) or 0.0
    assert after - before == 2  # the creation and its re-publication (which inserted nothing)
    age = REGISTRY.get_sample_value("analytics_newest_event_age_seconds")
    assert age is not None and age >= 0


def calendar_changed(team, version, *, holidays=("2026-12-02",), calendar_id=None):
    definition = {"name": "上海 Shanghai", "timezone": "Asia/Shanghai",
                  "weekly_hours": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                  "extra_holidays": list(holidays)}
    return events.SlaTeamCalendarChanged(source="sla-svc", subject=str(team or "default"),
                                         data=events.SlaTeamCalendarData(
                                             team_id=team, calendar_id=calendar_id or uuid.uuid4(),
                                             calendar=definition, version=version, at=T0))


async def test_business_minutes_use_the_team_calendar_else_the_default(raw):
    # docs/metrics.md's worked example: Tue 1 Dec 17:30 Shanghai (09:30 UTC) to Thu 3 Dec 09:30,
    # Wednesday an extra holiday: 2,400 calendar minutes, 60 business minutes
    cal_x = uuid.uuid4()
    await fold(raw, calendar_changed(TEAM_X, 2, calendar_id=cal_x),
               calendar_changed(TEAM_X, 1, holidays=()),  # an older version changes nothing
               calendar_changed(None, 1, holidays=()))
    tid, other = uuid.uuid4(), uuid.uuid4()
    await fold(raw, created(tid), message(tid, "agent", T0 + 2400 * M))
    row = await ticket_row(raw, tid)
    assert row["first_reply_minutes"] == 2400 and row["first_reply_business_minutes"] == 60
    assert row["calendar_id"] == cal_x
    assert rollup(await rollups(raw), "team", str(TEAM_X), T0 + 2400 * M)["first_reply_bsum"] == 60
    # a team without a calendar of its own counts in the default one (no holiday on Wednesday)
    await fold(raw, created(other, team=TEAM_Y), message(other, "agent", T0 + 2400 * M))
    assert (await ticket_row(raw, other))["first_reply_business_minutes"] == 60 + 540


def sla_event(kind, tid, metric, at, **data):
    cls, data_cls, field = {
        "warning": (events.SlaWarning, events.SlaAlertData, None),
        "paused": (events.SlaPaused, events.SlaPausedData, "paused_at"),
        "resumed": (events.SlaResumed, events.SlaResumedData, "resumed_at"),
        "cancelled": (events.SlaCancelled, events.SlaCancelledData, "cancelled_at"),
    }[kind]
    if field:
        data[field] = at
    return cls(source="sla-svc", subject=str(tid), time=at, data=data_cls(ticket_id=tid, metric=metric, **data))


async def test_sla_targets_keep_the_newest_state_in_any_order(raw):
    tid = uuid.uuid4()
    evts = [
        sla_applied(tid, "resolution", T0, policy="金牌", minutes=240),
        sla_event("warning", tid, "resolution", T0 + 180 * M, due_at=T0 + 240 * M, colour="yellow", policy="金牌"),
        sla_event("paused", tid, "resolution", T0 + 190 * M, remaining_seconds=3000),
        sla_event("resumed", tid, "resolution", T0 + 300 * M, due_at=T0 + 350 * M, remaining_seconds=3000),
    ]
    rows = set()
    for order in (evts, list(reversed(evts)), [evts[2], evts[0], evts[3], evts[1]]):
        await reset(raw)
        await fold(raw, *order)
        row = await raw.fetchrow("SELECT policy, target_minutes, started_at, due_at, state, colour, event_at "
                                 "FROM sla_targets WHERE ticket_id = $1 AND metric = 'resolution'", tid)
        rows.add(tuple(row.values()))
    assert rows == {("金牌", 240, T0, T0 + 350 * M, "running", "yellow", T0 + 300 * M)}
    await fold(raw, sla_event("cancelled", tid, "resolution", T0 + 400 * M, reason="merged"))
    assert await raw.fetchval("SELECT state FROM sla_targets WHERE ticket_id = $1", tid) == "cancelled"
    # a new cycle of next_response starts green again
    await fold(raw, sla_breached(tid, "next_response", T0 + 10 * M),
               sla_applied(tid, "next_response", T0 + 20 * M))
    assert tuple(await raw.fetchrow("SELECT state, colour FROM sla_targets WHERE ticket_id = $1 "
                                    "AND metric = 'next_response'", tid)) == ("running", "green")


async def test_a_tier_change_on_the_ticket_and_a_customer_merge_move_dimensions(raw):
    tid, customer, survivor, org = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await fold(raw, created(tid, customer=customer, tier="silver"),
               updated(tid, 3, customer_tier=("silver", "金牌")))
    state = await rollups(raw)
    assert rollup(state, "tier", "金牌", T0)["created"] == 1 and rollup(state, "tier", "silver", T0) == {}
    # the survivor's organisation reaches tickets still pointing at the merged customer when
    # they are folded next
    await fold(raw, events.CustomerUpdated(source="c", subject=str(survivor), data=events.CustomerUpdatedData(
        customer_id=survivor, version=2, tier="vip", changes={}, updated_at=T0, organization_id=org)))
    await fold(raw, events.CustomerMerged(source="c", subject=str(survivor), data=events.CustomerMergedData(
        survivor_id=survivor, merged_id=customer, at=T0 + M)))
    await fold(raw, message(tid, "agent", T0 + 5 * M))
    row = await ticket_row(raw, tid)
    assert row["organization_id"] == org and row["customer_tier"] == "金牌"  # the ticket's own tier wins
    assert rollup(await rollups(raw), "organization", str(org), T0)["created"] == 1


async def test_a_calendar_of_the_same_version_in_another_database_is_not_taken_from_the_cache(raw):
    # a process may fold into several databases (tests, a rebuild's fresh schema): the cache of
    # built calendars must tell two default calendars of version 1 apart
    tid, other = uuid.uuid4(), uuid.uuid4()
    await fold(raw, calendar_changed(None, 1), created(tid, team=None), message(tid, "agent", T0 + 2400 * M))
    assert (await ticket_row(raw, tid))["first_reply_business_minutes"] == 60
    await reset(raw)
    await fold(raw, calendar_changed(None, 1, holidays=()), created(other, team=None),
               message(other, "agent", T0 + 2400 * M))
    assert (await ticket_row(raw, other))["first_reply_business_minutes"] == 60 + 540
