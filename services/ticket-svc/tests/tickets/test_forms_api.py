"""The form engine through the API on the real database: versions, 422 per field, old tickets."""

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = Principal(kind="user", id="u-admin", role="admin")
AGENT = Principal(kind="user", id="u-agent", role="agent")
CHANNEL = Principal(kind="channel", id="key-1", channel="web")

REFUND_V1 = {"fields": [
    {"key": "order_no", "label": "订单号", "type": "pattern", "pattern": "^[A-Z]-[0-9]{3,8}$", "required": True},
    {"key": "amount", "label": "退款金额", "type": "decimal", "min": "0", "max": "100000", "scale": 2},
    {"key": "reason", "label": "原因", "type": "single_select", "required": True,
     "options": [{"value": "damaged", "label": "商品损坏"}, {"value": "late", "label": "配送超时"}]},
    {"key": "contact_email", "label": "Email", "type": "email"},
    {"key": "urgent_refund", "label": "加急", "type": "checkbox", "default": False},
]}


def ticket(custom_fields: dict, type_: str = "refund") -> dict:
    return {"subject": "退款申请", "requester": {"email": "r@example.cn"}, "type": type_, "custom_fields": custom_fields}


async def test_form_versions_and_field_errors(client):
    saved = await client.put("/v1/forms/refund", json=REFUND_V1, headers=identity_headers(ADMIN))
    assert saved.status_code == 201, saved.text
    assert saved.json()["version"] == 1
    assert (await client.put("/v1/forms/refund", json=REFUND_V1, headers=identity_headers(AGENT))).status_code == 403

    bad = await client.post("/v1/tickets", json=ticket({"order_no": "x1", "amount": "abc", "reason": "other",
                                                        "colour": "red"}), headers=identity_headers(CHANNEL))
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"custom_fields.order_no", "custom_fields.amount", "custom_fields.reason", "custom_fields.colour"}

    ok = await client.post("/v1/tickets", json=ticket({"order_no": "A-1001", "amount": "12.5", "reason": "damaged"}),
                           headers=identity_headers(CHANNEL))
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert body["form_version"] == 1
    assert body["custom_fields"]["amount"] == "12.50" and body["custom_fields"]["urgent_refund"] is False

    # v2 drops the "late" option and adds a required field: the v1 ticket stays valid for other edits
    v2 = {"fields": [f if f["key"] != "reason" else {**f, "options": [{"value": "damaged", "label": "商品损坏"}]}
                     for f in REFUND_V1["fields"]] + [{"key": "store", "label": "门店", "type": "text", "required": True}]}
    assert (await client.put("/v1/forms/refund", json=v2, headers=identity_headers(ADMIN))).json()["version"] == 2
    edit = await client.patch(f"/v1/tickets/{body['id']}", json={"custom_fields": {"amount": "20"}},
                              headers=identity_headers(AGENT))
    assert edit.status_code == 200, edit.text
    assert edit.json()["custom_fields"]["amount"] == "20.00"
    refused = await client.patch(f"/v1/tickets/{body['id']}", json={"custom_fields": {"reason": "late"}},
                                 headers=identity_headers(AGENT))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "custom_fields.reason"
    clear_required = await client.patch(f"/v1/tickets/{body['id']}", json={"custom_fields": {"order_no": None}},
                                        headers=identity_headers(AGENT))
    assert clear_required.status_code == 422
    new = await client.post("/v1/tickets", json=ticket({"order_no": "B-2002", "reason": "damaged"}),
                            headers=identity_headers(CHANNEL))
    assert new.status_code == 422 and new.json()["errors"][0]["field"] == "custom_fields.store"
    read = await client.get("/v1/forms/refund/versions/1", headers=identity_headers(AGENT))
    assert read.status_code == 200 and len(read.json()["fields"]) == 5


async def test_types_without_a_form_keep_free_custom_fields_and_bad_forms_are_422(client):
    free = await client.post("/v1/tickets", json=ticket({"anything": [1, 2]}, type_="misc"), headers=identity_headers(CHANNEL))
    assert free.status_code == 201 and free.json()["form_version"] is None
    bad = await client.put("/v1/forms/misc", json={"fields": [
        {"key": "a", "label": "A", "type": "integer", "min": 10, "max": 1},
        {"key": "a", "label": "again", "type": "text"},
        {"key": "p", "label": "P", "type": "pattern", "pattern": "(a+)+$"}]}, headers=identity_headers(ADMIN))
    assert bad.status_code == 422
