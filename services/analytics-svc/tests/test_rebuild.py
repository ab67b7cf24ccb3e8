"""The rebuild (``analytics_svc.rebuild``) on the real broker and PostgreSQL: a replay of the topics
into a fresh schema, swapped in while the live consumer runs, equals the live read model row by
row and figure for figure, and loses nothing that arrives during it."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpdesk_common import events
from helpdesk_common.business_calendar import CALENDAR_24X7, CalendarIn
from helpdesk_common.db import create_raw_pool
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for

ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
T1, T2 = uuid.uuid4(), uuid.uuid4()
SHANGHAI = CalendarIn(name="上海 工作日", timezone="Asia/Shanghai",
                      weekly_hours={d: [("09:00", "12:00"), ("13:00", "18:00")] for d in ("mon", "tue", "wed", "thu", "fri")})


class Script:
    """Builds events as ticket-svc, sla-svc, customer-svc and notify-svc publish them."""

    def __init__(self, base: datetime) -> None:
        self.base = base
        self.out: list[Any] = []
        self.versions: dict[uuid.UUID, int] = {}

    def at(self, minutes: float) -> datetime:
        return self.base + timedelta(minutes=minutes)

    def _add(self, event: Any) -> Any:
        self.out.append(event)
        return event

    def _v(self, tid: uuid.UUID) -> int:
        self.versions[tid] = self.versions.get(tid, 0) + 1
        return self.versions[tid]

    def calendar(self, team: uuid.UUID | None, cal: CalendarIn, version: int, minute: float) -> None:
        self._add(events.SlaTeamCalendarChanged(
            source="sla-svc", subject="default" if team is None else str(team), time=self.at(minute),
            data=events.SlaTeamCalendarData(team_id=team, calendar_id=None if team is None else uuid.uuid4(),
                                            calendar=cal.model_dump(mode="json"), version=version, at=self.at(minute))))

    def customer(self, cid: uuid.UUID, tier: str, minute: float, version: int = 1) -> None:
        self._add(events.CustomerUpdated(source="customer-svc", subject=str(cid), time=self.at(minute),
                                         data=events.CustomerUpdatedData(
                                             customer_id=cid, version=version, name="王小明", tier=tier,
                                             changes={"tier": {"before": None, "after": tier}},
                                             updated_at=self.at(minute))))

    def created(self, tid: uuid.UUID, minute: float, *, team: uuid.UUID | None, assignee: str | None,
                channel: str = "email", status: str = "new", tags: tuple[str, ...] = (), ticket_type: str = "question",
                customer: uuid.UUID | None = None) -> None:
        self.versions[tid] = 1
        self._add(events.TicketCreated(source="ticket-svc", subject=str(tid), time=self.at(minute),
                                       data=events.TicketCreatedData(
                                           ticket_id=tid, subject="退款 refund", status=status, priority="high",
                                           type=ticket_type, channel=channel, tags=list(tags),
                                           requester=events.Requester(email="a@example.com"), customer_id=customer,
                                           created_by="channel:k", created_at=self.at(minute), number=len(self.out),
                                           team_id=team, assignee_id=assignee,
                                           custom_fields={"brand": "星巴克"})))

    def message(self, tid: uuid.UUID, minute: float, *, agent: bool, first: bool = False) -> None:
        self._add(events.TicketMessageAdded(source="ticket-svc", subject=str(tid), time=self.at(minute),
                                            data=events.TicketMessageAddedData(
                                                ticket_id=tid, message_id=uuid.uuid4(), version=self._v(tid),
                                                author_kind="agent" if agent else "customer",
                                                author_id="a1" if agent else None, public=True,
                                                first_response=first, response=agent, created_at=self.at(minute))))

    def status(self, tid: uuid.UUID, minute: float, before: str, after: str) -> None:
        self._add(events.TicketStatusChanged(source="ticket-svc", subject=str(tid), time=self.at(minute),
                                             data=events.TicketStatusChangedData(
                                                 ticket_id=tid, version=self._v(tid), status=after,
                                                 from_status=before, to_status=after, changed_at=self.at(minute))))

    def assigned(self, tid: uuid.UUID, minute: float, *, team: uuid.UUID, assignee: str, before_team: uuid.UUID,
                 before: str | None) -> None:
        self._add(events.TicketAssigned(source="ticket-svc", subject=str(tid), time=self.at(minute),
                                        data=events.TicketAssignedData(
                                            ticket_id=tid, version=self._v(tid), team_id=team, assignee_id=assignee,
                                            previous_team_id=before_team, previous_assignee_id=before,
                                            reason="manual", assigned_at=self.at(minute))))

    def approval(self, tid: uuid.UUID, minute: float, *, decided_after: float) -> None:
        """An approval step started, approved by a supervisor, and completed."""
        step_id = uuid.uuid4()
        self._add(events.TicketStepStarted(source="ticket-svc", subject=str(tid), time=self.at(minute),
                                           data=events.TicketStepStartedData(
                                               ticket_id=tid, version=self._v(tid), step_id=step_id, step="退款审批",
                                               kind="approval", process_version=1, started_at=self.at(minute))))
        done = self.at(minute + decided_after)
        self._add(events.TicketApprovalDecided(source="ticket-svc", subject=str(tid), time=done,
                                               data=events.TicketApprovalDecidedData(
                                                   ticket_id=tid, version=self._v(tid), step_id=step_id,
                                                   step="退款审批", kind="approval", decision="approve",
                                                   decided_by="u-supervisor", step_status="completed",
                                                   decided_at=done)))
        self._add(events.TicketStepCompleted(source="ticket-svc", subject=str(tid), time=done,
                                             data=events.TicketStepCompletedData(
                                                 ticket_id=tid, version=self._v(tid), step_id=step_id, step="退款审批",
                                                 outcome="approved", completed_at=done)))

    def linked(self, tid: uuid.UUID, cid: uuid.UUID, minute: float) -> None:
        self._add(events.TicketCustomerLinked(source="ticket-svc", subject=str(tid), time=self.at(minute),
                                              data=events.TicketCustomerLinkedData(ticket_id=tid, customer_id=cid)))

    def sla(self, tid: uuid.UUID, minute: float, *, target: int, metric: str = "first_response") -> datetime:
        due = self.at(minute + target)
        self._add(events.SlaApplied(source="sla-svc", subject=str(tid), time=self.at(minute),
                                    data=events.SlaAppliedData(ticket_id=tid, metric=metric, policy="标准",
                                                               target_minutes=target, started_at=self.at(minute),
                                                               due_at=due)))
        return due

    def fulfilled(self, tid: uuid.UUID, minute: float, due: datetime, *, metric: str = "first_response") -> None:
        self._add(events.SlaFulfilled(source="sla-svc", subject=str(tid), time=self.at(minute),
                                      data=events.SlaFulfilledData(ticket_id=tid, metric=metric,
                                                                   fulfilled_at=self.at(minute), due_at=due,
                                                                   breached=self.at(minute) > due)))

    def survey(self, minute: float, *, kind: str, customer: uuid.UUID, ticket: uuid.UUID | None = None,
               rating: int | None = None, score: int | None = None) -> None:
        sid = uuid.uuid4()
        self._add(events.SurveyAnswered(source="customer-svc", subject=str(sid), time=self.at(minute),
                                        data=events.SurveyAnsweredData(survey_id=sid, kind=kind, customer_id=customer,
                                                                       ticket_id=ticket, rating=rating, score=score,
                                                                       comment="很好 good", at=self.at(minute))))

    def delivery_failed(self, tid: uuid.UUID, minute: float) -> None:
        did = uuid.uuid4()
        self._add(events.DeliveryFailed(source="notify-svc", subject=str(did), time=self.at(minute),
                                        data=events.DeliveryStatusData(delivery_id=did, kind="reply", channel="email",
                                                                       status="failed", attempts=3, ticket_id=tid,
                                                                       at=self.at(minute))))


    def suggestion_outcome(self, minute: float, *, deflected: bool, sid: uuid.UUID | None = None) -> uuid.UUID:
        sid = sid or uuid.uuid4()
        self._add(events.KbSuggestionOutcome(source="kb-svc", subject=str(sid), time=self.at(minute),
                                             data=events.KbSuggestionOutcomeData(
                                                 suggestion_id=sid, deflected=deflected, article_ids=[uuid.uuid4()],
                                                 channel="web", at=self.at(minute))))
        return sid


def scripted_history(base: datetime) -> list[Any]:
    """Several tickets' lives: replies, pending, solves, a reopen, a reassignment across teams, SLA
    outcomes (one late), an approval step, CSAT and NPS, a team calendar and a customer tier, a
    failed delivery, knowledge-base suggestions (one deflected, one corrected)."""
    s = Script(base)
    c1, c2 = uuid.uuid4(), uuid.uuid4()
    s.calendar(None, CALENDAR_24X7, 1, 0)
    s.calendar(T1, SHANGHAI, 2, 1)
    s.customer(c1, "gold", 2)
    s.customer(c1, "金牌", 3, version=2)
    t = [uuid.uuid4() for _ in range(6)]
    # t0: answered, solved, rated 5
    s.created(t[0], 10, team=T1, assignee="a1", tags=("退款", "vip"), customer=c1)
    due = s.sla(t[0], 10, target=60)
    s.message(t[0], 25, agent=True, first=True)
    s.fulfilled(t[0], 25, due)
    s.approval(t[0], 26, decided_after=9)
    s.status(t[0], 40, "new", "solved")
    s.survey(50, kind="csat", customer=c1, ticket=t[0], rating=5)
    # t1: reassigned from T2 to T1, answered late, solved, reopened, solved again, rated 2
    s.created(t[1], 20, team=T2, assignee="a2", channel="chat")
    due = s.sla(t[1], 20, target=30)
    s.assigned(t[1], 30, team=T1, assignee="a1", before_team=T2, before="a2")
    s.message(t[1], 70, agent=True, first=True)
    s.fulfilled(t[1], 70, due)
    s.status(t[1], 80, "open", "solved")
    s.message(t[1], 90, agent=False)
    s.status(t[1], 91, "solved", "open")
    s.message(t[1], 100, agent=True)
    s.status(t[1], 110, "open", "solved")
    s.survey(120, kind="csat", customer=c2, ticket=t[1], rating=2)
    # t2: linked to a gold customer later, pending then open, still open
    s.created(t[2], 30, team=T1, assignee=None, channel="wechat")
    s.linked(t[2], c1, 31)
    s.message(t[2], 45, agent=True, first=True)
    s.status(t[2], 46, "new", "pending")
    s.message(t[2], 60, agent=False)
    s.status(t[2], 61, "pending", "open")
    # t3: never answered (SLA running, due soon), a failed reply delivery
    s.created(t[3], 50, team=T2, assignee="a2", channel="email")
    s.sla(t[3], 50, target=24 * 60)
    s.delivery_failed(t[3], 55)
    # knowledge-base suggestions: one deflected; one deflected, then corrected (a ticket after all)
    s.suggestion_outcome(56, deflected=True)
    corrected = s.suggestion_outcome(57, deflected=True)
    s.suggestion_outcome(58, deflected=False, sid=corrected)
    # t4: created solved; t5: created, then assigned from nobody
    s.created(t[4], 70, team=None, assignee=None, status="solved", ticket_type="incident")
    s.created(t[5], 80, team=T2, assignee=None)
    s.assigned(t[5], 85, team=T2, assignee="a3", before_team=T2, before=None)
    # an NPS answer with no ticket
    s.survey(130, kind="nps", customer=c1, score=9)
    return s.out


#: what a fold reads from other entities at fold time (docs/metrics.md, "Rebuild": set up before
#: the tickets that use them in practice, so the live order and the replay's agree on them)
REFERENCE_TYPES = frozenset({"sla.team_calendar_changed", "customer.updated"})


def shuffled_with_duplicates(history: list[Any], seed: int) -> list[Any]:
    """Ticket and survey events out of order (within and across tickets and topics), one event
    delivered twice, one re-published with a new id; calendars and tiers first, as in practice."""
    rng = random.Random(seed)
    reference = [e for e in history if e.type in REFERENCE_TYPES]
    batch = [e for e in history if e.type not in REFERENCE_TYPES]
    rng.shuffle(batch)
    batch.insert(3, batch[7])
    batch.append(batch[5].model_copy(update={"id": uuid.uuid4()}))
    return reference + batch


async def publish_reference_first(infra: Any, full: Any, url: str, batch: list[Any]) -> None:
    """Calendars and tiers folded before the tickets that read them (as they are set up in
    practice), then the rest in the batch's order."""
    reference = [e for e in batch if e.type in REFERENCE_TYPES]
    await produce(infra.kafka_bootstrap, full.topics, *reference)
    await wait_folded(url, reference)
    await produce(infra.kafka_bootstrap, full.topics, *[e for e in batch if e.type not in REFERENCE_TYPES])
    await wait_folded(url, batch)


async def _inbox_count(url: str) -> int:
    pool = await create_raw_pool(url, size=1)
    try:
        async with pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'analytics-svc.facts'"))
    finally:
        await pool.close()


async def wait_folded(url: str, batch: list[Any]) -> None:
    """Until the live consumer recorded every distinct event it handles in its inbox."""
    from analytics_svc.main import fold_handlers

    handled = fold_handlers()
    expected = len({e.id for e in batch if e.type in handled})

    async def done() -> bool:
        return await _inbox_count(url) >= expected

    await wait_for(done, timeout=60)


def _frozen(value: Any) -> Any:
    """jsonb documents and arrays as canonical text, so rows compare and hash."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value


async def snapshot(url: str, schema: str = "public") -> dict[str, list[tuple]]:
    """Every read-model table's rows as the rebuild compares them (wall-clock columns and rollup
    rows of zeros left out, floats to 1e-6), sorted."""
    from analytics_svc.rebuild import repository

    pool = await create_raw_pool(url, size=1)
    try:
        async with pool.acquire() as conn:
            tables = await repository.read_model_tables(conn, schema)
            out = {}
            for table in tables:
                rows = await conn.fetch(await repository.select_for_comparison(conn, schema, table))
                out[table] = sorted((tuple(_frozen(v) for v in r) for r in rows), key=repr)
            return out
    finally:
        await pool.close()


def differing_rows(live: dict[str, list[tuple]], rebuilt: dict[str, list[tuple]]) -> str:
    """What a failed comparison shows: a few rows only one side has, per table."""
    lines = []
    for table in sorted(set(live) | set(rebuilt)):
        mine, theirs = set(live.get(table, [])), set(rebuilt.get(table, []))
        lines += [f"live    {table} {row}" for row in sorted(mine - theirs, key=repr)[:5]]
        lines += [f"rebuilt {table} {row}" for row in sorted(theirs - mine, key=repr)[:5]]
    return "\n".join(lines)


async def api_figures(client: Any) -> dict[str, Any]:
    """The board, a daily trend by team in Shanghai time and a breakdown by channel."""
    figures = {}
    kpis = await client.get("/v1/analytics/kpis", headers=ADMIN)
    assert kpis.status_code == 200, kpis.text
    figures["kpis"] = kpis.json()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = (today - timedelta(days=3)).isoformat(), (today + timedelta(days=2)).isoformat()
    reports = {
        "/v1/analytics/trends": {"metric": "tickets_created", "interval": "day", "tz": "Asia/Shanghai",
                                 "from": start, "to": end, "by": "team"},
        "/v1/analytics/breakdown": {"metric": "tickets_created", "by": "channel", "from": start, "to": end},
    }
    for path, params in reports.items():
        answer = await client.get(path, params=params, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        figures[path] = answer.json()
    return figures


async def table_oid(url: str, table: str) -> int:
    pool = await create_raw_pool(url, size=1)
    try:
        async with pool.acquire() as conn:
            return int(await conn.fetchval("SELECT $1::regclass::oid", table))
    finally:
        await pool.close()


def _settings() -> Any:
    from analytics_svc.config import Settings

    return Settings()


async def test_rebuild_from_replay_equals_the_live_read_model(full, infra, analytics_db):
    from analytics_svc.rebuild.service import Options, rebuild

    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    batch = shuffled_with_duplicates(scripted_history(base), seed=13)
    await publish_reference_first(infra, full, analytics_db, batch)

    live = await snapshot(analytics_db)
    figures = await api_figures(full)
    # the comparison is not of empty tables: the script reaches every read model
    assert {table for table, rows in live.items() if not rows} == set(), {t: len(r) for t, r in live.items()}
    assert len(live["ticket_metrics"]) == 6
    oid_before = await table_oid(analytics_db, "ticket_facts")

    dry = await rebuild(_settings(), Options(dry_run=True, keep_schema=True))  # the next run drops it
    assert (dry.status, dry.exit_code) == ("dry-run", 0), differing_rows(live, await snapshot(analytics_db, dry.schema))
    assert set(dry.differences) == set(live) and not any(dry.differences.values())
    assert await table_oid(analytics_db, "ticket_facts") == oid_before  # a dry run swaps nothing

    outcome = await rebuild(_settings(), Options())
    assert (outcome.status, outcome.exit_code) == ("swapped", 0), outcome
    assert outcome.events_failed == 0 and outcome.records_poison == 0
    assert outcome.replay_tickets == outcome.live_tickets
    assert await table_oid(analytics_db, "ticket_facts") != oid_before  # the rebuilt tables are live now

    assert await snapshot(analytics_db) == live
    assert await snapshot(analytics_db, "analytics_before_rebuild") == live  # the replaced tables, kept
    assert await api_figures(full) == figures

    # the live consumer goes on folding into the swapped-in tables
    more = Script(base + timedelta(hours=1))
    late = uuid.uuid4()
    more.created(late, 0, team=T1, assignee="a1")
    await produce(infra.kafka_bootstrap, full.topics, *more.out)
    await wait_folded(analytics_db, batch + more.out)
    after = await snapshot(analytics_db)
    assert len(after["ticket_facts"]) == len(live["ticket_facts"]) + 1


async def test_events_arriving_during_the_rebuild_are_not_lost(full, infra, analytics_db):
    from analytics_svc.rebuild.service import Options, Rebuilder
    from analytics_svc.main import FOLD_CONSUMER, FOLD_TOPICS, fold_handlers

    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    history = scripted_history(base)
    await publish_reference_first(infra, full, analytics_db, history)

    arriving: list[Any] = []
    stop = asyncio.Event()

    async def keep_publishing() -> None:
        """New tickets and their replies all through the rebuild (the live consumer folds them)."""
        n = 0
        while not stop.is_set():
            s = Script(base + timedelta(minutes=n))
            tid = uuid.uuid4()
            s.created(tid, 0, team=T2, assignee="a2", channel="chat")
            s.message(tid, 3, agent=True, first=True)
            arriving.extend(s.out)
            await produce(infra.kafka_bootstrap, full.topics, *s.out)
            n += 1
            await asyncio.sleep(0.05)

    async def at_the_swap() -> None:
        # the API answers from the live tables while the rebuild has its own schema filled
        board = await full.get("/v1/analytics/kpis", headers=ADMIN)
        assert board.status_code == 200, board.text
        # events published right before the swap: the swap's catch-up or the live consumer after
        # it must fold them, never the old tables alone
        s = Script(base + timedelta(hours=2))
        for _ in range(5):
            tid = uuid.uuid4()
            s.created(tid, 0, team=T1, assignee=None)
        arriving.extend(s.out)
        await produce(infra.kafka_bootstrap, full.topics, *s.out)

    publisher = asyncio.create_task(keep_publishing())
    try:
        rebuilder = Rebuilder(_settings(), Options(batch_size=20), handlers=fold_handlers(), consumer=FOLD_CONSUMER,
                              topics=FOLD_TOPICS)
        rebuilder.before_swap = at_the_swap
        outcome = await rebuilder.run()
    finally:
        stop.set()
        await publisher
    assert (outcome.status, outcome.exit_code) == ("swapped", 0), outcome
    assert len(arriving) > 10  # events did arrive while it ran

    await wait_folded(analytics_db, history + arriving)
    created = {e.data.ticket_id for e in history + arriving if e.type == "ticket.created"}
    live = await snapshot(analytics_db)
    assert len(live["ticket_facts"]) == len(created)  # none lost by the swap
    # and what the swap left equals a fresh replay of everything, row by row
    check = await Rebuilder(_settings(), Options(dry_run=True), handlers=fold_handlers(), consumer=FOLD_CONSUMER,
                            topics=FOLD_TOPICS).run()
    assert (check.status, check.exit_code) == ("dry-run", 0), check
    assert not any(check.differences.values())


async def test_a_replay_with_less_history_than_the_live_model_is_refused(full, infra, analytics_db):
    """What a rebuild sees after the embedded broker restarted: the live model knows tickets the
    topics no longer hold. Simulated by folding tickets straight into the live tables."""
    from analytics_svc.kpis import repository as kpis_repository
    from analytics_svc.rebuild.service import EXIT_REFUSED, Options, rebuild

    history = scripted_history(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    await publish_reference_first(infra, full, analytics_db, history)
    pool = await create_raw_pool(analytics_db, size=1)
    try:
        async with pool.acquire() as conn:
            await kpis_repository.upsert_created(conn, ticket_id=uuid.uuid4(), created_at=datetime.now(UTC),
                                                 priority="low", status="new", channel="email")
    finally:
        await pool.close()
    oid_before = await table_oid(analytics_db, "ticket_facts")

    refused = await rebuild(_settings(), Options())
    assert (refused.status, refused.exit_code) == ("refused", EXIT_REFUSED)
    assert refused.replay_tickets["ticket_facts"] == refused.live_tickets["ticket_facts"] - 1
    assert any("does not hold the whole history" in m for m in refused.messages)
    assert await table_oid(analytics_db, "ticket_facts") == oid_before

    forced = await rebuild(_settings(), Options(force=True, drop_previous=True))
    assert (forced.status, forced.exit_code) == ("swapped", 0)
    assert await table_oid(analytics_db, "ticket_facts") != oid_before
    pool = await create_raw_pool(analytics_db, size=1)
    try:
        async with pool.acquire() as conn:
            schemas = await conn.fetchval(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'analytics\\_%'")
    finally:
        await pool.close()
    assert schemas == 0  # --drop-previous kept nothing, and the rebuild schema is gone


@pytest.mark.parametrize("replay,live,truncated,force,ok", [
    ({"ticket_facts": 5}, {"ticket_facts": 5}, 0, False, True),
    ({"ticket_facts": 6}, {"ticket_facts": 5}, 0, False, True),  # more: events the live one had yet to fold
    ({"ticket_facts": 4}, {"ticket_facts": 5}, 0, False, False),
    ({"ticket_facts": 4}, {"ticket_facts": 5}, 0, True, True),
    ({"ticket_facts": 5}, {"ticket_facts": 5}, 2, False, False),
    ({}, {"ticket_metrics": 1}, 0, False, False),
])
def test_history_verdict(replay, live, truncated, force, ok):
    from analytics_svc.rebuild.service import history_verdict

    allowed, messages = history_verdict(replay=replay, live=live, truncated_partitions=truncated, force=force)
    assert allowed is ok
    assert bool(messages) is (replay.get("ticket_facts", 0) < live.get("ticket_facts", 0)
                              or "ticket_metrics" in live or truncated > 0)


async def test_the_replay_merges_topics_and_partitions_in_event_time_order(infra, monkeypatch):
    """Published topic by topic (all SLA events, then all ticket events, as a lagging consumer
    could meet them), replayed interleaved by envelope time; events of other types are skipped."""
    from helpdesk_common.testing import service_env

    from analytics_svc.main import FOLD_TOPICS, fold_handlers
    from analytics_svc.rebuild.replay import TopicReplay

    prefix = service_env(monkeypatch, infra, "ANALYTICS_", "postgresql+asyncpg://unused/unused")
    s = Script(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    for i in range(20):
        tid = uuid.uuid4()
        s.created(tid, i * 3, team=T1, assignee=None)
        s.sla(tid, i * 3 + 1, target=60)
    in_time_order = sorted(s.out, key=lambda e: e.time)
    sla_first = [e for e in in_time_order if e.type == "sla.applied"] + [
        e for e in in_time_order if e.type == "ticket.created"]

    async with TopicReplay(_settings(), [prefix + t for t in FOLD_TOPICS], fold_handlers()) as replay:
        await produce(infra.kafka_bootstrap, prefix, *sla_first)  # the topics exist now
        targets = await replay.end_offsets()
        assert sum(targets.values()) == len(s.out)
        got = [item.event.id async for item in replay.until(targets)]
        assert replay.done() == targets
    assert got == [e.id for e in in_time_order]


async def test_the_command_prints_a_summary_and_exits_by_outcome(full, infra, analytics_db):
    """``python -m analytics_svc.rebuild`` as ops run it (the service's settings from the
    environment the fixture set): a dry run of an equal model exits 0 with its JSON summary on
    stdout and logs on stderr; bad arguments exit 2; a refusal exits 3 and says why."""
    import os
    import sys

    from analytics_svc.kpis import repository as kpis_repository

    history = scripted_history(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
    await publish_reference_first(infra, full, analytics_db, history)

    async def command(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "analytics_svc.rebuild", *args, env=dict(os.environ),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await command("--dry-run")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == "dry-run" and summary["events_folded"] >= len(history)
    assert summary["differences"] and not any(summary["differences"].values())
    assert "rebuild replay starts" in err

    code, _, err = await command("--batch-size", "0")
    assert code == 2 and "must be positive" in err

    pool = await create_raw_pool(analytics_db, size=1)
    try:
        async with pool.acquire() as conn:  # a ticket the topics do not hold
            await kpis_repository.upsert_created(conn, ticket_id=uuid.uuid4(), created_at=datetime.now(UTC),
                                                 priority="low", status="new", channel="email")
    finally:
        await pool.close()
    code, out, err = await command()
    assert code == 3 and json.loads(out)["status"] == "refused"
    assert "does not hold the whole history" in err


async def test_the_swap_waits_for_a_long_reader_and_retries(full, infra, analytics_db):
    """A report transaction holding a read-model table longer than the swap's lock timeout: the
    swap gives up that attempt (readers are not queued behind it for long), rolls back, retries,
    and swaps once the reader is done; the result still equals the live model."""
    from analytics_svc.rebuild.service import Options, Rebuilder
    from analytics_svc.main import FOLD_CONSUMER, FOLD_TOPICS, fold_handlers

    history = scripted_history(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4))
    await publish_reference_first(infra, full, analytics_db, history)
    live = await snapshot(analytics_db)

    pool = await create_raw_pool(analytics_db, size=1)
    reader = await pool.acquire()
    tx = reader.transaction()
    released = asyncio.Event()

    async def a_long_report() -> None:
        await tx.start()
        await reader.fetchval("SELECT count(*) FROM metric_rollups")  # ACCESS SHARE until the end

        async def finish() -> None:
            # held until the swap's first attempt gave up (a fixed 1.5 s hold ended before that
            # attempt on a loaded runner, which then swapped at once); bounded all the same
            deadline = asyncio.get_running_loop().time() + 60
            while rebuilder.outcome.swap_attempts < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            await tx.rollback()
            released.set()

        asyncio.get_running_loop().create_task(finish())

    try:
        rebuilder = Rebuilder(_settings(), Options(lock_timeout_ms=300), handlers=fold_handlers(),
                              consumer=FOLD_CONSUMER, topics=FOLD_TOPICS)
        rebuilder.before_swap = a_long_report
        outcome = await rebuilder.run()
    finally:
        await released.wait()
        await pool.release(reader)
        await pool.close()
    assert (outcome.status, outcome.exit_code) == ("swapped", 0), outcome
    assert outcome.swap_attempts >= 2
    assert await snapshot(analytics_db) == live


def test_names_reach_ddl_only_when_plain_identifiers():
    from analytics_svc.rebuild.repository import ident

    assert ident("analytics_rebuild_20261130150000") == '"analytics_rebuild_20261130150000"'
    for bad in ('public"; DROP TABLE inbox; --', "Ticket_Metrics", "1abc", "a" * 64, "", "票"):
        with pytest.raises(ValueError):
            ident(bad)


def test_rollup_rows_of_zeros_are_left_out_of_comparisons_and_nothing_else():
    from analytics_svc.rebuild.repository import figures_only

    columns = [("dim", "text"), ("bucket", "timestamp with time zone"), ("created", "bigint"),
               ("first_reply_sum", "double precision"), ("first_reply_hist", "ARRAY")]
    assert figures_only("metric_rollups", columns) == (
        'NOT ("created" = 0 AND "first_reply_sum" = 0 AND ("first_reply_hist" IS NULL OR 0 = ALL("first_reply_hist")))')
    assert figures_only("ticket_metrics", columns) == "true"


def test_records_left_between_positions_and_targets():
    from aiokafka import TopicPartition

    from analytics_svc.rebuild.replay import remaining

    a, b, c = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("u", 0)
    assert remaining({a: 5, b: 10}, {a: 8, b: 10, c: 4}) == 3 + 0 + 4
    assert remaining({a: 9}, {a: 8}) == 0  # read past a target: nothing left, never negative
