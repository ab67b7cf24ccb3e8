"""The whole e-mail corpus through intake on the real database.

For every corpus message: auto-replies, bounces and bulk mail answer 202 and create nothing;
a reply (In-Reply-To / References, or a [#number] in the subject) lands on the ticket it
answers — set up first from the same sender with the referenced Message-ID — and every
other message opens its own ticket; the stored message keeps the text the parser extracted
(new text in, quoted history out). Expectations come from the parser's corpus table.
"""

import importlib.util
import sys
import uuid
from pathlib import Path

from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers
from ticket_svc.channels.email import parse_email
from ticket_svc.channels.inbound import Ignored

EMAIL_KEY = Principal(kind="channel", id="mailbox-1", channel="email")
AGENT = Principal(kind="user", id="u-agent", role="agent")
CORPUS_DIR = Path(__file__).parents[1] / "channels" / "email"


def corpus_cases() -> dict:
    spec = importlib.util.spec_from_file_location("email_corpus_cases", CORPUS_DIR / "test_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module.CASES


def original(ref: str, sender: str, subject: str) -> bytes:
    return (f"From: <{sender}>\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{ref}>\r\n"
            "Date: Mon, 23 Nov 2026 09:00:00 +0800\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
            "the original request\r\n").encode()


async def post(client, raw: bytes):
    return await client.post("/v1/channels/email/inbound", content=raw,
                             headers={**identity_headers(EMAIL_KEY), "Content-Type": "message/rfc822"})


async def test_every_corpus_message_lands_right(client, db):
    cases = corpus_cases()
    assert len(cases) >= 30
    outcomes = {"ignored": 0, "new": 0, "threaded": 0}
    for name, expect in sorted(cases.items()):
        raw = (CORPUS_DIR / "corpus" / name).read_bytes()
        parsed = parse_email(raw)
        async with db.connect() as conn:
            before = await conn.scalar(text("SELECT count(*) FROM tickets"))
        if isinstance(parsed, Ignored):
            r = await post(client, raw)
            assert r.status_code == 202, (name, r.text)
            assert r.json()["ignored"] == parsed.reason
            async with db.connect() as conn:
                assert await conn.scalar(text("SELECT count(*) FROM tickets")) == before, name
            outcomes["ignored"] += 1
            continue
        target = None
        if parsed.thread_refs and parsed.sender.email:
            ref = parsed.thread_refs[-1]
            setup = await post(client, original(ref, parsed.sender.email, f"original of {name}"))
            assert setup.status_code in (200, 201), (name, setup.text)
            target = setup.json()["ticket_id"]
        r = await post(client, raw)
        assert r.status_code == 201, (name, r.text)
        body = r.json()
        if target is not None:
            assert body["created"] is False and body["ticket_id"] == target, name
            outcomes["threaded"] += 1
        else:
            assert body["created"] is True, name
            outcomes["new"] += 1
        messages = (await client.get(f"/v1/tickets/{body['ticket_id']}/messages", params={"limit": 100},
                                     headers=identity_headers(AGENT))).json()["items"]
        stored = next(m for m in messages if m["id"] == body["message_id"])
        for fragment in expect.body_has:
            assert fragment in stored["body_text"], (name, fragment)
        for fragment in expect.body_lacks:
            assert fragment not in stored["body_text"], (name, fragment)
        assert [a["filename"] for a in stored["attachments"]] == [a[0] for a in expect.attachments], name
        again = await post(client, raw)  # a second delivery of the same message has no second effect
        assert again.status_code == 200 and again.json()["message_id"] == body["message_id"], name
    assert outcomes["ignored"] >= 10 and outcomes["threaded"] >= 10 and outcomes["new"] >= 5, outcomes


async def test_ticket_hint_threads_only_for_the_requester(client):
    first = (await post(client, original(f"{uuid.uuid4()}@x", "owner@example.com", "订单问题"))).json()
    ticket = (await client.get(f"/v1/tickets/{first['ticket_id']}", headers=identity_headers(AGENT))).json()
    reply = original(f"{uuid.uuid4()}@x", "owner@example.com", f"Re: [#{ticket['number']}] 订单问题")
    assert (await post(client, reply)).json()["ticket_id"] == ticket["id"]
    spoof = original(f"{uuid.uuid4()}@x", "someone@else.example", f"Re: [#{ticket['number']}] 订单问题")
    assert (await post(client, spoof)).json()["ticket_id"] != ticket["id"]
