"""GET /v1/customers/{id}/360: every part from its source, in one read, through the API."""

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from customer_svc.overview import service as overview
from customer_svc.ticket_facts import service as facts
from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k1", channel="web"))
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def no_insight_worker(monkeypatch):
    """Requested before ``api``: the insight worker would rescore the stored insights a test writes."""
    monkeypatch.setenv("CUSTOMER_INSIGHTS_ENABLED", "false")


async def ticket(raw, customer_id: uuid.UUID, *, number: int, created: datetime, ticket_type: str | None = None,
                 channel: str = "email",
                 responded_after: timedelta | None = None, solved_after: timedelta | None = None,
                 customer_message: tuple[datetime, str] | None = None) -> uuid.UUID:
    """A ticket's life through the projection's handlers, as the consumer would apply it."""
    ticket_id = uuid.uuid4()
    async with raw.transaction():
        await facts.ticket_created(raw, events.TicketCreatedData(
            ticket_id=ticket_id, subject=f"问题 {number}", status="new", priority="normal", type=ticket_type,
            channel=channel, requester=events.Requester(), customer_id=customer_id, created_by="channel:k",
            created_at=created, number=number))
        if responded_after is not None:
            await facts.message_added(raw, events.TicketMessageAddedData(
                ticket_id=ticket_id, message_id=uuid.uuid4(), author_kind="agent", public=True, first_response=True,
                response=True, created_at=created + responded_after))
        if customer_message is not None:
            await facts.message_added(raw, events.TicketMessageAddedData(
                ticket_id=ticket_id, message_id=uuid.uuid4(), author_kind="customer", public=True,
                channel=customer_message[1], created_at=customer_message[0]))
        if solved_after is not None:
            await facts.status_changed(raw, events.TicketStatusChanged(source="test", subject=str(ticket_id),
                                       data=events.TicketStatusChangedData(
                                           ticket_id=ticket_id, version=3, from_status="open", to_status="solved",
                                           changed_at=created + solved_after)))
    return ticket_id


async def test_the_360_view_gathers_every_part(no_insight_worker, api, raw):
    org = await api.post("/v1/organizations", json={"name": "上海茶叶有限公司", "domains": ["tea.example.cn"],
                                                    "tier": "gold"}, headers=SUPERVISOR)
    assert org.status_code == 201, org.text
    owner = str(uuid.uuid4())
    r = await api.post("/v1/customers", json={
        "name": "李娜", "tier": "vip", "account_owner_id": owner,
        "identities": [{"kind": "email", "value": "li.na@tea.example.cn"}, {"kind": "phone", "value": "+86 139 1234 5678"}],
    }, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    customer_id = uuid.UUID(r.json()["id"])

    # tickets: two solved in the window (first responses 10 and 30 min, resolutions 60 and 180 min),
    # one solved long ago, two open, a care task and a system ticket (tasks, counted apart)
    t1 = await ticket(raw, customer_id, number=1, created=NOW - timedelta(days=10),
                      responded_after=timedelta(minutes=10), solved_after=timedelta(minutes=60))
    await ticket(raw, customer_id, number=2, created=NOW - timedelta(days=5),
                 responded_after=timedelta(minutes=30), solved_after=timedelta(minutes=180),
                 customer_message=(NOW - timedelta(days=5) + timedelta(minutes=1), "email"))
    await ticket(raw, customer_id, number=3, created=NOW - timedelta(days=200), solved_after=timedelta(days=1))
    await ticket(raw, customer_id, number=4, created=NOW - timedelta(days=2))
    await ticket(raw, customer_id, number=5, created=NOW - timedelta(days=1),
                 customer_message=(NOW - timedelta(hours=3), "wechat"))
    await ticket(raw, customer_id, number=6, created=NOW - timedelta(hours=1), ticket_type="care", channel="system")
    await ticket(raw, customer_id, number=7, created=NOW - timedelta(minutes=30), channel="system")  # an automation's

    orders = f"/v1/customers/{customer_id}/orders"
    for external_id, amount, currency, status, days in (("A", "100.50", "CNY", "paid", 30), ("B", "20", "USD", "paid", 20),
                                                        ("C", "999", "CNY", "cancelled", 3)):
        body = {"external_id": external_id, "ordered_at": (NOW - timedelta(days=days)).isoformat(), "amount": amount,
                "currency": currency, "status": status}
        assert (await api.post(orders, json=body, headers=SUPERVISOR)).status_code == 201

    for rating, comment, days in ((5, None, 100), (2, "太慢了", 2)):
        await raw.execute(
            "INSERT INTO surveys (id, kind, customer_id, ticket_id, status, send_at, answered_at, rating, comment) "
            "VALUES ($1, 'csat', $2, $3, 'answered', $4, $4, $5, $6)",
            uuid.uuid4(), customer_id, t1 if rating == 2 else None, NOW - timedelta(days=days), rating, comment)
    await raw.execute("INSERT INTO surveys (id, kind, customer_id, status, send_at, answered_at, rating) "
                      "VALUES ($1, 'csat', $2, 'answered', $3, $3, 1)", uuid.uuid4(), customer_id,
                      NOW - timedelta(days=400))  # outside the average's year
    await raw.execute("INSERT INTO surveys (id, kind, customer_id, status, send_at, answered_at, score, comment) "
                      "VALUES ($1, 'nps', $2, 'answered', $3, $3, 6, 'ok')", uuid.uuid4(), customer_id,
                      NOW - timedelta(days=7))
    reasons = [{"factor": "sla_breaches", "points": 20,  # the stored shape (scoring.service.stored_reason)
                "message": {"en": "2 tickets breached an SLA", "zh-CN": "2个工单违反了SLA"}}]
    await raw.execute(
        "INSERT INTO customer_insights (customer_id, recency_days, frequency, monetary, r, f, m, segment, rfm_at, "
        "churn_score, churn_band, churn_reasons, churn_at) VALUES ($1, 20, 2, 242.50, 5, 4, 4, 'important_value', "
        "now(), 72, 'high', $2, now())", customer_id, reasons)

    r = await api.get(f"/v1/customers/{customer_id}/360", headers=AGENT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"customer", "organization", "tickets", "csat", "nps", "rfm", "churn_risk", "orders",
            "last_contact"} <= set(body)
    assert body["customer"]["name"] == "李娜" and body["customer"]["id"] == str(customer_id)
    assert [i["kind"] for i in body["customer"]["identities"]] == ["email", "phone"]
    assert (body["tier"], body["account_owner_id"]) == ("vip", owner)
    assert body["organization"] == {"id": org.json()["id"], "name": "上海茶叶有限公司", "tier": "gold"}

    tickets = body["tickets"]
    assert (tickets["open"], tickets["total"], tickets["solved_recently"], tickets["open_tasks"]) == (2, 5, 2, 2)
    assert [t["number"] for t in tickets["recent"]] == [7, 6, 5, 4, 2, 1, 3]  # open newest first, then last solved
    assert set(tickets["recent"][0]) == {"id", "number", "subject", "status", "priority", "type", "channel",
                                         "created_at", "first_response_at", "solved_at", "closed_at"}
    assert tickets["first_response_minutes"] == {"median": 20.0, "average": 20.0}
    assert tickets["resolution_minutes"] == {"median": 120.0, "average": 120.0}
    assert body["last_contact"] == {"at": (NOW - timedelta(hours=3)).isoformat().replace("+00:00", "Z"),
                                    "channel": "wechat"}

    assert body["csat"]["average"] == 3.5 and body["csat"]["count"] == 2
    assert (body["csat"]["last"]["rating"], body["csat"]["last"]["comment"], body["csat"]["last"]["ticket_id"]) == (
        2, "太慢了", str(t1))
    assert (body["nps"]["last"]["score"], body["nps"]["last"]["comment"]) == (6, "ok")
    assert (body["rfm"]["r"], body["rfm"]["f"], body["rfm"]["m"], body["rfm"]["segment"]) == (5, 4, 4, "important_value")
    assert body["rfm"]["segment_name"] == {"en": "Important value", "zh-CN": "重要价值客户"}
    assert (body["churn_risk"]["score"], body["churn_risk"]["band"], body["churn_risk"]["reasons"]) == (72, "high", reasons)

    totals = body["orders"]
    assert (totals["count"], totals["total_amount"], totals["currency"], totals["complete"]) == (2, "100.50", "CNY", True)
    assert totals["by_currency"] == [{"currency": "CNY", "count": 1, "amount": "100.50"},
                                     {"currency": "USD", "count": 1, "amount": "20.00"}]
    assert totals["unconverted_currencies"] == ["USD"]
    assert totals["last"]["external_id"] == "C" and totals["last"]["status"] == "cancelled"
    assert totals["last_at"] == (NOW - timedelta(days=20)).isoformat().replace("+00:00", "Z")


async def test_a_customer_with_nothing_yet(api):
    r = await api.post("/v1/customers", json={"name": "Empty", "identities": [{"kind": "external:api", "value": "E-1"}]}, headers=SUPERVISOR)
    customer_id = r.json()["id"]
    body = (await api.get(f"/v1/customers/{customer_id}/360", headers=AGENT)).json()
    assert body["organization"] is None
    assert body["tickets"]["open"] == body["tickets"]["total"] == 0 and body["tickets"]["recent"] == []
    assert body["tickets"]["first_response_minutes"] == {"median": None, "average": None}
    assert body["csat"] == {"average": None, "count": 0, "window_days": 365, "last": None}
    assert body["nps"] == {"last": None}
    assert body["rfm"]["segment"] is None and body["churn_risk"]["score"] is None
    assert body["churn_risk"]["reasons"] == []
    assert (body["orders"]["count"], body["orders"]["total_amount"], body["orders"]["last"]) == (0, "0.00", None)
    assert body["last_contact"] == {"at": None, "channel": None}


async def test_who_may_read_it(api):
    assert (await api.get(f"/v1/customers/{uuid.uuid4()}/360", headers=AGENT)).status_code == 404
    assert (await api.get(f"/v1/customers/{uuid.uuid4()}/360", headers=CHANNEL)).status_code == 403
    assert (await api.get(f"/v1/customers/{uuid.uuid4()}/360")).status_code == 401
    assert (await api.get("/v1/customers/not-a-uuid/360", headers=AGENT)).status_code == 422


def test_totals_convert_what_has_a_rate():
    from decimal import Decimal

    rows = [{"currency": "CNY", "count": 2, "amount": Decimal("10.5"), "last_at": NOW, "scanned": 3},
            {"currency": "EUR", "count": 0, "amount": Decimal("0"), "last_at": None, "scanned": 2},  # all cancelled
            {"currency": "JPY", "count": 1, "amount": Decimal("1000"), "last_at": NOW, "scanned": 1},
            {"currency": "USD", "count": 1, "amount": Decimal("3"), "last_at": NOW, "scanned": 1}]
    part = overview.orders_part(rows, None, base_currency="CNY", rates={"USD": Decimal("7.1")})
    assert (part["count"], part["total_amount"], part["unconverted_currencies"]) == (4, "31.80", ["JPY"])
    assert [c["currency"] for c in part["by_currency"]] == ["CNY", "JPY", "USD"] and part["complete"] is True
    assert orjson.loads(orjson.dumps(part["by_currency"]))[1] == {"currency": "JPY", "count": 1, "amount": "1000"}
    full = overview.orders_part([{**rows[0], "scanned": overview.ORDER_SCAN_LIMIT - 1}, rows[1]], None,
                                base_currency="CNY", rates={})
    assert full["complete"] is False
