"""An SLA breach reaching the assignee on the chat channel of the rule, inside the whole of
notify-svc (real broker, real database, the adapters built from NOTIFY_* settings) against the
local fake WeCom and DingTalk servers (tests/fakes.py, 127.0.0.1):

- the agent with a WeCom contact gets a WeCom *application message* (``message/send``, the
  application's agent id and secret, markdown: the subject in bold, the ticket's link), never a
  customer-contact ``kf/send_msg``;
- the agent with a DingTalk contact gets a *work notification* (``asyncsend_v2``, markdown with the
  subject as title), and the delivery records DingTalk's task id.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, running_app, service_env, wait_for

pytestmark = pytest.mark.timeout(240)

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))
AGENT_URL = "https://desk.example.com"


def _fakes():
    name = "notify_svc_test_fakes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "fakes.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
async def providers():
    fakes = _fakes()
    async with fakes.FakeWeCom(users=("LiNa",)) as wecom, fakes.FakeDingTalk(staff_ids=("staff-7",)) as dingtalk:
        yield wecom, dingtalk


@pytest.fixture
async def notify(infra, notify_db, secret_key, providers, monkeypatch):
    wecom, dingtalk = providers
    topics = service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    for name, value in {
        "SECRET_KEY": secret_key, "DISPATCHER_POLL_INTERVAL_S": "0.2",
        "NOTIFICATION_DEFAULT_LANGUAGE": "zh-CN", "NOTIFICATION_AGENT_URL": AGENT_URL,
        "WECOM_API_BASE": wecom.base_url, "WECOM_CORP_ID": wecom.corp_id,
        "WECOM_CORP_SECRET": wecom.corp_secret, "WECOM_AGENT_ID": str(wecom.agent_id),
        "WECOM_AGENT_SECRET": wecom.agent_secret,
        "DINGTALK_API_BASE": dingtalk.base_url, "DINGTALK_OAPI_BASE": dingtalk.base_url,
        "DINGTALK_APP_KEY": dingtalk.app_key, "DINGTALK_APP_SECRET": dingtalk.app_secret,
        "DINGTALK_AGENT_ID": str(dingtalk.agent_id),
    }.items():
        monkeypatch.setenv(f"NOTIFY_{name}", value)
    from notify_svc.config import Settings
    from notify_svc.main import create_app

    app = create_app(Settings())  # the adapters from the settings, as in production
    async with running_app(app) as client:
        client.topics, client.bootstrap = topics, infra.kafka_bootstrap

        async def fetch(sql, *args):
            async with app.state.runtime.raw_connection() as conn:
                return [dict(r) for r in await conn.fetch(sql, *args)]

        client.fetch = fetch
        yield client


def _agent(user_id: uuid.UUID, name: str, email: str) -> events.UserCreated:
    return events.UserCreated(source="gateway", subject=str(user_id), data=events.UserCreatedData(
        user_id=user_id, version=1, display_name=name, role="agent", active=True, email=email))


def _ticket(number: int, subject: str) -> events.TicketCreated:
    ticket_id = uuid.uuid4()
    return events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
        ticket_id=ticket_id, subject=subject, status="open", priority="high", channel="web",
        requester=events.Requester(name="王芳"), created_by="channel:web", created_at=datetime.now(UTC),
        number=number, language="zh-CN"))


def _breach(ticket: events.TicketCreated, assignee: uuid.UUID) -> events.SlaBreached:
    tid = ticket.data.ticket_id
    return events.SlaBreached(source="sla-svc", subject=str(tid), data=events.SlaAlertData(
        ticket_id=tid, metric="first_response", due_at=datetime(2026, 11, 30, 6, 0, tzinfo=UTC),
        assignee_id=str(assignee)))


async def _ticket_then_breach(notify, ticket: events.TicketCreated, assignee: uuid.UUID) -> None:
    """tickets.events and sla.events are separate topics with no order between them: the breach
    goes out once notify-svc knows the ticket (else its message would lack number and subject)."""
    await produce(notify.bootstrap, notify.topics, ticket)

    async def known():
        return await notify.fetch("SELECT 1 FROM notification_tickets WHERE ticket_id = $1", ticket.data.ticket_id)

    await wait_for(known, timeout=90)
    await produce(notify.bootstrap, notify.topics, _breach(ticket, assignee))


async def _use_channel(notify, channel: str) -> None:
    answer = await notify.patch("/v1/notification-rules/sla_breached", headers=ADMIN,
                                json={"agent_channel": channel, "recipients": ["assignee"]})
    assert answer.status_code == 200, answer.text


async def test_sla_breach_reaches_agents_as_wecom_application_message_and_dingtalk_work_notification(
        notify, providers) -> None:
    wecom, dingtalk = providers
    li_na, zhang_wei = uuid.uuid4(), uuid.uuid4()
    await produce(notify.bootstrap, notify.topics, _agent(li_na, "李娜", "li.na@example.com"),
                  _agent(zhang_wei, "张伟", "zhang.wei@example.com"))

    async def both_known():
        rows = await notify.fetch("SELECT user_id FROM notification_users")
        return len(rows) == 2

    await wait_for(both_known, timeout=90)
    for user, body in ((li_na, {"wecom_userid": "LiNa"}), (zhang_wei, {"dingtalk_userid": "staff-7"})):
        answer = await notify.put(f"/v1/notification-contacts/{user}", headers=ADMIN, json=body)
        assert answer.status_code == 200, answer.text

    # WeCom: the rule's agent channel, a breach on Li Na's ticket
    await _use_channel(notify, "wecom")
    first = _ticket(4201, "打印机无法连接")
    await _ticket_then_breach(notify, first, li_na)

    async def wecom_sent():
        return wecom.app_messages

    [sent] = await wait_for(wecom_sent, timeout=90)
    assert sent["userid"] == "LiNa" and sent["agentid"] == wecom.agent_id and sent["msgtype"] == "markdown"
    url = f"{AGENT_URL}/tickets/{first.data.ticket_id}"
    assert sent["content"] == (
        "**[#4201] SLA 已超时：打印机无法连接**\n\n"
        "工单 #4201（打印机无法连接）的 SLA 指标 first_response 已于 2026-11-30 06:00 UTC 超时。\n"
        f"处理人：李娜\n[{url}]({url})")
    assert wecom.requests_to("/cgi-bin/kf/send_msg") == []  # not the customer-contact API
    assert wecom.token_requests_for(wecom.agent_secret) == 1 and wecom.token_requests_for(wecom.corp_secret) == 0

    # DingTalk: the same rule switched to DingTalk, a breach on Zhang Wei's ticket
    await _use_channel(notify, "dingtalk")
    second = _ticket(4202, "Printer offline")
    await _ticket_then_breach(notify, second, zhang_wei)

    async def dingtalk_sent():
        return dingtalk.work_notices

    [notice] = await wait_for(dingtalk_sent, timeout=90)
    assert notice["userid"] == "staff-7" and notice["agent_id"] == dingtalk.agent_id
    assert notice["msgtype"] == "markdown" and notice["title"] == "[#4202] SLA 已超时：Printer offline"
    url = f"{AGENT_URL}/tickets/{second.data.ticket_id}"
    assert notice["text"] == "  \n  ".join([
        "**[#4202] SLA 已超时：Printer offline**", "",
        "工单 #4202（Printer offline）的 SLA 指标 first_response 已于 2026-11-30 06:00 UTC 超时。",
        "处理人：张伟", f"[{url}]({url})"])
    assert dingtalk.requests_to("/v1.0/robot/oToMessages/batchSend") == []  # not the robot

    async def both_recorded():
        rows = await notify.fetch(
            "SELECT channel, status, provider_id, payload->'route' AS route FROM deliveries "
            "WHERE kind = 'notification' AND status = 'sent' ORDER BY channel")
        return rows if len(rows) == 2 else None

    rows = await wait_for(both_recorded, timeout=30)
    assert [(r["channel"], r["route"]) for r in rows] == [("dingtalk", {"userid": "staff-7"}),
                                                          ("wecom", {"userid": "LiNa"})]
    assert rows[0]["provider_id"] == str(notice["task_id"]) and rows[1]["provider_id"] == sent["msgid"]
