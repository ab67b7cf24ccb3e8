"""The scripted Shanghai day (tests/fixtures/shanghai_day.py) through the real consumer and API.

200 tickets of eleven archetypes are published to the test broker as ticket-svc, sla-svc and
customer-svc publish them, interleaved across tickets, some tickets' events in reverse order,
some events delivered twice (same id: the inbox drops it) and some re-published under a new id
(the read model's natural fact keys drop it). Once the consumer has folded everything, every
per-ticket figure, the day's rollups and the reports must equal the hand-computed values of the
scenario, in calendar and in business minutes.
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import io
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, wait_for

from analytics_svc.main import FOLD_CONSUMER, fold_handlers


def _load_scenario() -> Any:
    """The scenario module (pytest runs with --import-mode=importlib: no sys.path for tests)."""
    name = "analytics_shanghai_day_scenario"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "fixtures" / "shanghai_day.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


S = _load_scenario()
# about a minute alone; the consumer folds ~2,400 events, which takes longer on a busy machine
pytestmark = pytest.mark.timeout(900)
ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid5(S.NS, "admin")), role="admin"))
#: the scripted day in Shanghai, [00:00, 24:00) local, as UTC instants
DAY_START, DAY_END = S.sh(0, 0), S.sh(0, 0) + timedelta(days=1)


def delivery(tickets: list[Any], others: list[Any], seed: int = 20261124) -> tuple[list[Any], int]:
    """The order the consumer sees: tickets (and ``others``, events about no ticket's stream)
    interleaved at random (each ticket's events keep their order, as one Kafka key does), every
    fifth ticket's events reversed (a solve before the creation), every eleventh event delivered
    again with the same id, and every thirteenth message, survey answer or delivery failure
    re-published under a new id. Returns (events, copies)."""
    rng = random.Random(seed)
    queues = [[e] for e in others]
    for n, t in enumerate(tickets):
        evts = list(t.events)
        if n % 5 == 2:
            evts.reverse()
        queues.append(evts)
    stream: list[Any] = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        stream.append(queue.pop(0))
    out: list[Any] = []
    copies = 0
    for n, e in enumerate(stream):
        out.append(e)
        if n % 11 == 5:
            out.append(e)  # a redelivery: same envelope id
            copies += 1
        if n % 13 == 7 and e.type in ("ticket.message_added", "survey.answered", "delivery.failed"):
            out.append(e.model_copy(update={"id": uuid.uuid5(S.NS, f"republished/{e.id}")}))
            copies += 1
    return out, copies


async def publish(bootstrap: str, prefix: str, evts: list[Any]) -> None:
    """Publish to each event's topic with its key (like helpdesk_common.testing.produce), sending
    without waiting for each acknowledgement: per key the producer keeps the order."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending = [await producer.send(prefix + events.TOPIC_BY_TYPE[e.type], events.encode(e),
                                       key=e.subject.encode()) for e in evts]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def folded_count(db: Any) -> int:
    async with db.connect() as conn:
        return await conn.scalar(text("SELECT count(*) FROM inbox WHERE consumer = :c"), {"c": FOLD_CONSUMER})


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, float) and isinstance(got, int | float) and not isinstance(got, bool):
        return abs(expected - got) < 1e-6
    if isinstance(expected, datetime) and isinstance(got, datetime):
        return expected == got
    if isinstance(expected, uuid.UUID):
        return str(expected) == str(got)
    return expected == got


def compare_tickets(tickets: list[Any], rows: dict[uuid.UUID, Any]) -> tuple[list[str], int]:
    """Every stated figure of every ticket against its row: (differences, values checked)."""
    wrong: list[str] = []
    checked = 0
    for t in tickets:
        row = rows.get(t.id)
        if row is None:
            wrong.append(f"{t.archetype}#{t.i}: no ticket_metrics row")
            continue
        for column, expected in t.expected.items():
            got = row._mapping[column]
            checked += 1
            if not _same(expected, got):
                wrong.append(f"{t.archetype}#{t.i} {column}: expected {expected!r}, got {got!r}")
        checked += 1
        if sorted(row.tags or []) != sorted(t.tags):
            wrong.append(f"{t.archetype}#{t.i} tags: expected {sorted(t.tags)!r}, got {row.tags!r}")
    return wrong, checked


async def rollup_sums(db: Any, dim: str, columns: tuple[str, ...], *, start: datetime = DAY_START,
                      end: datetime = DAY_END) -> dict[str, dict[str, float]]:
    """Sums of rollup columns over [start, end) per value of ``dim`` (hour buckets are UTC hours;
    the Shanghai day is whole UTC hours, so its hours are exactly the buckets in the range)."""
    select = ", ".join(f"sum({c}) AS {c}" for c in columns)
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            f"SELECT dim_value, {select} FROM metric_rollups WHERE dim = :dim AND bucket >= :start AND bucket < :end "
            "GROUP BY dim_value"), {"dim": dim, "start": start, "end": end})).all()
    return {r.dim_value: {c: float(r._mapping[c] or 0) for c in columns} for r in rows}


def differences(expected: dict[str, float], got: dict[str, float], where: str) -> list[str]:
    return [f"{where} {k}: expected {v!r}, got {got.get(k)!r}" for k, v in expected.items()
            if not _same(float(v), got.get(k))]


async def check_read_model(db: Any, tickets: list[Any]) -> tuple[int, int]:
    """(a) every ticket's row, figure by figure, then the day's rollups; (figures checked, facts)."""
    async with db.connect() as conn:
        rows = {r.ticket_id: r for r in (await conn.execute(text("SELECT * FROM ticket_metrics"))).all()}
        facts = await conn.scalar(text("SELECT count(*) FROM ticket_history"))
    wrong, checked = compare_tickets(tickets, rows)
    assert not wrong, f"{len(wrong)} of {checked} per-ticket figures differ:\n" + "\n".join(wrong[:60])
    assert len(rows) == 200

    # the day's rollups (dimension 'all', the Shanghai day's 24 UTC hours)
    problems: list[str] = []
    totals = await rollup_sums(db, "all", tuple(S.DAY_TOTALS))
    problems += differences(S.DAY_TOTALS, totals.get("", {}), "day")
    team_columns = tuple(next(iter(S.TEAM_TOTALS.values())))
    teams = await rollup_sums(db, "team", team_columns)
    for team_id, name in S.TEAM_NAMES.items():
        problems += differences(S.TEAM_TOTALS[name], teams.get(str(team_id), {}), f"team {name}")
    for hour in range(24):
        start = S.sh(hour, 0)
        got = (await rollup_sums(db, "all", ("created", "solved"), start=start,
                                 end=start + timedelta(hours=1))).get("", {})
        problems += differences({"created": S.CREATED_BY_HOUR.get(hour, 0), "solved": S.SOLVED_BY_HOUR.get(hour, 0)},
                                {"created": got.get("created", 0.0), "solved": got.get("solved", 0.0)},
                                f"hour {hour:02d}")
    # the UTC day puts the ten tickets created before 08:00 in Shanghai on 23 November
    utc_23 = await rollup_sums(db, "all", ("created",), start=datetime(2026, 11, 23, tzinfo=UTC),
                               end=datetime(2026, 11, 24, tzinfo=UTC))
    problems += differences({"created": 10}, utc_23.get("", {}), "UTC 23 Nov")
    async with db.connect() as conn:
        sla_rows = (await conn.execute(text(
            "SELECT metric, sum(achieved) AS achieved, sum(breached) AS breached FROM sla_rollups "
            "WHERE dim = 'all' AND bucket >= :s AND bucket < :e GROUP BY metric"),
            {"s": DAY_START, "e": DAY_END})).all()
    got_sla = {r.metric: (int(r.achieved), int(r.breached)) for r in sla_rows}
    if got_sla != S.SLA_BY_METRIC:
        problems.append(f"sla_rollups per metric: expected {S.SLA_BY_METRIC}, got {got_sla}")
    assert not problems, "\n".join(problems)

    return checked, facts


async def test_the_scripted_shanghai_day(full, infra, db):
    tickets = S.build_day()
    assert len(tickets) == 200
    handled = set(fold_handlers())

    # the calendars were announced days before (stale versions last): folded before the day starts
    calendars = S.calendar_events() + S.customer_events()
    await publish(infra.kafka_bootstrap, full.topics, calendars)
    calendar_ids = {e.id for e in calendars if e.type in handled}

    async def calendars_folded():
        return await folded_count(db) >= len(calendar_ids)

    await wait_for(calendars_folded, timeout=60)

    stream, copies = delivery(tickets, S.relationship_nps() + S.delivery_failures())
    await publish(infra.kafka_bootstrap, full.topics, stream)
    expected_inbox = len(calendar_ids) + len({e.id for e in stream if e.type in handled})

    async def everything_folded():
        return await folded_count(db) >= expected_inbox

    await wait_for(everything_folded, timeout=600, interval=0.5)

    checked, facts = await check_read_model(db, tickets)

    # (b) the same day through the API, in the caller's zone
    api_checked = await check_reports(full)
    api_checked += await check_board(full)

    # a relay that lost its sent marks publishes the whole day again under new envelope ids: the
    # inbox cannot recognise them, the facts' natural keys must (nothing changes)
    replay = [e.model_copy(update={"id": uuid.uuid5(S.NS, f"replay/{e.id}")})
              for e in {e.id: e for e in stream}.values()]
    await publish(infra.kafka_bootstrap, full.topics, replay)
    expected_inbox += len({e.id for e in replay if e.type in handled})
    await wait_for(everything_folded, timeout=600, interval=0.5)
    _, facts_after_replay = await check_read_model(db, tickets)
    assert facts_after_replay == facts, "a re-published event became a second fact"

    print(f"\nshanghai day: {len(tickets)} tickets, {len(stream)} events delivered ({copies} duplicates), "
          f"{facts} facts, {checked} per-ticket figures and {api_checked} API figures checked; "
          f"the same after a replay of {len(replay)} events under new ids")


# --------------------------------------------------------------------------- (b) through the API

RANGE = {"tz": "Asia/Shanghai", "from": "2026-11-24T00:00:00+08:00", "to": "2026-11-25T00:00:00+08:00"}
#: the day's figures as the catalogue names them, from the hand sums of fixtures/shanghai_day.py
#: (value, n); means and shares are the exact fractions of those sums (the API rounds to 2 decimals)
DAY_FIGURES = {
    "tickets_created": (200, 200),
    "tickets_solved": (160, 160),
    "first_reply_minutes": (8000 / 180, 180),
    "first_reply_business_minutes": (6800 / 180, 180),
    "resolution_minutes": (28400 / 160, 160),
    "resolution_business_minutes": (23410 / 160, 160),
    "next_reply_minutes": (3700 / 60, 60),
    "next_reply_business_minutes": (2310 / 60, 60),
    "requester_wait_minutes": (15600 / 160, 160),
    "requester_wait_business_minutes": (11810 / 160, 160),
    "agent_wait_minutes": (8000 / 160, 160),
    "agent_wait_business_minutes": (8000 / 160, 160),
    "on_hold_minutes": (2400 / 160, 160),
    "on_hold_business_minutes": (2400 / 160, 160),
    "reopens_per_ticket": (20 / 160, 160),
    "replies_per_ticket": (260 / 160, 160),
    "assignee_hops": (40 / 160, 160),
    "team_hops": (20 / 160, 160),
    "one_touch_percent": (100 * 60 / 160, 160),
    "first_contact_percent": (100 * 100 / 160, 160),
    "csat_percent": (100 * 40 / 100, 100),
    "csat_average": (300 / 100, 100),
    "nps": (100 * (45 - 25) / 90, 90),
    "delivery_failures": (7, 7),
    "sla_compliance_percent": (100 * 320 / 380, 380),
}
TEAM_FIGURES = {
    # metric -> {team: (value, n)}: presales, support, escalations
    "tickets_created": {"presales": (100, 100), "support": (80, 80), "escalations": (20, 20)},
    "first_reply_minutes": {"presales": (2600 / 100, 100), "support": (4200 / 60, 60), "escalations": (60, 20)},
    "first_reply_business_minutes": {"presales": (2600 / 100, 100), "support": (3000 / 60, 60),
                                     "escalations": (60, 20)},
    "resolution_minutes": {"presales": (12800 / 100, 100), "support": (9600 / 40, 40), "escalations": (300, 20)},
    "resolution_business_minutes": {"presales": (10210 / 100, 100), "support": (7200 / 40, 40),
                                    "escalations": (300, 20)},
}
#: tickets created per value of the other dimensions (a ticket with no tier or brand has no row)
CREATED_BY = {
    "channel": {"email": 80, "web": 60, "chat": 20, "wechat": 20, "phone": 20},
    "tier": {"gold": 60, "vip": 60, "金牌": 20},
    "tag": {"billing": 60, "退款": 60, "发票": 20, "outage": 40, "回访": 20, "bug": 20, "duplicate": 10},
    "brand": {"acme": 100, "星辰": 40},
    "priority": {"normal": 90, "high": 60, "urgent": 20, "low": 30},
    "type": {"question": 100, "problem": 40, "incident": 40, "task": 20},
    "organization": {str(S.O1): 40, str(S.O2): 20},
}
#: (metric, dimension) -> {value: (figure, n)} for the figures that also count events about no ticket
OTHER_BREAKDOWNS = {
    ("nps", "organization"): {str(S.O1): (0.0, 30), str(S.O2): (100.0, 20)},
    ("delivery_failures", "channel"): {"wechat": (5, 5), "webhook": (2, 2)},
    ("delivery_failures", "team"): {str(S.T2): (5, 5)},
}


def close(expected: float, got: Any) -> bool:
    return got is not None and abs(float(got) - expected) <= 0.005 + 1e-9


async def get_json(client: Any, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=ADMIN)
    assert response.status_code == 200, (path, params, response.status_code, response.text[:500])
    return response.json()


def download_rows(fmt: str, content: bytes) -> list[dict[str, Any]]:
    """A report download's rows as dicts by header name."""
    if fmt == "csv":
        text_ = content.decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(text_)))
    sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    return [dict(zip(values[0], r, strict=False)) for r in values[1:]]


async def check_reports(client: Any) -> int:
    """Trends (day and hour buckets in Shanghai, and a UTC day), breakdowns and SLA compliance."""
    wrong: list[str] = []
    checked = 0
    for metric, (value, n) in DAY_FIGURES.items():
        body = await get_json(client, "/v1/analytics/trends", metric=metric, interval="day", **RANGE)
        points = body["series"][0]["points"]
        checked += 1
        if len(points) != 1 or not close(value, points[0]["value"]) or points[0]["n"] != n:
            wrong.append(f"trends {metric} day: expected {value} (n={n}), got {points}")
    for metric, expected_by_hour in (("tickets_created", S.CREATED_BY_HOUR), ("tickets_solved", S.SOLVED_BY_HOUR)):
        body = await get_json(client, "/v1/analytics/trends", metric=metric, interval="hour", **RANGE)
        got = {datetime.fromisoformat(p["bucket"]).hour: p["value"] or 0 for p in body["series"][0]["points"]}
        checked += 24
        if got != {h: expected_by_hour.get(h, 0) for h in range(24)}:
            wrong.append(f"trends {metric} by Shanghai hour: expected {expected_by_hour}, got {got}")
    body = await get_json(client, "/v1/analytics/trends", metric="tickets_created", interval="day", tz="UTC",
                          **{"from": "2026-11-23T00:00:00Z", "to": "2026-11-25T00:00:00Z"})
    got = [p["value"] or 0 for p in body["series"][0]["points"]]
    checked += 2
    if got != [10, 190]:
        wrong.append(f"trends tickets_created per UTC day 23-24 Nov: expected [10, 190], got {got}")
    team_key = {str(team): name for team, name in S.TEAM_NAMES.items()}
    for metric, expected in TEAM_FIGURES.items():
        body = await get_json(client, "/v1/analytics/breakdown", metric=metric, by="team", **RANGE)
        got = {team_key.get(i["key"], i["key"]): (i["value"], i["n"]) for i in body["items"]}
        for team, (value, n) in expected.items():
            checked += 1
            if team not in got or not close(value, got[team][0]) or got[team][1] != n:
                wrong.append(f"breakdown {metric} by team {team}: expected {value} (n={n}), got {got.get(team)}")
        body = await get_json(client, "/v1/analytics/trends", metric=metric, interval="day", by="team", **RANGE)
        series = {team_key.get(s["key"], s["key"]): s["points"] for s in body["series"]}
        for team, (value, n) in expected.items():
            checked += 1
            points = series.get(team) or [{}]
            if not close(value, points[0].get("value")) or points[0].get("n") != n:
                wrong.append(f"trends {metric} by team {team}: expected {value} (n={n}), got {points}")
    for dim, expected in CREATED_BY.items():
        body = await get_json(client, "/v1/analytics/breakdown", metric="tickets_created", by=dim, **RANGE)
        got = {i["key"]: i["value"] for i in body["items"] if i["n"]}  # a value seen only in other figures: n 0
        checked += len(expected)
        if got != expected:
            wrong.append(f"breakdown tickets_created by {dim}: expected {expected}, got {got}")
    # the downloads carry the same figures, Chinese tag values intact (UTF-8 CSV with BOM, XLSX)
    for fmt in ("csv", "xlsx"):
        response = await client.get("/v1/analytics/breakdown", headers=ADMIN, params={
            "metric": "tickets_created", "by": "tag", "format": fmt, **RANGE})
        assert response.status_code == 200, (fmt, response.status_code, response.text[:300])
        table = download_rows(fmt, response.content)
        got = {row["key"]: float(row["value"]) for row in table if float(row["n"] or 0)}
        checked += len(CREATED_BY["tag"])
        if got != {k: float(v) for k, v in CREATED_BY["tag"].items()}:
            wrong.append(f"breakdown tickets_created by tag as {fmt}: expected {CREATED_BY['tag']}, got {got}")
    for (metric, dim), expected in OTHER_BREAKDOWNS.items():
        body = await get_json(client, "/v1/analytics/breakdown", metric=metric, by=dim, **RANGE)
        got = {i["key"]: (i["value"], i["n"]) for i in body["items"] if i["n"]}
        checked += len(expected)
        if set(got) != set(expected) or any(not close(v, got[k][0]) or got[k][1] != n
                                            for k, (v, n) in expected.items()):
            wrong.append(f"breakdown {metric} by {dim}: expected {expected}, got {got}")
    body = await get_json(client, "/v1/analytics/sla", **RANGE)
    per_metric: dict[str, list[int]] = {}
    for item in body["items"]:
        sums = per_metric.setdefault(item["metric"], [0, 0])
        sums[0] += item["achieved"]
        sums[1] += item["breached"]
    # an outcome folded before its target's sla.applied counts under policy '' until the target is
    # known, and moves then: the emptied row may stay listed with n 0
    by_policy = {(i["policy"], i["metric"]): (i["achieved"], i["breached"]) for i in body["items"] if i["n"]}
    checked += 2 * len(S.SLA_BY_POLICY) + 2 * len(S.SLA_BY_METRIC) + 4
    if by_policy != S.SLA_BY_POLICY:
        wrong.append(f"sla per policy and metric: expected {S.SLA_BY_POLICY}, got {by_policy}")
    if {m: tuple(v) for m, v in per_metric.items()} != S.SLA_BY_METRIC:
        wrong.append(f"sla per metric: expected {S.SLA_BY_METRIC}, got {per_metric}")
    total = body["total"]
    if (total["achieved"], total["breached"], total["n"]) != (320, 60, 380) or not close(
            100 * 320 / 380, total["compliance_percent"]):
        wrong.append(f"sla total: expected 320 achieved, 60 breached, {100 * 320 / 380:.2f} %, got {total}")
    assert not wrong, "\n".join(wrong)
    return checked


#: backlog age buckets (docs/metrics.md), upper bounds exclusive, written out here rather than taken
#: from the code under test
BACKLOG_EDGES = (("lt_1h", timedelta(hours=1)), ("1h_8h", timedelta(hours=8)), ("8h_24h", timedelta(days=1)),
                 ("1d_3d", timedelta(days=3)), ("3d_7d", timedelta(days=7)), ("7d_30d", timedelta(days=30)),
                 ("ge_30d", timedelta.max))


async def check_board(client: Any) -> int:
    """The live board's state figures. The day is in the past, so the wall clock decides nothing
    but the backlog's age buckets: every running target (the unanswered tickets' first response,
    due 18:00 on the day) is overdue and none is at risk, whenever the test runs. The backlog is
    checked against the ages of the 30 open tickets at the clock read around the request (an age
    bucket boundary crossed between the two reads is retried)."""
    open_created = [S.sh(16, 30, i) for i in range(20)] + [S.sh(7, 30, i) for i in range(10)]

    def backlog_at(now: datetime) -> dict[str, int]:
        counts = {name: 0 for name, _ in BACKLOG_EDGES}
        for created in open_created:
            counts[next(name for name, upper in BACKLOG_EDGES if now - created < upper)] += 1
        return counts

    for _ in range(3):
        before = datetime.now(UTC)
        kpis = await get_json(client, "/v1/analytics/kpis", tz="Asia/Shanghai")
        if backlog_at(before) == backlog_at(datetime.now(UTC)):
            break
    wrong = [f"kpis {k}: expected {v}, got {kpis.get(k)}" for k, v in S.BOARD.items() if kpis.get(k) != v]
    if kpis.get("backlog") != backlog_at(before):
        wrong.append(f"kpis backlog: expected {backlog_at(before)}, got {kpis.get('backlog')}")
    # as_of: the newest event folded in, the last survey answer (20:00+19 in Shanghai)
    if kpis.get("as_of") is None or datetime.fromisoformat(kpis["as_of"]) != S.sh(20, 19):
        wrong.append(f"kpis as_of: expected {S.sh(20, 19).isoformat()}, got {kpis.get('as_of')}")
    at_risk = await get_json(client, "/v1/analytics/at-risk", limit=100)
    overdue = sorted((t["ticket_id"], t["metric"]) for t in at_risk["overdue"])
    expected_overdue = sorted((str(S.uid("ticket", "unanswered", i)), "first_response") for i in range(10))
    if overdue != expected_overdue or at_risk["at_risk"]:
        wrong.append(f"at-risk: expected the 10 unanswered first responses overdue and none at risk, got "
                     f"overdue {overdue}, at risk {at_risk['at_risk']}")
    assert not wrong, "\n".join(wrong)
    return len(S.BOARD) + len(BACKLOG_EDGES) + 1 + 10
