"""Custom fields are bounded where they enter, because they travel in events (docs/security.md,
"Event size"): ticket.created carries them, ticket.updated carries them before and after.

Issue 9, High 2: a channel key posted a free-form custom field of 1,048,400 characters; the
ticket.created event (1,049,358 bytes) was too large for the producer and blocked every later
ticket event. Every path that sets custom fields (API create and PATCH, web forms and other
channel intake) goes through the form engine's ``validate_new`` / ``validate_patch``.
"""

from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers
from ticket_svc.channels.inbound import Sender
from ticket_svc.forms.limits import CUSTOM_FIELDS_MAX_BYTES, FREE_FORM_DEPTH_MAX, FREE_FORM_STRING_MAX
from ticket_svc.intake.service import REQUESTER_NAME_MAX, requester_of

ADMIN = Principal(kind="user", id="u-admin", role="admin")
AGENT = Principal(kind="user", id="u-agent", role="agent")
CHANNEL = Principal(kind="channel", id="key-1", channel="web")


def ticket(custom_fields: dict, type_: str = "misc") -> dict:
    return {"subject": "big fields", "requester": {"email": "r@example.cn"}, "type": type_,
            "custom_fields": custom_fields}


async def count(db, sql: str) -> int:
    async with db.connect() as conn:
        return await conn.scalar(text(sql))


async def test_the_incident_request_is_a_422_naming_the_field_and_writes_nothing(client, db):
    r = await client.post("/v1/tickets", json=ticket({"order": "A-1", "notes": "x" * 1_048_400}),
                          headers=identity_headers(CHANNEL))
    assert r.status_code == 422, r.text[:300]
    body = r.json()
    assert body["type"].endswith("/validation-error")
    assert [e["field"] for e in body["errors"]] == ["custom_fields.notes"]
    assert str(FREE_FORM_STRING_MAX) in body["errors"][0]["message"]
    assert await count(db, "SELECT count(*) FROM tickets") == 0
    assert await count(db, "SELECT count(*) FROM outbox") == 0


async def test_free_form_values_are_bounded_per_string_in_depth_and_in_64_bit_numbers(client):
    headers = identity_headers(CHANNEL)
    at_limit = await client.post("/v1/tickets", json=ticket({"notes": "字" * FREE_FORM_STRING_MAX}), headers=headers)
    assert at_limit.status_code == 201, at_limit.text[:300]
    cases = {
        "a string one character over": {"notes": ["ok", "x" * (FREE_FORM_STRING_MAX + 1)]},
        "nested too deep": {"notes": _nested(FREE_FORM_DEPTH_MAX + 1)},
        "an integer beyond 64 bits": {"notes": {"n": 2**70}},
    }
    for case, fields in cases.items():
        r = await client.post("/v1/tickets", json=ticket(fields), headers=headers)
        assert r.status_code == 422, (case, r.text[:300])
        # schema-level refusals name the body path ("body.custom_fields.notes")
        assert [e["field"].removeprefix("body.") for e in r.json()["errors"]] == ["custom_fields.notes"], case
    nested_ok = await client.post("/v1/tickets", json=ticket({"notes": _nested(FREE_FORM_DEPTH_MAX)}), headers=headers)
    assert nested_ok.status_code == 201, nested_ok.text[:300]


async def test_the_total_is_bounded_on_create_and_patch_even_when_each_field_is_valid(client, db):
    """Form-defined long_text allows 65,536 characters per field: the total still has to fit."""
    form = {"fields": [{"key": k, "label": k, "type": "long_text"} for k in ("a", "b", "c")]}
    assert (await client.put("/v1/forms/report", json=form, headers=identity_headers(ADMIN))).status_code == 201
    third = CUSTOM_FIELDS_MAX_BYTES // 3
    too_much = await client.post("/v1/tickets", json=ticket({"a": "x" * third, "b": "y" * third, "c": "z" * (third + 20)},
                                                            type_="report"), headers=identity_headers(CHANNEL))
    assert too_much.status_code == 422, too_much.text[:300]
    error = too_much.json()["errors"][0]
    assert error["field"] == "custom_fields.c" and str(CUSTOM_FIELDS_MAX_BYTES) in error["message"]

    created = await client.post("/v1/tickets", json=ticket({"a": "x" * third, "b": "y" * third}, type_="report"),
                                headers=identity_headers(CHANNEL))
    assert created.status_code == 201, created.text[:300]
    tid = created.json()["id"]
    grown = await client.patch(f"/v1/tickets/{tid}", json={"custom_fields": {"c": "z" * third}},
                               headers=identity_headers(AGENT))
    assert grown.status_code == 422 and grown.json()["errors"][0]["field"] == "custom_fields.c", grown.text[:300]
    small = await client.patch(f"/v1/tickets/{tid}", json={"custom_fields": {"c": "fits"}}, headers=identity_headers(AGENT))
    assert small.status_code == 200, small.text[:300]
    # the ticket.updated it wrote carries before and after, and still fits the event cap
    assert await count(db, "SELECT max(length(payload)) FROM outbox WHERE event_type = 'ticket.updated'") < 262_144


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_a_channel_display_name_is_cut_to_the_api_limit_before_it_reaches_ticket_created():
    """An e-mail From header can carry a display name of megabytes (raw mails may be 50 MiB)."""
    requester = requester_of(Sender(name="名" * 300_000, email="A@Example.cn"), fallback_external_id=None)
    assert requester == {"name": "名" * REQUESTER_NAME_MAX, "email": "a@example.cn"}
