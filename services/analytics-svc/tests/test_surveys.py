"""Survey answers in analytics: the figures (pure), the fold and its window on a real database,
and the KPI document over HTTP."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_svc.kpis import handlers, repository
from analytics_svc.kpis.service import csat_figures, nps_figures, survey_figures
from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

# an admin: supervisors and agents are scoped by team (ticket-svc lookups; tests/reports/)
ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = (datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))


def answered(*, kind="csat", rating=None, score=None, at=NOW, survey_id=None, comment=None):
    sid = survey_id or uuid.uuid4()
    return events.SurveyAnswered(source="customer-svc", subject=str(sid), data=events.SurveyAnsweredData(
        survey_id=sid, kind=kind, customer_id=uuid.uuid4(), ticket_id=uuid.uuid4() if kind == "csat" else None,
        rating=rating, score=score, comment=comment, at=at))


# -- pure figures ---------------------------------------------------------------------------


def test_csat_figures():
    assert csat_figures(responses=0, rating_sum=0, satisfied=0) == {
        "responses": 0, "average": None, "satisfied_share": None}
    # 5, 4, 4, 1 -> 3.5, three of four satisfied
    assert csat_figures(responses=4, rating_sum=14, satisfied=3) == {
        "responses": 4, "average": 3.5, "satisfied_share": 0.75}
    # 33 / 8 = 4.125 rounds half up to 4.13 (half-even would say 4.12); 2 / 3 to four places
    assert csat_figures(responses=8, rating_sum=33, satisfied=2)["average"] == 4.13
    assert csat_figures(responses=3, rating_sum=10, satisfied=2) == {
        "responses": 3, "average": 3.33, "satisfied_share": 0.6667}


@pytest.mark.parametrize(
    ("promoters", "passives", "detractors", "score"),
    [
        (0, 0, 0, None),
        (1, 0, 0, 100),
        (0, 0, 1, -100),
        (0, 3, 0, 0),
        (2, 1, 1, 25),
        (1, 1, 1, 0),
        (2, 0, 1, 33),  # 33.33
        (1, 0, 2, -33),
        (1, 6, 1, 0),
        (1, 7, 0, 13),  # 12.5 rounds half up (away from zero)
        (0, 7, 1, -13),
    ],
)
def test_nps_figures(promoters, passives, detractors, score):
    responses = promoters + passives + detractors
    assert nps_figures(responses=responses, promoters=promoters, passives=passives, detractors=detractors) == {
        "responses": responses, "promoters": promoters, "passives": passives, "detractors": detractors,
        "score": score}


# -- the fold on a real database ------------------------------------------------------------


async def test_answers_fold_once_and_count_within_the_window(raw):
    sid = uuid.uuid4()
    async with raw.transaction():
        for e in [
            answered(rating=5, survey_id=sid, comment="很好 thanks"),
            answered(rating=1, survey_id=sid, comment="re-published with another event id"),  # the first stays
            answered(rating=4), answered(rating=2),
            answered(rating=3, at=DAY[0]),  # the first instant of the day counts
            answered(rating=1, at=DAY[0] - timedelta(microseconds=1)),  # the last of yesterday does not
            answered(rating=1, at=DAY[1]),  # nor the first of tomorrow
            answered(kind="nps", score=10), answered(kind="nps", score=9), answered(kind="nps", score=8),
            answered(kind="nps", score=7), answered(kind="nps", score=6), answered(kind="nps", score=0),
            answered(kind="nps", score=10, at=DAY[1]),
        ]:
            await handlers.handle_survey_answered(raw, e)
        counts = await repository.survey_counts(raw, start=DAY[0], end=DAY[1])
        row = await raw.fetchrow("SELECT kind, rating, score, answered_at FROM survey_answers WHERE survey_id = $1", sid)
        columns = {r["column_name"] for r in await raw.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'survey_answers'")}
        total = await raw.fetchval("SELECT count(*) FROM survey_answers")
    assert total == 13
    assert tuple(row) == ("csat", 5, None, NOW)
    assert not any("comment" in c for c in columns)  # the customer's words are never stored
    assert counts == {"csat_responses": 4, "csat_rating_sum": 14, "csat_satisfied": 2, "nps_responses": 6,
                      "nps_promoters": 2, "nps_passives": 2, "nps_detractors": 2}
    assert survey_figures(counts) == {
        "csat": {"responses": 4, "average": 3.5, "satisfied_share": 0.5},
        "nps": {"responses": 6, "promoters": 2, "passives": 2, "detractors": 2, "score": 0},
    }


# -- over HTTP ------------------------------------------------------------------------------


async def test_kpis_carry_survey_figures_for_the_local_day(api, raw):
    now = datetime.now(UTC)
    empty = (await api.get("/v1/analytics/kpis", headers=ADMIN)).json()
    assert empty["csat"] == {"responses": 0, "average": None, "satisfied_share": None}
    assert empty["nps"] == {"responses": 0, "promoters": 0, "passives": 0, "detractors": 0, "score": None}
    async with raw.transaction():
        for e in [answered(rating=5, at=now), answered(rating=2, at=now), answered(kind="nps", score=9, at=now),
                  answered(rating=1, at=now - timedelta(days=3)), answered(kind="nps", score=0, at=now - timedelta(days=3))]:
            await handlers.handle_survey_answered(raw, e)
    body = (await api.get("/v1/analytics/kpis", headers=ADMIN)).json()
    if now.date() != datetime.now(UTC).date():
        pytest.skip("the UTC day changed during the test")
    assert body["csat"] == {"responses": 2, "average": 3.5, "satisfied_share": 0.5}
    assert body["nps"] == {"responses": 1, "promoters": 1, "passives": 0, "detractors": 0, "score": 100}
    # the same answers seen from a zone whose day ends elsewhere: at least none of three days ago
    kiritimati = (await api.get("/v1/analytics/kpis", params={"tz": "Pacific/Kiritimati"}, headers=ADMIN)).json()
    assert kiritimati["csat"]["responses"] <= 2 and kiritimati["nps"]["detractors"] == 0
