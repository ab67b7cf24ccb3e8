"""The Zendesk-compatible surface's translations (gateway/zendesk/shapes.py): pure, no I/O. The
routes themselves run against the real services in tests/e2e/test_zendesk_api.py."""

from __future__ import annotations

import pytest

from gateway.zendesk import ids, shapes

TICKET = {
    "id": "7f0c1f7e-0000-4000-8000-000000000001", "number": 42, "subject": "打印机", "description": "坏了",
    "status": "on_hold", "priority": "high", "type": "incident", "channel": "email", "tags": ["a"],
    "customer_id": "c-1", "assignee_id": "u-1", "team_id": "t-1", "followers": ["u-2"],
    "created_at": "2026-12-02T03:04:05.678901Z", "updated_at": "2026-12-02T03:05:00+00:00",
}
IDS = {(ids.CUSTOMER, "c-1"): 10, (ids.USER, "u-1"): 11, (ids.TEAM, "t-1"): 12, (ids.USER, "u-2"): 13}


def test_a_ticket_in_zendesks_shape():
    out = shapes.ticket_out(TICKET, IDS, "http://h")
    assert (out["id"], out["url"], out["status"], out["type"]) == (42, "http://h/api/v2/tickets/42.json", "hold",
                                                                  "incident")
    assert (out["requester_id"], out["assignee_id"], out["group_id"], out["follower_ids"]) == (10, 11, 12, [13])
    assert (out["created_at"], out["updated_at"]) == ("2026-12-02T03:04:05Z", "2026-12-02T03:05:00Z")
    assert out["via"]["channel"] == "email" and out["custom_fields"] == [] and out["description"] == "坏了"
    assert sorted(shapes.ticket_refs(TICKET)) == sorted(IDS)
    assert shapes.ticket_out({**TICKET, "type": "refund"}, IDS, "")["type"] is None  # not one of Zendesk's


def test_every_status_goes_both_ways():
    for ours, theirs in shapes.STATUS_OUT.items():
        assert shapes.STATUS_IN[theirs] == ours


def test_a_create_without_subject_is_named_by_its_first_line():
    native, public = shapes.create_in({"comment": {"body": "\n  第一行 first line \nsecond"}, "priority": None},
                                      {"email": "a@example.com"})
    assert native == {"description": "\n  第一行 first line \nsecond", "subject": "第一行 first line",
                      "requester": {"email": "a@example.com"}}
    assert public is True


@pytest.mark.parametrize(("ticket", "requester", "field"), [
    ({"subject": "x"}, None, "requester"),
    ("not an object", {"email": "a@example.com"}, "ticket"),
    ({"comment": "text"}, {"email": "a@example.com"}, "comment"),
    ({"comment": {"body": "x", "public": "no"}}, {"email": "a@example.com"}, "comment.public"),
    ({"tags": "a,b", "comment": {"body": "x"}}, {"email": "a@example.com"}, "tags"),
])
def test_what_cannot_be_translated_is_named(ticket, requester, field):
    with pytest.raises(shapes.Invalid) as caught:
        shapes.create_in(ticket, requester)
    assert field in [f for f, _ in caught.value.errors]


def test_an_update_splits_into_fields_and_a_comment():
    patch, comment = shapes.update_in({"status": "hold", "assignee_id": 11, "group_id": None, "id": 42,
                                       "url": "ignored", "comment": {"html_body": "<b>hi</b>", "public": False}},
                                      assignee="u-1", team=None)
    assert patch == {"status": "on_hold", "assignee_id": "u-1", "team_id": None}
    assert comment == (None, "<b>hi</b>", False)
    with pytest.raises(shapes.Invalid):
        shapes.update_in({"status": "done"}, assignee=None, team=None)
    with pytest.raises(shapes.Invalid):
        shapes.update_in({"comment": {"public": True}}, assignee=None, team=None)


def test_a_comment_in_zendesks_shape():
    message = {"id": "m-1", "author_kind": "customer", "author_id": None, "public": True, "body_text": "a < b",
               "body_html": None, "channel": "email", "attachments": [{"id": "f1", "filename": "x.png",
                                                                      "content_type": "image/png", "size": 3}],
               "created_at": "2026-12-02T03:04:05Z"}
    id_map = {(ids.COMMENT, "m-1"): 99, **IDS}
    out = shapes.comment_out(message, TICKET, id_map, "http://h")
    assert (out["id"], out["author_id"], out["public"], out["plain_body"]) == (99, 10, True, "a < b")
    assert "a &lt; b" in out["html_body"] and out["metadata"]["ticket_id"] == 42
    assert out["attachments"][0]["content_url"] == f"http://h/v1/tickets/{TICKET['id']}/attachments/f1"
    assert shapes.comment_out({**message, "author_kind": "system"}, TICKET, id_map, "")["author_id"] == -1


def test_a_requester_needs_an_identity():
    assert shapes.requester_in({"email": "a@example.com", "name": "A", "role": "end-user"}) == {
        "email": "a@example.com", "name": "A"}
    with pytest.raises(shapes.Invalid):
        shapes.requester_in({"name": "only a name"})


@pytest.mark.parametrize(("query", "text"), [
    ("a@example.com", "a@example.com"), ("type:user email:a@example.com", "a@example.com"),
    ("name:王 小明", "王 小明"), ("EXTERNAL_ID:crm-1", "crm-1"), ("type:user", ""),
])
def test_a_user_search_is_reduced_to_what_to_look_up(query, text):
    assert shapes.user_search_text(query) == text


def test_end_users_both_ways():
    customer = {"id": "c-1", "name": "王小明", "tags": ["vip"], "notes": None, "language": "zh-CN",
                "time_zone": "Asia/Shanghai", "identities": [
                    {"id": "i-1", "kind": "email", "value": "w@example.com"},
                    {"id": "i-2", "kind": "phone", "value": "+8613800000000"},
                    {"id": "i-3", "kind": "external:zendesk", "value": "crm-7"}],
                "created_at": "2026-12-02T03:04:05Z", "updated_at": "2026-12-02T03:04:05Z"}
    id_map = {**IDS, (ids.IDENTITY, "i-1"): 20, (ids.IDENTITY, "i-2"): 21, (ids.IDENTITY, "i-3"): 22}
    out = shapes.end_user_out(customer, id_map, "http://h")
    assert (out["id"], out["role"], out["email"], out["phone"], out["external_id"], out["locale"]) == (
        10, "end-user", "w@example.com", "+8613800000000", "crm-7", "zh-CN")
    identities = shapes.identities_out(customer, id_map, "http://h")
    assert [(i["id"], i["type"], i["primary"]) for i in identities] == [
        (20, "email", True), (21, "phone_number", True), (22, "external_id", True)]
    native = shapes.end_user_in({"name": "Li", "email": "li@example.com", "external_id": "crm-8", "id": 5,
                                 "role": "end-user"}, creating=True)
    assert native == {"name": "Li", "identities": [{"kind": "email", "value": "li@example.com"},
                                                   {"kind": "external:zendesk", "value": "crm-8"}]}
    with pytest.raises(shapes.Invalid):
        shapes.end_user_in({"name": "Agent", "email": "x@example.com", "role": "agent"}, creating=True)
    with pytest.raises(shapes.Invalid):
        shapes.end_user_in({"name": "nobody"}, creating=True)
    assert shapes.end_user_in({"name": "New name", "email": "ignored@example.com"}, creating=False) == {"name": "New name"}


def test_ticket_fields_and_custom_fields():
    form = {"ticket_type": "question", "version": 3, "created_at": "2026-12-02T03:04:05Z", "fields": []}
    field = {"key": "order_no", "label": "订单号", "type": "single_select", "required": True, "help_text": None,
             "options": [{"value": "a", "label": "甲"}]}
    id_map = {**IDS, (ids.FIELD, "question:order_no"): 30}
    out = shapes.ticket_field_out(form, field, id_map, "http://h")
    assert (out["id"], out["type"], out["title"], out["required"], out["ticket_type"]) == (
        30, "tagger", "订单号", True, "question")
    assert out["custom_field_options"][0]["name"] == "甲" and out["custom_field_options"][0]["value"] == "a"
    ticket = {**TICKET, "type": "question", "custom_fields": {"order_no": "a", "unknown": 1}}
    assert shapes.custom_fields_out(ticket, id_map) == [{"id": 30, "value": "a"}]
    assert (ids.FIELD, "question:order_no") in shapes.ticket_refs(ticket)
    assert shapes.field_native(None, "k") == "default:k"


def test_organizations_both_ways():
    org = {"id": "o-1", "name": "华东贸易", "domains": ["hd.example.com"], "notes": None,
           "created_at": "2026-12-02T03:04:05Z", "updated_at": "2026-12-02T03:04:05Z"}
    out = shapes.organization_out(org, {(ids.ORGANIZATION, "o-1"): 40}, "http://h")
    assert (out["id"], out["name"], out["domain_names"]) == (40, "华东贸易", ["hd.example.com"])
    assert shapes.organization_in({"name": "x", "domain_names": ["x.com"], "id": 1}) == {"name": "x", "domains": ["x.com"]}
    with pytest.raises(shapes.Invalid):
        shapes.organization_in({"domain_names": ["x.com"]})


def test_a_deleted_ticket_in_the_list_and_in_the_export():
    deleted = {"id": "7f0c1f7e-0000-4000-8000-000000000002", "number": 43, "subject": "spam",
               "previous_status": "on_hold", "deleted_at": "2026-12-02T03:04:05.5Z", "deleted_by": "user:u-1",
               "created_at": "2026-12-01T00:00:00Z"}
    assert shapes.deleted_by_ref(deleted) == [(ids.USER, "u-1")]
    out = shapes.deleted_ticket_out(deleted, IDS, {"u-1": "李雷"})
    assert out == {"id": 43, "subject": "spam", "description": None, "actor": {"id": 11, "name": "李雷"},
                   "deleted_at": "2026-12-02T03:04:05Z", "previous_state": "hold"}
    by_system = shapes.deleted_ticket_out({**deleted, "deleted_by": "system:retention"}, IDS, {})
    assert by_system["actor"] == {"id": None, "name": None}
    assert shapes.ticket_out({**TICKET, "deleted_at": "2026-12-02T03:04:05Z"}, IDS, "")["status"] == "deleted"


def test_the_cursor_list_envelope():
    page = shapes.cursor_page("organizations", [{"id": 1}], "abc", "http://h/next")
    assert page == {"organizations": [{"id": 1}], "meta": {"has_more": True, "after_cursor": "abc",
                                                           "before_cursor": None},
                    "links": {"next": "http://h/next", "prev": None}, "next_page": "http://h/next",
                    "previous_page": None}
    last = shapes.cursor_page("tickets", [], None, None)
    assert last["meta"]["has_more"] is False and last["next_page"] is None
