"""analytics-svc on the real broker: events from three topics, any order, duplicates."""

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))






def observed() -> float:
    return REGISTRY.get_sample_value("event_propagation_seconds_count") or 0.0


async def test_kpis_from_events_in_any_order(full, infra, db):
    now = datetime.now(UTC)
    t = [uuid.uuid4() for _ in range(4)]

    def created(tid, at, status="new"):
        return events.TicketCreated(source="t", subject=str(tid), data=events.TicketCreatedData(
            ticket_id=tid, subject="s", status=status, priority="normal", requester=events.Requester(email="a@b.co"),
            created_by="channel:k", created_at=at))

    linked = events.TicketCustomerLinked(
        source="t", subject=str(t[0]), data=events.TicketCustomerLinkedData(ticket_id=t[0], customer_id=uuid.uuid4()))
    sla = events.SlaApplied(source="t", subject=str(t[0]), data=events.SlaAppliedData(
        ticket_id=t[0], metric="first_response", policy="default", target_minutes=60, started_at=now,
        due_at=now + timedelta(hours=1)))
    orphan_sla = events.SlaApplied(source="t", subject=str(t[3]), data=sla.data.model_copy(update={"ticket_id": t[3]}))
    dup = created(t[1], now)
    # the link and the SLA arrive before the creation (other topics), one event twice, one ticket
    # from two days ago, one solved; t[3] is only known from its SLA
    batch = [linked, sla, orphan_sla, created(t[0], now), dup, dup, created(t[2], now - timedelta(days=2), "solved")]
    seen_before = observed()
    await produce(infra.kafka_bootstrap, full.topics, *batch)

    async def folded():
        k = (await full.get("/v1/analytics/kpis", headers=ADMIN)).json()
        done = k["tickets_total"] == 3 and k["tickets_linked_to_customer"] == 1 and k["tickets_with_sla"] == 1
        return k if done else None

    kpis = await wait_for(folded)
    near_midnight = now.hour == 23 and now.minute >= 59
    assert kpis["tickets_created_today"] == 2 or near_midnight
    assert kpis["open_tickets"] == 2
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM inbox")) == len(batch) - 1
        rows = (await conn.execute(text("SELECT ticket_id, created_at, ingested_at FROM ticket_facts"))).all()
    assert len(rows) == 4
    for row in rows:
        if row.ticket_id == t[3]:
            assert row.created_at is None and row.ingested_at is None
        else:
            assert row.ingested_at >= row.created_at
    assert observed() - seen_before == 3  # the duplicate was not folded (nor observed) twice


async def test_survey_answers_are_counted_once_from_customers_events(full, infra, db):
    now = datetime.now(UTC)

    def answered(kind, *, rating=None, score=None, survey_id=None):
        sid = survey_id or uuid.uuid4()
        return events.SurveyAnswered(source="customer-svc", subject=str(sid), data=events.SurveyAnsweredData(
            survey_id=sid, kind=kind, customer_id=uuid.uuid4(), rating=rating, score=score, comment="慢 slow", at=now))

    first = answered("csat", rating=2)
    again = first.model_copy(update={"id": uuid.uuid4()})  # the same answer re-published under another id
    # a redelivery (the same event twice) and a re-publication count once; an NPS detractor
    batch = [first, first, again, answered("csat", rating=5), answered("nps", score=3)]
    await produce(infra.kafka_bootstrap, full.topics, *batch)

    async def folded():
        # the inbox first: its rows commit with the fold, so once all are there the figures read
        # next include every answer (read the other way round, the figures could predate the last fold)
        async with db.connect() as conn:
            seen = await conn.scalar(text("SELECT count(*) FROM inbox WHERE event_type = 'survey.answered'"))
        if seen != len(batch) - 1:
            return None
        return (await full.get("/v1/analytics/kpis", headers=ADMIN)).json()

    kpis = await wait_for(folded)
    if now.date() != datetime.now(UTC).date():
        return  # the UTC day changed while folding: the figures belong to yesterday
    assert kpis["csat"] == {"responses": 2, "average": 3.5, "satisfied_share": 0.5}
    assert kpis["nps"] == {"responses": 1, "promoters": 0, "passives": 0, "detractors": 1, "score": -100}
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM survey_answers")) == 3
