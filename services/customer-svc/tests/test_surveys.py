"""Surveys on the real database and broker: settings, scheduling from ticket events (one CSAT per
ticket, NPS interval, delay, disabled, skipped without address, concurrent events), the worker
sending with a signed link, the public page and answers (form and JSON, once), lists."""

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from customer_svc.pii import codec
from customer_svc.surveys import service, tokens
from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, running_app, service_env, wait_for

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
KEY = "s" * 40
BASE = "https://help.example.com"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _env(monkeypatch, infra, customer_db) -> str:
    topics = service_env(monkeypatch, infra, "CUSTOMER_", customer_db)
    monkeypatch.setenv("CUSTOMER_SURVEY_TOKEN_KEY", KEY)
    monkeypatch.setenv("CUSTOMER_SURVEY_POLL_INTERVAL_S", "0.3")
    monkeypatch.setenv("CUSTOMER_CONSUMER_RETRY_BASE_S", "0.05")
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE)
    return topics


@pytest.fixture
async def svc(infra, customer_db, monkeypatch):
    """The whole service with a survey key, a quick survey worker and a public base URL."""
    topics = _env(monkeypatch, infra, customer_db)
    from customer_svc.config import Settings
    from customer_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        client.topics = topics
        yield client


@pytest.fixture
async def quiet(infra, customer_db, monkeypatch):
    """The API with the survey key, no consumer, relay or worker (answers to surveys the test writes)."""
    _env(monkeypatch, infra, customer_db)
    monkeypatch.setenv("CUSTOMER_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("CUSTOMER_RELAY_ENABLED", "false")
    monkeypatch.setenv("CUSTOMER_SURVEYS_ENABLED", "false")
    from customer_svc.config import Settings
    from customer_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


async def rows(db, sql: str, **params) -> list:
    async with db.connect() as conn:
        return (await conn.execute(text(sql), params)).mappings().all()


async def scalar(db, sql: str, **params):
    async with db.connect() as conn:
        return await conn.scalar(text(sql), params)


async def outbox(db, event_type: str) -> list:
    return [events.decode(r["payload"]) for r in await rows(
        db, "SELECT payload FROM outbox WHERE event_type = :t ORDER BY seq", t=event_type)]


async def put_settings(client, **values) -> dict:
    body = {"csat_enabled": True, "csat_delay_minutes": 0, "nps_enabled": False, "nps_interval_days": 90, **values}
    r = await client.put("/v1/surveys/settings", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def ticket_created(requester: dict, *, number: int = 42, subject: str = "打印机坏了", language: str | None = "zh-CN",
                   type_: str | None = None) -> events.TicketCreated:
    tid = uuid.uuid4()
    return events.TicketCreated(source="test", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject=subject, status="open", priority="normal", channel="email", number=number,
        language=language, type=type_, team_id=uuid.uuid4(), requester=events.Requester(**requester),
        created_by="channel:k", created_at=datetime.now(UTC)))


def status_changed(ticket: events.TicketCreated, from_status: str, to_status: str, version: int,
                   at: datetime | None = None, reason: str | None = None) -> events.TicketStatusChanged:
    return events.TicketStatusChanged(source="test", subject=ticket.subject, data=events.TicketStatusChangedData(
        ticket_id=ticket.data.ticket_id, number=ticket.data.number, status=to_status, team_id=ticket.data.team_id,
        version=version, from_status=from_status, to_status=to_status, changed_at=at or datetime.now(UTC),
        reason=reason))


async def consumed(db, *evts, timeout: float = 30.0) -> None:
    """Wait until the consumer committed every one of ``evts``."""
    ids = [str(e.id) for e in evts]

    async def done():
        return await scalar(db, "SELECT count(*) FROM inbox WHERE event_id = ANY(CAST(:ids AS uuid[]))",
                            ids=ids) == len(ids)

    await wait_for(done, timeout)


def token_of(link: str) -> str:
    assert link.startswith(f"{BASE}/v1/surveys/"), link
    return link.rsplit("/", 1)[1]


# --- settings ----------------------------------------------------------------------------------


async def test_settings_read_by_supervisors_changed_by_admins(quiet):
    r = await quiet.get("/v1/surveys/settings", headers=SUPERVISOR)
    assert r.status_code == 200 and r.headers["etag"] == 'W/"1"'
    assert r.json() | {"updated_at": None} == {"csat_enabled": True, "csat_delay_minutes": 60, "nps_enabled": True,
                                                "nps_interval_days": 90, "version": 1, "updated_at": None}
    assert (await quiet.get("/v1/surveys/settings", headers=AGENT)).status_code == 403
    body = {"csat_enabled": False, "csat_delay_minutes": 0, "nps_enabled": True, "nps_interval_days": 30}
    denied = await quiet.put("/v1/surveys/settings", json=body, headers=SUPERVISOR)
    assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"
    for field, value in (("csat_delay_minutes", -1), ("csat_delay_minutes", 10_081), ("nps_interval_days", 0),
                         ("nps_interval_days", 3_651)):
        bad = await quiet.put("/v1/surveys/settings", json={**body, field: value}, headers=ADMIN)
        assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == [f"body.{field}"], bad.text
    missing = await quiet.put("/v1/surveys/settings", json={"csat_enabled": True}, headers=ADMIN)
    assert missing.status_code == 422
    stale = await quiet.put("/v1/surveys/settings", json=body, headers={**ADMIN, "If-Match": 'W/"7"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    ok = await quiet.put("/v1/surveys/settings", json=body, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == 'W/"2"'
    assert {k: ok.json()[k] for k in body} == body
    assert (await quiet.get("/v1/surveys/settings", headers=ADMIN)).json()["version"] == 2
    # the settings' path is theirs alone: a 405 there names their methods, not the link's POST
    other = await quiet.post("/v1/surveys/settings", json=body, headers=ADMIN)
    assert other.status_code == 405 and set(other.headers["allow"].split(", ")) == {"GET", "PUT"}
    edges = {**body, "csat_delay_minutes": 10_080, "nps_interval_days": 3_650}
    assert (await quiet.put("/v1/surveys/settings", json=edges, headers=ADMIN)).status_code == 200


# --- the whole loop: a solved ticket, the sent link, the page, the answer ----------------------


async def test_a_solved_ticket_sends_one_csat_answered_once(svc, infra, db):
    await put_settings(svc, csat_delay_minutes=0)
    created = ticket_created({"name": "张三", "email": "zhang@example.com"}, subject='打印机 <b>坏了</b>')
    solved = status_changed(created, "open", "solved", 2)
    await produce(infra.kafka_bootstrap, svc.topics, created, solved, solved)  # solved delivered twice

    async def sent():
        found = await outbox(db, "survey.delivery_requested")
        return found or None

    [delivery] = await wait_for(sent, 30)
    data = delivery.data
    assert (data.kind, data.ticket_id, data.number, data.subject, data.channel, data.language) == (
        "csat", created.data.ticket_id, 42, "打印机 <b>坏了</b>", "email", "zh-CN")
    assert data.recipient.email == "zhang@example.com"
    token = token_of(data.link)
    [survey] = await rows(db, "SELECT * FROM surveys")
    assert (survey["status"], survey["kind"], survey["team_id"]) == ("sent", "csat", created.data.team_id)
    assert survey["expires_at"] == data.expires_at
    assert timedelta(days=7) - timedelta(seconds=5) < survey["expires_at"] - survey["sent_at"] <= timedelta(days=7)
    [sent_event] = await outbox(db, "survey.sent")
    assert (sent_event.data.survey_id, sent_event.data.channel, sent_event.subject) == (
        survey["id"], "email", str(survey["id"]))
    assert await scalar(db, "SELECT count(*) FROM customer_timeline WHERE kind = 'survey_sent' AND ref_id = :i",
                        i=survey["id"]) == 1

    # the page, in the ticket's language, with its number and the subject escaped
    page = await svc.get(f"/v1/surveys/{token}", headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for header, value in (("cache-control", "no-store"), ("referrer-policy", "no-referrer"),
                          ("x-frame-options", "DENY")):
        assert page.headers[header] == value
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "工单 #42" in page.text and "&lt;b&gt;" in page.text and "<b>坏" not in page.text
    assert page.text.count('name="rating"') == 5

    # the browser's form, then a second answer by JSON: refused, nothing changes
    form = await svc.post(f"/v1/surveys/{token}", content="rating=1&comment=%E5%A4%AA%E6%85%A2%E4%BA%86",
                          headers={**HTML, "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 200 and "感谢" in form.text, form.text
    again = await svc.post(f"/v1/surveys/{token}", json={"rating": 5})
    assert again.status_code == 409 and again.json()["type"].endswith("/survey-answered")
    again_page = await svc.get(f"/v1/surveys/{token}", headers=HTML)
    assert again_page.status_code == 409 and "已经提交" in again_page.text
    [answered] = await rows(db, "SELECT status, rating, score, comment, comment_enc FROM surveys")
    # the comment is stored encrypted only (docs/security.md, "Personal data at rest")
    assert codec.codec().comment_of(answered["comment"], answered["comment_enc"]) == "太慢了"
    assert dict(answered) | {"comment_enc": None} == {"status": "answered", "rating": 1, "score": None,
                                                      "comment": None, "comment_enc": None}
    [event] = await outbox(db, "survey.answered")
    assert (event.data.rating, event.data.comment, event.data.ticket_id, event.data.customer_id) == (
        1, "太慢了", created.data.ticket_id, survey["customer_id"])
    assert await scalar(db, "SELECT count(*) FROM insight_dirty WHERE customer_id = :c", c=survey["customer_id"]) == 1
    assert await scalar(db, "SELECT count(*) FROM customer_timeline WHERE kind = 'survey_answered'") == 1

    # reopened and solved again, then closed: still one CSAT for the ticket
    reopened = status_changed(created, "solved", "open", 3)
    resolved = status_changed(created, "open", "solved", 4)
    closed = status_changed(created, "solved", "closed", 5)
    await produce(infra.kafka_bootstrap, svc.topics, reopened, resolved, closed)
    await consumed(db, reopened, resolved, closed)
    assert await scalar(db, "SELECT count(*) FROM surveys") == 1
    assert len(await outbox(db, "survey.delivery_requested")) == 1

    # readable through the API
    listed = await svc.get("/v1/surveys", params={"kind": "csat", "status": "answered"}, headers=SUPERVISOR)
    assert listed.status_code == 200 and [s["rating"] for s in listed.json()["items"]] == [1]
    assert (await svc.get("/v1/surveys", headers=AGENT)).status_code == 403
    mine = await svc.get(f"/v1/customers/{survey['customer_id']}/surveys", headers=AGENT)
    assert mine.status_code == 200 and mine.json()["items"][0]["comment"] == "太慢了"
    assert (await svc.get(f"/v1/customers/{uuid.uuid4()}/surveys", headers=AGENT)).status_code == 404
    by_ticket = await svc.get("/v1/surveys", params={"ticket_id": str(uuid.uuid4())}, headers=ADMIN)
    assert by_ticket.json() == {"items": [], "next_cursor": None}


async def test_scheduling_rules(svc, infra, db):
    """Delay honoured, NPS once per interval per customer, nothing when disabled, skipped without
    a reachable address, no survey for a care task."""
    await put_settings(svc, csat_delay_minutes=90, nps_enabled=True, nps_interval_days=30)
    first = ticket_created({"email": "li@example.com"}, number=1)
    second = ticket_created({"email": "li@example.com"}, number=2, language=None)
    unreachable = ticket_created({"external_id": "erp:C-9"}, number=3)
    care = ticket_created({"email": "li@example.com"}, number=4, type_="care")
    at = datetime.now(UTC)
    evts = [first, second, unreachable, care, status_changed(first, "open", "solved", 2, at),
            status_changed(second, "pending", "closed", 2, at), status_changed(unreachable, "open", "solved", 2, at),
            status_changed(care, "open", "solved", 2, at)]
    await produce(infra.kafka_bootstrap, svc.topics, *evts)
    await consumed(db, *evts)

    async def nps_sent():  # due at once (sent by the worker)
        return await scalar(db, "SELECT count(*) FROM surveys WHERE kind = 'nps' AND status = 'sent'") == 1

    await wait_for(nps_sent, 10)
    found = await rows(db, "SELECT s.kind, s.status, s.send_at, t.number FROM surveys s "
                           "JOIN customer_tickets t ON t.ticket_id = s.ticket_id ORDER BY t.number, s.kind")
    csat = {r["number"]: (r["status"], r["send_at"]) for r in found if r["kind"] == "csat"}
    assert csat == {1: ("scheduled", at + timedelta(minutes=90)), 2: ("scheduled", at + timedelta(minutes=90)),
                    3: ("skipped", at + timedelta(minutes=90))}
    # one NPS for the customer of tickets 1 and 2 (whichever was applied first: their events are on
    # different partitions), sent at once; the unreachable customer's is skipped
    nps = sorted((r["number"], r["status"]) for r in found if r["kind"] == "nps")
    assert len(nps) == 2 and nps[0][0] in (1, 2) and nps[0][1] == "sent" and nps[1] == (3, "skipped")

    await put_settings(svc, csat_enabled=False, nps_enabled=False)
    off = ticket_created({"email": "wang@example.com"})
    off_solved = status_changed(off, "open", "solved", 2)
    await produce(infra.kafka_bootstrap, svc.topics, off, off_solved)
    await consumed(db, off, off_solved)
    assert await scalar(db, "SELECT count(*) FROM surveys WHERE ticket_id = :t", t=off.data.ticket_id) == 0


async def test_a_deleted_ticket_asks_nothing_and_forgets_what_was_pending(svc, infra, db):
    """A deletion closes the ticket (spam, a mistake): no survey, and the CSAT an earlier solve
    scheduled is skipped; a restore (back to solved) asks nothing new either."""
    await put_settings(svc, csat_delay_minutes=90, nps_enabled=False)
    spam = ticket_created({"email": "spam@example.com"}, number=7)
    solved = ticket_created({"email": "solved-then-deleted@example.com"}, number=8)
    evts = [spam, solved, status_changed(spam, "open", "closed", 2, reason="deleted"),
            status_changed(solved, "open", "solved", 2), status_changed(solved, "solved", "closed", 3, reason="deleted"),
            status_changed(solved, "closed", "solved", 4, reason="restored")]
    await produce(infra.kafka_bootstrap, svc.topics, *evts)
    await consumed(db, *evts)
    assert await scalar(db, "SELECT count(*) FROM surveys WHERE ticket_id = :t", t=spam.data.ticket_id) == 0
    found = await rows(db, "SELECT kind, status FROM surveys WHERE ticket_id = :t", t=solved.data.ticket_id)
    assert [(r["kind"], r["status"]) for r in found] == [("csat", "skipped")]


async def test_concurrent_resolutions_schedule_one_csat_and_one_nps(quiet, customer_db, db):
    """Two transactions at once: the same ticket's CSAT twice, two tickets of one customer with NPS
    due: the unique index and the per-customer lock leave one of each."""
    from helpdesk_common.db import create_raw_pool

    await put_settings(quiet, nps_enabled=True)
    customer_id = uuid.uuid4()
    tickets = [uuid.uuid4(), uuid.uuid4()]
    async with db.begin() as conn:
        await conn.execute(text("INSERT INTO customers (id, name) VALUES (:c, 'x')"), {"c": customer_id})
        await conn.execute(text("INSERT INTO customer_identities (kind, value, customer_id) VALUES "
                                "('email', 'c@example.com', :c)"), {"c": customer_id})
        for number, tid in enumerate(tickets):
            await conn.execute(text(
                "INSERT INTO customer_tickets (ticket_id, customer_id, number, status, created_at, updated_at) "
                "VALUES (:t, :c, :n, 'solved', now(), now())"), {"t": tid, "c": customer_id, "n": number})
    pool = await create_raw_pool(customer_db, size=4)
    try:
        async def resolve(ticket_id):
            async with pool.acquire() as conn, conn.transaction():
                scheduled = await service.schedule_for_ticket(conn, ticket_id=ticket_id, team_id=None,
                                                              resolved_at=datetime.now(UTC))
                await asyncio.sleep(0.2)  # hold the transaction open while the other one runs
                return scheduled

        await asyncio.gather(resolve(tickets[0]), resolve(tickets[0]), resolve(tickets[1]))
    finally:
        await pool.close()
    counts = await rows(db, "SELECT kind, count(*) AS n FROM surveys GROUP BY kind ORDER BY kind")
    assert [(r["kind"], r["n"]) for r in counts] == [("csat", 2), ("nps", 1)]
    assert await scalar(db, "SELECT count(DISTINCT ticket_id) FROM surveys WHERE kind = 'csat'") == 2


# --- answers by JSON, tokens that do not work ----------------------------------------------------


async def sent_survey(db, *, kind: str, expires_in: timedelta = timedelta(days=1), language: str = "en") -> str:
    """A sent survey written directly, and its token."""
    survey_id, customer_id = uuid.uuid4(), uuid.uuid4()
    expires = int((datetime.now(UTC) + expires_in).timestamp())
    async with db.begin() as conn:
        await conn.execute(text("INSERT INTO customers (id, name) VALUES (:c, 'x')"), {"c": customer_id})
        await conn.execute(text(
            "INSERT INTO surveys (id, kind, customer_id, channel, language, status, send_at, sent_at, expires_at) "
            "VALUES (:i, :k, :c, 'email', :l, 'sent', now(), now(), to_timestamp(:e))"),
            {"i": survey_id, "k": kind, "c": customer_id, "l": language, "e": expires})
    return tokens.mint(KEY.encode(), survey_id=survey_id, expires=expires)


async def test_nps_answer_by_json_once(quiet, db):
    token = await sent_survey(db, kind="nps")
    page = await quiet.get(f"/v1/surveys/{token}", headers=HTML)
    assert page.status_code == 200 and len(re.findall(r'name="score"', page.text)) == 11
    for body, field in (({"score": 11}, "body.score"), ({"rating": 3}, "body.rating"), ({}, "body.score"),
                        ({"score": 5, "comment": "长" * 2001}, "body.comment"), ({"score": "9"}, "body.score")):
        bad = await quiet.post(f"/v1/surveys/{token}", json=body)
        assert bad.status_code == 422 and field in [e["field"] for e in bad.json()["errors"]], (body, bad.text)
    assert (await quiet.post(f"/v1/surveys/{token}", content=b"{", headers={"Content-Type": "application/json"})
            ).status_code == 400
    ok = await quiet.post(f"/v1/surveys/{token}", json={"score": 9, "comment": "很好 great"})
    assert ok.status_code == 200, ok.text
    assert ok.json() | {"id": None, "answered_at": None} == {
        "id": None, "kind": "nps", "status": "answered", "rating": None, "score": 9, "comment": "很好 great",
        "answered_at": None}
    assert ok.headers["cache-control"] == "no-store"
    second = await quiet.post(f"/v1/surveys/{token}", json={"score": 0})
    assert second.status_code == 409
    assert await scalar(db, "SELECT score FROM surveys") == 9
    assert len(await outbox(db, "survey.answered")) == 1


async def test_a_bad_form_shows_the_page_again(quiet, db):
    token = await sent_survey(db, kind="csat", language="zh-CN")
    r = await quiet.post(f"/v1/surveys/{token}", content="comment=x",
                         headers={**HTML, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and "请选择一个评分" in r.text and ">x</textarea>" in r.text
    assert await scalar(db, "SELECT status FROM surveys") == "sent"


async def test_expired_and_invalid_tokens_change_nothing(quiet, db):
    expired = await sent_survey(db, kind="csat", expires_in=timedelta(seconds=-5))
    r = await quiet.post(f"/v1/surveys/{expired}", json={"rating": 5})
    assert r.status_code == 410 and r.headers["content-type"] == "application/problem+json"
    page = await quiet.get(f"/v1/surveys/{expired}", headers=HTML)
    assert page.status_code == 410 and "expired" in page.text
    valid = await sent_survey(db, kind="csat")
    survey_id, expiry = tokens.verify(KEY.encode(), valid, now=0).survey_id, valid.split(".")[2]
    forged = tokens.mint(b"x" * 40, survey_id=survey_id, expires=int(expiry))
    stretched = valid.replace(f".{expiry}.", f".{int(expiry) + 86_400}.")
    for token in (forged, stretched, "settingsx", "hsv1.a.b.c", "x" * 5000):
        assert (await quiet.post(f"/v1/surveys/{token}", json={"rating": 5})).status_code == 404, token
        assert (await quiet.get(f"/v1/surveys/{token}")).status_code == 404
    assert (await quiet.get(f"/v1/surveys/{forged}", headers={**HTML, "Accept-Language": "zh-CN"})).text.count("无效") == 1
    assert await scalar(db, "SELECT count(*) FROM surveys WHERE status = 'answered'") == 0
    assert await outbox(db, "survey.answered") == []
