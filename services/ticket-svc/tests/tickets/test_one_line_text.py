"""Subjects and names are one clean line at every entry (issue 9, "Also fix" 1): CR/LF would be a
header injection once replies go out by mail, bidi overrides garble agents' lists."""

import base64
import json

import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = Principal(kind="user", id="u-admin", role="admin")
AGENT = Principal(kind="user", id="u-agent", role="agent")
API = Principal(kind="channel", id="api-key", channel="api")

DIRTY = "Refund\r\nBcc: victim@example.com\t\u202einvoice\u2066 \x85 now\u3000 "
CLEAN = "Refund Bcc: victim@example.com invoice now"
EMPTY = ["", " \r\n\t", "\u202e\u2069", "\x85\x1c"]




def body(subject: str) -> dict:
    return {"subject": subject, "description": "d", "requester": {"name": "A\r\nB\u202e", "email": "a@example.com"}}


async def create(client, subject: str):
    return await client.post("/v1/tickets", json=body(subject), headers=identity_headers(API))


def field_of(response) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


async def test_api_create_and_patch_clean_the_subject(client):
    created = await create(client, DIRTY)
    assert created.status_code == 201, created.text
    assert created.json()["subject"] == CLEAN
    assert created.json()["requester"]["name"] == "A B"
    url = f"/v1/tickets/{created.json()['id']}"
    patched = await client.patch(url, json={"subject": "New\nsubject\u202d!"}, headers=identity_headers(AGENT))
    assert patched.status_code == 200, patched.text
    assert patched.json()["subject"] == "New subject!"


@pytest.mark.parametrize("subject", EMPTY)
async def test_a_subject_with_nothing_visible_is_422(client, subject):
    refused = await create(client, subject)
    assert refused.status_code == 422, refused.text
    assert field_of(refused) == ["body.subject"]
    ticket = (await create(client, "ok")).json()
    patched = await client.patch(f"/v1/tickets/{ticket['id']}", json={"subject": subject},
                                 headers=identity_headers(AGENT))
    assert patched.status_code == 422 and field_of(patched) == ["body.subject"]


def mime(subject_header: str, body: str = "text") -> bytes:
    return ("From: Buyer <buyer@example.com>\r\nTo: support@example.com\r\n"
            f"Subject: {subject_header}\r\nMessage-ID: <{abs(hash(subject_header))}@mail.example.com>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" + body + "\r\n").encode()


def encoded_word(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


async def inbound(client, kind: str, content: bytes, content_type: str):
    r = await client.post(f"/v1/channels/{kind}/inbound", content=content,
                          headers={**identity_headers(Principal(kind="channel", id=f"{kind}-key", channel=kind)),
                                   "Content-Type": content_type})
    assert r.status_code == 201, r.text
    return (await client.get(f"/v1/tickets/{r.json()['ticket_id']}", headers=identity_headers(ADMIN))).json()


async def test_every_channel_subject_is_cleaned(client):
    # an encoded word can carry CR/LF and bidi controls past the header parser
    mail = await inbound(client, "email", mime(encoded_word(DIRTY)), "message/rfc822")
    assert mail["subject"] == CLEAN
    form = "&".join(f"{k}={v}" for k, v in (("subject", "Order%0D%0A%E2%80%AElate"), ("email", "f@example.com"),
                                             ("description", "x")))
    web = await inbound(client, "web", form.encode(), "application/x-www-form-urlencoded")
    assert web["subject"] == "Order late"
    call = {"call_id": "c-1", "direction": "inbound", "from": "+86 138 0013 8000", "to": "+86 400 800 1234",
            "started_at": "2026-11-23T09:30:00+08:00", "duration_s": 5, "status": "answered",
            "subject": "Call\r\nabout\u2067 it"}
    phone = await inbound(client, "phone", json.dumps(call).encode(), "application/json")
    assert phone["subject"] == "Call about it"


async def test_a_channel_subject_with_nothing_visible_falls_back_to_the_body(client):
    mail = await inbound(client, "email", mime(encoded_word("\u202e\r\n\t"), body="\u2066First line\r\nsecond"),
                         "message/rfc822")
    assert mail["subject"] == "First line"


async def test_names_are_cleaned_and_empty_ones_refused(client, db, known_users):
    await known_users("u-agent")
    headers = identity_headers(ADMIN)
    team = await client.post("/v1/teams", json={"name": "Tier\r\n2\u202e"}, headers=headers)
    assert team.status_code == 201, team.text
    assert team.json()["name"] == "Tier 2"
    status = await client.post("/v1/statuses", json={"key": "waiting_x", "label": "Waiting\n\u2066vendor",
                                                     "category": "on_hold"}, headers=headers)
    assert status.status_code == 201 and status.json()["label"] == "Waiting vendor"
    macro = await client.post("/v1/macros", json={"name": "Close\r\nit", "actions": {"subject": "Done\r\nhere"}},
                              headers=headers)
    assert macro.status_code == 201, macro.text
    assert (macro.json()["name"], macro.json()["actions"]["subject"]) == ("Close it", "Done here")
    view = await client.post("/v1/views", json={"name": "Mine\t\u202eall", "filters": {}}, headers=headers)
    assert view.status_code == 201 and view.json()["name"] == "Mine all"
    agent = await client.put("/v1/agents/u-agent", json={"display_name": "Li\r\nLei"}, headers=headers)
    assert agent.status_code == 200 and agent.json()["display_name"] == "Li Lei"
    rule = await client.post("/v1/routing/rules", json={"name": "VIP\r\nfirst"}, headers=headers)
    assert rule.status_code == 201 and rule.json()["name"] == "VIP first"
    for url, payload, field in (
        ("/v1/teams", {"name": "\u202e\r\n"}, "body.name"),
        ("/v1/statuses", {"key": "waiting_y", "label": "\t", "category": "on_hold"}, "body.label"),
        ("/v1/macros", {"name": "\u2066"}, "body.name"),
        ("/v1/macros", {"name": "m", "actions": {"subject": "\r\n"}}, "body.actions.subject"),
        ("/v1/views", {"name": " \x85 ", "filters": {}}, "body.name"),
        ("/v1/routing/rules", {"name": "\u202a"}, "body.name"),
    ):
        refused = await client.post(url, json=payload, headers=headers)
        assert refused.status_code == 422, (url, refused.text)
        assert field_of(refused) == [field], (url, refused.text)


async def test_applying_an_old_macro_cleans_its_subject(client, db):
    """A macro stored before the rule still goes through the PATCH schema when applied."""
    headers = identity_headers(ADMIN)
    macro = (await client.post("/v1/macros", json={"name": "old", "actions": {"priority": "high"}},
                               headers=headers)).json()
    async with db.begin() as conn:
        await conn.execute(text("UPDATE macros SET definition = jsonb_set(definition, '{actions,subject}', "
                                "to_jsonb(CAST(:s AS text))) WHERE id = :id"), {"s": "Old\r\nmacro", "id": macro["id"]})
    ticket = (await create(client, "plain")).json()
    applied = await client.post(f"/v1/tickets/{ticket['id']}/macros/{macro['id']}", headers=headers)
    assert applied.status_code == 200, applied.text
    assert applied.json()["subject"] == "Old macro"
