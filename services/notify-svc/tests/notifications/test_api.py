"""The notifications API on a real PostgreSQL: templates (versioned, checked before saving,
previewed), rules and team overrides, opt-outs, agents' chat ids; who may do what."""

from __future__ import annotations

import uuid

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

pytestmark = pytest.mark.timeout(120)

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="supervisor"))
AGENT_ID = str(uuid.uuid4())
AGENT = identity_headers(Principal(kind="user", id=AGENT_ID, role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id=str(uuid.uuid4()), channel="api"))
PROBLEM = "application/problem+json"
GOOD = {"subject": "[#{{ ticket.number }}] 收到：{{ ticket.subject }}", "body_text": "您好 {{ requester.name }}",
        "body_html": "<p>您好 {{ requester.name }}</p>"}


def _problem(answer, status: int, kind: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert body["type"].endswith("/" + kind)
    return body


async def test_templates_list_get_put_versioned_and_reset(notifications_api) -> None:
    api = notifications_api
    listed = (await api.get("/v1/notification-templates", headers=AGENT)).json()
    pairs = {(t["key"], t["language"]) for t in listed["items"]}
    for key in ("ticket_received", "ticket_solved", "ticket_assigned", "sla_warning", "sla_breached", "escalation"):
        assert {(key, "zh-CN"), (key, "en")} <= pairs
    builtin = await api.get("/v1/notification-templates/ticket_received/zh-CN", headers=AGENT)
    assert builtin.status_code == 200 and builtin.json()["customized"] is False and builtin.headers["etag"] == 'W/"0"'

    saved = await api.put("/v1/notification-templates/ticket_received/zh_cn", json=GOOD,
                          headers={**ADMIN, "If-Match": 'W/"0"'})
    assert saved.status_code == 200, saved.text
    assert saved.json()["language"] == "zh-CN" and saved.json()["version"] == 1 and saved.json()["customized"]
    stale = await api.put("/v1/notification-templates/ticket_received/zh-CN", json=GOOD,
                          headers={**ADMIN, "If-Match": 'W/"0"'})
    assert _problem(stale, 412, "version-conflict")["current_version"] == 1
    again = await api.put("/v1/notification-templates/ticket_received/zh-CN", json=GOOD, headers=ADMIN)
    assert again.json()["version"] == 2 and again.headers["etag"] == 'W/"2"'

    # a new language is just another template
    ja = await api.put("/v1/notification-templates/ticket_received/ja", json=GOOD, headers=ADMIN)
    assert ja.status_code == 200
    assert (await api.get("/v1/notification-templates/ticket_received/de", headers=AGENT)).status_code == 404
    assert (await api.get("/v1/notification-templates/nope/en", headers=AGENT)).status_code == 404

    reset = await api.delete("/v1/notification-templates/ticket_received/zh-CN", headers=ADMIN)
    assert reset.status_code == 204
    back = (await api.get("/v1/notification-templates/ticket_received/zh-CN", headers=AGENT)).json()
    assert back["customized"] is False and "我们已收到您的请求" in back["subject"]


@pytest.mark.parametrize("body, field, message", [
    ({**GOOD, "body_text": "line 1\nline 2 {{ tickt.number }}"}, "body.body_text", "line 2: 'tickt' is undefined"),
    ({**GOOD, "body_html": "{{ ''.__class__ }}"}, "body.body_html", "line 1: only the fields"),
    ({**GOOD, "subject": "{% for x in ticket %}{{ x }}{% endfor %}"}, "body.subject", "loops"),
    ({**GOOD, "subject": "{{ ticket.subject|nofilter }}"}, "body.subject", "No filter named 'nofilter'"),
    ({**GOOD, "subject": "{% if ticket.number == 0 %}x{% endif %}  "}, "body.subject", "renders empty"),
])
async def test_a_template_that_would_not_render_is_refused_naming_field_and_line(notifications_api, body, field,
                                                                                  message) -> None:
    answer = await notifications_api.put("/v1/notification-templates/ticket_solved/en", json=body, headers=ADMIN)
    errors = _problem(answer, 422, "validation-error")["errors"]
    assert errors[0]["field"] == field and message in errors[0]["message"], errors
    assert (await notifications_api.get("/v1/notification-templates/ticket_solved/en",
                                        headers=ADMIN)).json()["customized"] is False


async def test_preview_renders_without_saving(notifications_api) -> None:
    api = notifications_api
    stored = await api.post("/v1/notification-templates/preview", headers=AGENT,
                            json={"key": "ticket_received", "language": "en",
                                  "sample": {"ticket": {"number": 7, "subject": "<b>Hi</b>"}}})
    assert stored.status_code == 200, stored.text
    out = stored.json()
    assert out["subject"] == "[#7] We received your request: <b>Hi</b>"
    assert "&lt;b&gt;Hi&lt;/b&gt;" in out["body_html"] and "<b>Hi</b>" in out["body_text"]
    draft = await api.post("/v1/notification-templates/preview", headers=ADMIN, json={
        "key": "sla_warning", "language": "zh-CN", "subject": "SLA {{ sla.metric }} {{ sla.due_at }}",
        "body_text": "{{ agent.name }}"})
    assert draft.json()["subject"] == "SLA first_response 2026-11-30 14:00 UTC"
    assert draft.json()["body_html"] is not None  # the stored (built-in) HTML part is kept
    broken = await api.post("/v1/notification-templates/preview", headers=ADMIN, json={
        "key": "sla_warning", "language": "en", "subject": "{{ sla.nope }}"})
    assert _problem(broken, 422, "validation-error")["errors"][0]["field"] == "body.subject"
    unknown = await api.post("/v1/notification-templates/preview", headers=ADMIN, json={
        "key": "sla_warning", "language": "en", "sample": {"secrets": 1}})
    assert _problem(unknown, 422, "validation-error")["errors"][0]["field"] == "body.sample.secrets"
    for sample in ({"ticket": None}, {"ticket": {"number": "1" * 3000}}, {"ticket": {"nope": 1}},
                   {"requester": {"name": {"nested": 1}}}):
        refused = await api.post("/v1/notification-templates/preview", headers=ADMIN,
                                 json={"key": "sla_warning", "language": "en", "sample": sample})
        assert refused.status_code == 422, (sample, refused.text)
    # the approval keys and their step variable, overlaid by the caller's sample
    approval = await api.post("/v1/notification-templates/preview", headers=ADMIN, json={
        "key": "approval_requested", "language": "zh-CN",
        "sample": {"step": {"name": "合同会签", "kind": "countersign", "rule": "parallel", "expires_at": None}}})
    assert approval.status_code == 200, approval.text
    assert approval.json()["subject"] == "[#10042] 待您会签：合同会签"
    assert "需要您会签" in approval.json()["body_text"] and "截止时间" not in approval.json()["body_text"]
    decided = await api.post("/v1/notification-templates/preview", headers=ADMIN, json={
        "key": "approval_decided", "language": "en", "body_text": "{{ step.decided_by }} said {{ step.decision }}"})
    assert decided.json()["body_text"] == "Zhang Wei said approve"
    wrong_field = await api.post("/v1/notification-templates/preview", headers=ADMIN, json={
        "key": "approval_decided", "language": "en", "sample": {"step": {"approvers": "x"}}})
    assert wrong_field.status_code == 422, wrong_field.text
    not_there = await api.post("/v1/notification-templates/preview", headers=ADMIN,
                               json={"key": "sla_warning", "language": "fr"})
    _problem(not_there, 404, "not-found")  # no French template, and none given to preview
    assert (await api.get("/v1/notification-templates/sla_warning/zh-CN", headers=ADMIN)).json()["version"] == 0


async def test_rules_and_team_overrides(notifications_api) -> None:
    api = notifications_api
    rules = {r["key"]: r for r in (await api.get("/v1/notification-rules", headers=AGENT)).json()["items"]}
    assert set(rules) == {"ticket_received", "ticket_solved", "ticket_assigned", "sla_warning", "sla_breached",
                          "escalation", "approval_requested", "approval_decided"}
    assert rules["ticket_received"]["recipients"] == ["customer"] and rules["ticket_received"]["enabled"]
    assert rules["approval_requested"]["recipients"] == ["approvers"] and rules["approval_requested"]["enabled"]
    assert rules["approval_decided"]["recipients"] == ["assignee"]
    assert rules["sla_breached"]["recipients"] == ["assignee", "team_supervisors"]

    patched = await api.patch("/v1/notification-rules/sla_warning", headers={**ADMIN, "If-Match": 'W/"1"'},
                              json={"recipients": ["assignee", "users"], "user_ids": [AGENT_ID],
                                    "agent_channel": "wecom"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["user_ids"] == [AGENT_ID] and patched.json()["agent_channel"] == "wecom"
    assert patched.json()["version"] == 2
    wrong = await api.patch("/v1/notification-rules/ticket_received", headers=ADMIN, json={"recipients": ["assignee"]})
    assert _problem(wrong, 422, "validation-error")["errors"][0]["field"] == "body.recipients"
    # only the approval request has approvers to send to
    wrong = await api.patch("/v1/notification-rules/sla_warning", headers=ADMIN, json={"recipients": ["approvers"]})
    assert _problem(wrong, 422, "validation-error")["errors"][0]["field"] == "body.recipients"
    redirected = await api.patch("/v1/notification-rules/approval_requested", headers=ADMIN,
                                 json={"recipients": ["approvers", "team_supervisors"], "agent_channel": "dingtalk"})
    assert redirected.status_code == 200, redirected.text
    assert redirected.json()["recipients"] == ["approvers", "team_supervisors"]
    assert (await api.patch("/v1/notification-rules/sla_warning", headers=ADMIN,
                            json={"agent_channel": "fax"})).status_code == 422
    assert (await api.patch("/v1/notification-rules/sla_warning", headers=ADMIN,
                            json={"enabled": None})).status_code == 422

    team = str(uuid.uuid4())
    put = await api.put(f"/v1/notification-rules/ticket_received/teams/{team}", headers=ADMIN, json={"enabled": False})
    assert put.status_code == 200
    assert [(t["team_id"], t["enabled"], t["brand"]) for t in put.json()["teams"]] == [(team, False, None)]
    removed = await api.delete(f"/v1/notification-rules/ticket_received/teams/{team}", headers=ADMIN)
    assert removed.status_code == 200 and removed.json()["teams"] == []
    assert (await api.delete(f"/v1/notification-rules/ticket_received/teams/{team}", headers=ADMIN)).status_code == 404


async def test_opt_out_by_customer_and_by_address(notifications_api) -> None:
    api = notifications_api
    customer = str(uuid.uuid4())
    assert (await api.get(f"/v1/notification-preferences/customers/{customer}", headers=AGENT)).json()["opted_out"] is False
    out = await api.put(f"/v1/notification-preferences/customers/{customer}", headers=AGENT, json={"opted_out": True})
    assert out.status_code == 200 and out.json()["opted_out"] is True and out.json()["version"] == 1
    by_mail = await api.put("/v1/notification-preferences/emails/Wang.Fang@Example.com", headers=AGENT,
                            json={"opted_out": True})
    assert by_mail.json()["value"] == "wang.fang@example.com"
    got = await api.get("/v1/notification-preferences/emails/wang.fang@example.com", headers=AGENT)
    assert got.json()["opted_out"] is True
    assert (await api.put("/v1/notification-preferences/emails/not-an-address", headers=AGENT,
                          json={"opted_out": True})).status_code == 422
    assert (await api.put(f"/v1/notification-preferences/customers/{customer}", headers=CHANNEL,
                          json={"opted_out": False})).status_code == 403


async def test_contacts_are_set_by_the_user_or_an_admin(notifications_api) -> None:
    api = notifications_api
    mine = await api.put(f"/v1/notification-contacts/{AGENT_ID}", headers=AGENT,
                         json={"wecom_userid": "LiNa", "dingtalk_userid": "staff-1"})
    assert mine.status_code == 200 and mine.json()["wecom_userid"] == "LiNa"
    other = str(uuid.uuid4())
    assert (await api.put(f"/v1/notification-contacts/{other}", headers=AGENT, json={})).status_code == 403
    assert (await api.get(f"/v1/notification-contacts/{other}", headers=SUPERVISOR)).status_code == 403
    assert (await api.put(f"/v1/notification-contacts/{other}", headers=ADMIN,
                          json={"wecom_userid": "x y"})).status_code == 422
    assert (await api.get(f"/v1/notification-contacts/{AGENT_ID}", headers=ADMIN)).json()["dingtalk_userid"] == "staff-1"


@pytest.mark.parametrize("headers", [AGENT, SUPERVISOR, CHANNEL])
async def test_only_admins_edit(notifications_api, headers) -> None:
    api = notifications_api
    writes = [
        api.put("/v1/notification-templates/ticket_received/en", json=GOOD, headers=headers),
        api.delete("/v1/notification-templates/ticket_received/en", headers=headers),
        api.patch("/v1/notification-rules/ticket_received", json={"enabled": False}, headers=headers),
        api.put(f"/v1/notification-rules/ticket_received/teams/{uuid.uuid4()}", json={"enabled": False},
                headers=headers),
        api.delete(f"/v1/notification-rules/ticket_received/teams/{uuid.uuid4()}", headers=headers),
    ]
    for write in writes:
        _problem(await write, 403, "forbidden")
    reads = [api.get("/v1/notification-templates", headers=headers), api.get("/v1/notification-rules", headers=headers)]
    for read in reads:
        assert (await read).status_code == (403 if headers is CHANNEL else 200)


async def test_the_log_of_a_ticket_is_for_supervisors_and_admins(notifications_api, raw) -> None:
    ticket_id, event_id = uuid.uuid4(), uuid.uuid4()
    await raw.execute("INSERT INTO notification_log (event_id, key, recipient, ticket_id, status, reason) "
                      "VALUES ($1, 'ticket_received', 'customer', $2, 'skipped', 'the customer opted out of notifications')",
                      event_id, ticket_id)
    answer = await notifications_api.get(f"/v1/notification-log?ticket_id={ticket_id}", headers=SUPERVISOR)
    assert answer.status_code == 200
    assert [(i["key"], i["status"], i["reason"]) for i in answer.json()["items"]] == [
        ("ticket_received", "skipped", "the customer opted out of notifications")]
    assert (await notifications_api.get(f"/v1/notification-log?ticket_id={ticket_id}",
                                        headers=AGENT)).status_code == 403
    assert (await notifications_api.get("/v1/notification-log?ticket_id=x", headers=ADMIN)).status_code == 422
