"""ticket-svc's projection of sla-svc's team calendars (issue 12): business hours counted here
must be exactly sla-svc's for the same calendar, the newest version wins whatever order events
come in, a team without its own calendar falls back to the default, and the event through the
real broker lands in the projection."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk_common import events
from helpdesk_common.business_calendar import CalendarIn
from helpdesk_common.business_time import add_business_minutes
from helpdesk_common.db import create_raw_pool
from helpdesk_common.testing import produce, wait_for
from sla_svc.calendars_api import service as sla_calendars
from ticket_svc.sla import calendars

WORKWEEK = ("mon", "tue", "wed", "thu", "fri")

#: sla-svc's stored calendar documents (what ``POST /v1/sla/calendars`` keeps in ``definition``)
DOCUMENTS = {
    "cn": CalendarIn(name="cn", timezone="Asia/Shanghai", holiday_country="CN",
                     weekly_hours={d: [("09:00", "12:00"), ("13:00", "18:00")] for d in WORKWEEK}),
    "us-ny": CalendarIn(name="us-ny", timezone="America/New_York", holiday_country="US", holiday_subdivision="NY",
                        weekly_hours={d: [("09:00", "17:30")] for d in WORKWEEK},
                        extra_holidays=["2026-12-24"], extra_working_days=["2026-12-26"]),
    "berlin-night": CalendarIn(name="night", timezone="Europe/Berlin", holiday_country="DE",
                               weekly_hours={d: [("00:00", "06:00"), ("22:00", "24:00")] for d in (*WORKWEEK, "sat")}),
    "kolkata": CalendarIn(name="kolkata", timezone="Asia/Kolkata", weekly_hours={"sun": [("10:00", "14:15")]}),
}


def sla_row(doc: CalendarIn, version: int = 1):
    """A row as sla-svc's repository returns it, for sla-svc's own ``calendar_of``."""
    return type("Row", (), {"id": uuid.uuid4(), "version": version, "definition": doc.model_dump(mode="json")})()


def through_the_event(doc: CalendarIn, *, team_id=None, version=1):
    """The event as ticket-svc's consumer decodes it from the broker's bytes."""
    event = events.SlaTeamCalendarChanged(source="sla-svc", subject=str(team_id or "default"),
                                          data=events.SlaTeamCalendarData(
                                              team_id=team_id, calendar_id=uuid.uuid4(),
                                              calendar=doc.model_dump(mode="json"), version=version,
                                              at=datetime.now(UTC)))
    return events.decode(events.encode(event))


BUILT = {name: calendars.bind(calendars.build(through_the_event(doc).data.calendar))
         for name, doc in DOCUMENTS.items()}
SLA = {name: sla_calendars.calendar_of(sla_row(doc)) for name, doc in DOCUMENTS.items()}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(DOCUMENTS)),
       start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
       minutes=st.integers(min_value=0, max_value=60 * 24 * 30))
def test_business_time_is_exactly_sla_svcs_answer(name, start, minutes):
    assert BUILT[name](start, timedelta(minutes=minutes)) == add_business_minutes(SLA[name], start, minutes)


def test_a_known_answer_over_chinas_national_day_and_its_make_up_saturday():
    # 2026-09-30 is a Wednesday; 1-7 October are off, Saturday 10 October is a make-up working day
    start = datetime(2026, 9, 30, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai: one working hour left
    due = BUILT["cn"](start, timedelta(hours=3))
    assert due == add_check(SLA["cn"], start, 3 * 60)
    # 1 hour on 30 September, none from 1 to 7 October, 2 hours on the morning of the 8th
    assert due == datetime(2026, 10, 8, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


def add_check(cal, start, minutes):
    return add_business_minutes(cal, start, minutes)


def test_the_team_calendar_wins_then_the_default_then_none():
    team = str(uuid.uuid4())
    assert calendars.pick_key(uuid.UUID(team), {}) is None
    assert calendars.pick_key(uuid.UUID(team), {"default": (3, True)}) == ("default", 3)
    assert calendars.pick_key(uuid.UUID(team), {"default": (3, True), team: (7, True)}) == (team, 7)
    # a team whose own calendar was cleared counts in the default
    assert calendars.pick_key(uuid.UUID(team), {"default": (3, True), team: (8, False)}) == ("default", 3)
    assert calendars.pick_key(None, {team: (7, True)}) is None


@pytest.fixture
async def conn(ticket_db):
    pool = await create_raw_pool(ticket_db, size=1)
    try:
        async with pool.acquire() as c:
            yield c
    finally:
        await pool.close()


async def change(conn, doc, *, team_id=None, version):
    async with conn.transaction():
        await calendars.on_team_calendar_changed(conn, through_the_event(doc, team_id=team_id, version=version).data
                                                 if doc is not None else cleared(team_id, version))


def cleared(team_id, version):
    return events.SlaTeamCalendarData(team_id=team_id, calendar=None, version=version, at=datetime.now(UTC))


async def test_the_projection_keeps_the_newest_version_and_falls_back_to_the_default(conn):
    team = uuid.uuid4()
    start = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
    assert await calendars.business_time_fn(conn, team) is None
    assert await calendars.business_time_fn(conn, None) is None

    await change(conn, DOCUMENTS["cn"], version=5)
    fn = await calendars.business_time_fn(conn, team)
    assert fn(start, timedelta(hours=2)) == add_check(SLA["cn"], start, 120)

    await change(conn, DOCUMENTS["us-ny"], team_id=team, version=10)
    await change(conn, DOCUMENTS["kolkata"], team_id=team, version=9)  # older: a replay, ignored
    fn = await calendars.business_time_fn(conn, team)
    assert fn(start, timedelta(hours=2)) == add_check(SLA["us-ny"], start, 120)
    assert (await calendars.business_time_fn(conn, None))(start, timedelta(hours=2)) == add_check(SLA["cn"], start, 120)

    await change(conn, DOCUMENTS["berlin-night"], team_id=team, version=11)  # newer: the built cache is dropped
    fn = await calendars.business_time_fn(conn, team)
    assert fn(start, timedelta(hours=2)) == add_check(SLA["berlin-night"], start, 120)

    await change(conn, None, team_id=team, version=12)  # the team's own calendar cleared
    await change(conn, DOCUMENTS["us-ny"], team_id=team, version=11)  # and not brought back by a stale one
    fn = await calendars.business_time_fn(conn, team)
    assert fn(start, timedelta(hours=2)) == add_check(SLA["cn"], start, 120)


async def test_the_event_through_the_broker_reaches_the_projection(full_client, infra, ticket_db):
    team = uuid.uuid4()
    event = events.SlaTeamCalendarChanged(source="sla-svc", subject=str(team), data=events.SlaTeamCalendarData(
        team_id=team, calendar_id=uuid.uuid4(), calendar=DOCUMENTS["kolkata"].model_dump(mode="json"), version=1,
        at=datetime.now(UTC)))
    await produce(infra.kafka_bootstrap, full_client.topics, event, event)
    pool = await create_raw_pool(ticket_db, size=1)
    try:
        async with pool.acquire() as c:
            async def projected():
                return await calendars.business_time_fn(c, team)

            fn = await wait_for(projected)
            start = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)  # a Sunday, 09:30 in Kolkata
            assert fn(start, timedelta(minutes=30)) == datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
            assert await c.fetchval("SELECT count(*) FROM team_calendars") == 1
    finally:
        await pool.close()


async def test_sla_svcs_calendar_events_reach_the_projection_and_a_new_one_catches_up_at_start(
        infra, monkeypatch, ticket_db):
    """The real sla-svc (its outbox and relay) and the real ticket-svc consumer on one broker:
    a team's calendar set in sla-svc counts in ticket-svc exactly as sla-svc's due times; a
    rebuilt (empty) projection catches up from sla-svc's start-up republish, without a replay."""
    from helpdesk_common.identity import Principal
    from helpdesk_common.testing import identity_headers, running_app, service_env
    from sla_svc.config import Settings as SlaSettings
    from sla_svc.main import create_app as create_sla
    from ticket_svc.config import Settings as TicketSettings
    from ticket_svc.main import create_app as create_ticket

    admin = identity_headers(Principal(kind="user", id="admin", role="admin"))
    service_env(monkeypatch, infra, "TICKET_", ticket_db)  # sets the one topic prefix both use
    monkeypatch.setenv("SLA_DATABASE_URL", infra.new_database("sla_svc"))
    monkeypatch.setenv("SLA_RELAY_POLL_INTERVAL_S", "0.2")
    monkeypatch.setenv("SLA_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("SLA_SCHEDULER_ENABLED", "false")
    team = uuid.uuid4()
    start = datetime(2026, 12, 23, 20, 0, tzinfo=UTC)  # 15:00 in New York, the day before a company holiday

    async def projected(database_url):
        pool = await create_raw_pool(database_url, size=1)
        try:
            async with pool.acquire() as c:
                fn = await calendars.business_time_fn(c, team)
                return None if fn is None else fn(start, timedelta(minutes=240))
        finally:
            await pool.close()

    async with running_app(create_sla(SlaSettings())) as sla, running_app(create_ticket(TicketSettings())):
        cal = (await sla.post("/v1/sla/calendars", json=DOCUMENTS["us-ny"].model_dump(mode="json"),
                              headers=admin)).json()
        r = await sla.put(f"/v1/sla/teams/{team}/calendar", json={"calendar_id": cal["id"]}, headers=admin)
        assert r.status_code == 200, r.text
        due = await sla.post(f"/v1/sla/calendars/{cal['id']}/due", json={"start": start.isoformat(), "minutes": 240},
                             headers=admin)
        expected = datetime.fromisoformat(due.json()["due_at"].replace("Z", "+00:00"))
        # 2.5 h on the 23rd; the 24th (company) and 25th (Christmas) closed; 1.5 h on Saturday the 26th,
        # a make-up working day
        assert expected == datetime(2026, 12, 26, 15, 30, tzinfo=UTC)
        # a consumer's first group join and an outbox relay on a loaded 2-core runner: up to a minute
        assert await wait_for(lambda: projected(ticket_db), timeout=90) == expected

    rebuilt = infra.new_database("ticket_svc")
    monkeypatch.setenv("TICKET_DATABASE_URL", rebuilt)
    assert await projected(rebuilt) is None
    async with running_app(create_ticket(TicketSettings())):
        async with running_app(create_sla(SlaSettings())):  # a restart of sla-svc republishes
            assert await wait_for(lambda: projected(rebuilt), timeout=90) == expected
