"""kb.suggestion_outcome folded into the rollups' ``deflections``: a deflected suggestion counts
once (replays and redeliveries under new envelope ids change nothing), under ``all`` and its
channel, at the hour it was decided; kb-svc's correction (a ticket after all) takes it back, an
older outcome arriving late changes nothing; a non-deflected outcome counts nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from helpdesk_common import events

from analytics_svc.readmodel.handlers import HANDLERS

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def outcome(suggestion_id, *, deflected, at, channel="web"):
    return events.KbSuggestionOutcome(source="kb-svc", subject=str(suggestion_id), data=events.KbSuggestionOutcomeData(
        suggestion_id=suggestion_id, deflected=deflected, article_ids=[uuid.uuid4()], viewed_article_ids=[],
        ticket_id=None if deflected else uuid.uuid4(), channel=channel, at=at))


async def _deflections(raw):
    rows = await raw.fetch("SELECT dim, dim_value, bucket, deflections FROM metric_rollups WHERE deflections <> 0 "
                           "ORDER BY dim, dim_value, bucket")
    daily = await raw.fetchval("SELECT coalesce(sum(deflections), 0) FROM metric_rollups_daily WHERE dim = 'all'")
    return [(r["dim"], r["dim_value"], r["bucket"], r["deflections"]) for r in rows], daily


async def test_deflections_counted_once_moved_by_corrections(raw):
    fold = HANDLERS["kb.suggestion_outcome"]
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first = outcome(a, deflected=True, at=T0)
    async with raw.transaction():
        await fold(raw, first)
        await fold(raw, first.model_copy(update={"id": uuid.uuid4()}))  # a replay under a new id
        await fold(raw, outcome(b, deflected=True, at=T0 + timedelta(hours=1), channel="agent"))
        await fold(raw, outcome(c, deflected=False, at=T0))  # abandoned or followed: nothing
    hour0, hour1 = T0.replace(minute=0), T0.replace(minute=0) + timedelta(hours=1)
    rows, daily = await _deflections(raw)
    assert rows == [("all", "", hour0, 1), ("all", "", hour1, 1), ("channel", "agent", hour1, 1),
                    ("channel", "web", hour0, 1)]
    assert daily == 2
    async with raw.transaction():
        # kb-svc corrects a: a ticket had followed within the window after all
        await fold(raw, outcome(a, deflected=False, at=T0 + timedelta(hours=2)))
        # an older outcome of b arriving late changes nothing
        await fold(raw, outcome(b, deflected=False, at=T0))
    rows, daily = await _deflections(raw)
    assert rows == [("all", "", hour1, 1), ("channel", "agent", hour1, 1)]
    assert daily == 1
