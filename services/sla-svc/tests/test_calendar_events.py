"""``sla.team_calendar_changed`` (issue 12): sla-svc tells other services which business
calendar each team counts in, so ticket-svc's automations count business hours as sla-svc's
timers do. Set, edited, cleared and republished at start-up, each with a version that only
grows per team; the published document computes exactly sla-svc's own due times."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from helpdesk_common import events
from helpdesk_common.business_calendar import CALENDAR_24X7
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app

ADMIN = identity_headers(Principal(kind="user", id="admin", role="admin"))

CN_OFFICE = {
    "name": "上海办公室", "timezone": "Asia/Shanghai", "holiday_country": "CN",
    "weekly_hours": {d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
}
NY_OFFICE = {
    "name": "New York", "timezone": "America/New_York", "holiday_country": "US", "holiday_subdivision": "NY",
    "weekly_hours": {d: [["09:00", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "extra_holidays": ["2026-12-24"],
}


def calendar_events(all_events):
    return [(e.subject, e.data) for e in all_events if e.type == "sla.team_calendar_changed"]


async def create(api, body):
    r = await api.post("/v1/sla/calendars", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


async def test_set_edit_clear_each_publish_the_teams_calendar_with_a_growing_version(api, sla_events):
    assert calendar_events(await sla_events()) == []  # no calendar yet: nothing to say
    cn = await create(api, CN_OFFICE)
    ny = await create(api, NY_OFFICE)
    [(key, default)] = calendar_events(await sla_events())  # the first calendar brings the default, once
    assert key == "default" and default.team_id is None and default.calendar_id is None
    assert default.calendar == CALENDAR_24X7.model_dump(mode="json") and default.version == 1

    team_a, team_b, team_c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for team, cal in ((team_a, cn), (team_b, cn), (team_c, ny)):
        r = await api.put(f"/v1/sla/teams/{team}/calendar", json={"calendar_id": cal["id"]}, headers=ADMIN)
        assert r.status_code == 200, r.text
    published = calendar_events(await sla_events())[1:]
    assert [(k, d.team_id, str(d.calendar_id), d.version) for k, d in published] == [
        (str(team_a), team_a, cn["id"], 1), (str(team_b), team_b, cn["id"], 1), (str(team_c), team_c, ny["id"], 1)]
    assert published[0][1].calendar["timezone"] == "Asia/Shanghai" and published[0][1].calendar["holiday_country"] == "CN"

    # an edit of the Shanghai calendar reaches both teams counting in it, not New York's
    r = await api.put(f"/v1/sla/calendars/{cn['id']}", json={**CN_OFFICE, "extra_holidays": ["2026-12-31"]},
                      headers={**ADMIN, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    edited = calendar_events(await sla_events())[4:]
    assert sorted((k, d.version, d.calendar["extra_holidays"]) for k, d in edited) == sorted([
        (str(team_a), 2, ["2026-12-31"]), (str(team_b), 2, ["2026-12-31"])])  # in team id order

    # team A moves to New York, team B loses its own calendar (the default then applies)
    await api.put(f"/v1/sla/teams/{team_a}/calendar", json={"calendar_id": ny["id"]}, headers=ADMIN)
    assert (await api.delete(f"/v1/sla/teams/{team_b}/calendar", headers=ADMIN)).status_code == 204
    moved, cleared = calendar_events(await sla_events())[6:]
    assert (moved[0], str(moved[1].calendar_id), moved[1].version) == (str(team_a), ny["id"], 3)
    assert (cleared[0], cleared[1].calendar_id, cleared[1].calendar, cleared[1].version) == (str(team_b), None, None, 3)
    # a second calendar created does not publish the default again
    await create(api, {**NY_OFFICE, "name": "another"})
    assert len(calendar_events(await sla_events())) == 8


async def test_start_up_republishes_every_key_with_its_version_unchanged(api, sla_events, sla_app_factory):
    cn = await create(api, CN_OFFICE)
    team, gone = uuid.uuid4(), uuid.uuid4()
    await api.put(f"/v1/sla/teams/{team}/calendar", json={"calendar_id": cn["id"]}, headers=ADMIN)
    await api.put(f"/v1/sla/teams/{gone}/calendar", json={"calendar_id": cn["id"]}, headers=ADMIN)
    await api.delete(f"/v1/sla/teams/{gone}/calendar", headers=ADMIN)
    before = calendar_events(await sla_events())
    async with running_app(sla_app_factory()):
        pass
    again = calendar_events(await sla_events())[len(before):]
    newest = {}
    for key, data in before:
        newest[key] = (data.version, data.calendar_id, data.calendar)
    assert {k: (d.version, d.calendar_id, d.calendar) for k, d in again} == newest
    assert sorted(k for k, _ in again) == sorted(["default", str(team), str(gone)])


async def test_the_published_calendar_computes_sla_svcs_own_due_times(api, sla_events):
    """What a consumer builds from the event (ticket-svc does exactly this) agrees with
    ``POST /v1/sla/calendars/{id}/due`` over holidays, weekends and a time zone."""
    from ticket_svc.sla.calendars import bind, build

    ny = await create(api, NY_OFFICE)
    team = uuid.uuid4()
    await api.put(f"/v1/sla/teams/{team}/calendar", json={"calendar_id": ny["id"]}, headers=ADMIN)
    [(_, data)] = [(k, d) for k, d in calendar_events(await sla_events()) if k == str(team)]
    decoded = events.decode(events.encode(events.SlaTeamCalendarChanged(source="t", subject=str(team), data=data)))
    business_time = bind(build(decoded.data.calendar))
    for start, minutes in (("2026-12-23T16:00:00-05:00", 120), ("2026-12-24T10:00:00-05:00", 30),
                           ("2026-11-25T17:00:00-05:00", 60 * 9), ("2027-03-13T12:00:00-05:00", 61)):
        r = await api.post(f"/v1/sla/calendars/{ny['id']}/due", json={"start": start, "minutes": minutes},
                           headers=ADMIN)
        assert r.status_code == 200, r.text
        expected = datetime.fromisoformat(r.json()["due_at"].replace("Z", "+00:00"))
        assert business_time(datetime.fromisoformat(start), timedelta(minutes=minutes)) == expected
