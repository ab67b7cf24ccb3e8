"""A web form that showed knowledge-base suggestions passes their id: the ticket.created event
carries it (kb-svc counts the suggestion as followed by a ticket); a bad id is a field error."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

WEB = identity_headers(Principal(kind="channel", id="key-web-kb", channel="web"))


async def _created(db, ticket_id):
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT payload FROM outbox WHERE event_type = 'ticket.created'"))).all()
    return [e for e in (events.decode(r.payload) for r in rows) if str(e.data.ticket_id) == ticket_id]


async def test_web_form_suggestion_id_reaches_ticket_created(client, db):
    suggestion = uuid.uuid4()
    r = await client.post("/v1/channels/web/inbound", headers=WEB, data={
        "subject": "无法申请退款", "description": "退款按钮是灰色的", "email": "kb@example.com",
        "kb_suggestion_id": f" {suggestion} "})
    assert r.status_code == 201, r.text
    [created] = await _created(db, r.json()["ticket_id"])
    assert created.data.kb_suggestion_id == suggestion
    async with db.connect() as conn:  # not kept on the message
        metadata = await conn.scalar(text("SELECT metadata::text FROM messages WHERE ticket_id = :t"),
                                     {"t": r.json()["ticket_id"]})
    assert "kb_suggestion_id" not in (metadata or "")

    plain = await client.post("/v1/channels/web/inbound", headers=WEB,
                              data={"subject": "Hello", "email": "kb@example.com", "kb_suggestion_id": ""})
    assert plain.status_code == 201, plain.text
    [created] = await _created(db, plain.json()["ticket_id"])
    assert created.data.kb_suggestion_id is None


async def test_a_malformed_suggestion_id_is_a_field_error(client):
    for bad in ("not-a-uuid", "1" * 33, "{" + str(uuid.uuid4()) + "}", "urn:uuid:" + str(uuid.uuid4())):
        r = await client.post("/v1/channels/web/inbound", headers=WEB,
                              data={"subject": "Hello", "email": "kb@example.com", "kb_suggestion_id": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "kb_suggestion_id" in r.text
