"""Rule evaluation as a table: event + rule + projections -> intents (sent or skipped, and why)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpdesk_common import events
from notify_svc.notifications.rules import Intent, Occurrence, Rule, TicketView, UserView, evaluate, occurrence_of

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
TEAM, OTHER_TEAM = str(uuid.uuid4()), str(uuid.uuid4())
AGENT, SUPER, BOSS, GONE, NOMAIL = (str(uuid.uuid4()) for _ in range(5))
USERS = {
    AGENT: UserView(AGENT, "Li Na", "agent", True, "li.na@example.com", wecom_userid="LiNa"),
    SUPER: UserView(SUPER, "王强", "supervisor", True, "wang.qiang@example.com", dingtalk_userid="staff-9"),
    BOSS: UserView(BOSS, "Boss", "admin", True, "boss@example.com"),
    GONE: UserView(GONE, "Gone", "agent", False, "gone@example.com"),
    NOMAIL: UserView(NOMAIL, "No Mail", "agent", True, None),
}
TICKET = TicketView(ticket_id=str(uuid.uuid4()), number=7, subject="Printer", status="new", priority="high",
                    channel="email", language="zh-CN", requester={"name": "王芳", "email": "wang.fang@example.com"},
                    team_id=TEAM, assignee_id=AGENT, created_by="channel:web")


def occ(key: str, **kw) -> Occurrence:
    base = dict(event_id=uuid.uuid4(), time=NOW - timedelta(seconds=1), ticket_id=TICKET.ticket_id, team_id=TEAM,
                assignee_id=AGENT)
    base.update(kw)
    return Occurrence(key, **base)


def rule(key: str, recipients=("customer",), **kw) -> Rule:
    return Rule(key=key, enabled=kw.pop("enabled", True), recipients=tuple(recipients), **kw)


def run(o: Occurrence, r: Rule, *, ticket=TICKET, opted_out=False, supervisors=(SUPER,)) -> list[tuple]:
    return [(i.recipient, i.channel, dict(i.route), i.skip)
            for i in evaluate(o, rule=r, ticket=ticket, users=USERS, supervisors=list(supervisors),
                              customer_opted_out=opted_out, now=NOW)]


CUSTOMER_MAIL = ("customer", "email", {"to": "wang.fang@example.com", "cc": []}, None)


@pytest.mark.parametrize("case, o, r, kw, expected", [
    ("acknowledgement", occ("ticket_received", created_by="channel:web"), rule("ticket_received"), {},
     [CUSTOMER_MAIL]),
    ("rule off", occ("ticket_received"), rule("ticket_received", enabled=False), {}, []),
    ("rule off, but on for the team", occ("ticket_received"),
     rule("ticket_received", enabled=False, teams={TEAM: True}), {}, [CUSTOMER_MAIL]),
    ("rule on, but off for the team", occ("ticket_received"),
     rule("ticket_received", teams={TEAM: False}), {}, []),
    ("off for another team only", occ("ticket_received"),
     rule("ticket_received", teams={OTHER_TEAM: False}), {}, [CUSTOMER_MAIL]),
    ("created by an agent", occ("ticket_received", created_by=f"user:{AGENT}"), rule("ticket_received"), {}, []),
    ("opted out", occ("ticket_received"), rule("ticket_received"), {"opted_out": True},
     [("customer", None, {}, "the customer opted out of notifications")]),
    ("no address", occ("ticket_received"), rule("ticket_received"),
     {"ticket": TicketView(ticket_id=TICKET.ticket_id, channel="dingtalk", requester={"name": "x"})},
     [("customer", None, {}, "no e-mail address (or WeChat openid) for the requester")]),
    ("wechat by openid", occ("ticket_received"), rule("ticket_received"),
     {"ticket": TicketView(ticket_id=TICKET.ticket_id, channel="wechat", requester={"wechat_openid": "o-1"})},
     [("customer", "wechat", {"openid": "o-1"}, None)]),
    ("stale", occ("ticket_received", time=NOW - timedelta(days=2)), rule("ticket_received"), {},
     [("customer", None, {}, "stale event")]),
    ("solved", occ("ticket_solved"), rule("ticket_solved"), {}, [CUSTOMER_MAIL]),
    ("assigned by a supervisor", occ("ticket_assigned", actor=f"user:{SUPER}"),
     rule("ticket_assigned", ("assignee",)), {}, [(f"user:{AGENT}", "email", {"to": "li.na@example.com"}, None)]),
    ("took it themselves", occ("ticket_assigned", actor=f"user:{AGENT}"), rule("ticket_assigned", ("assignee",)),
     {}, []),
    ("ids in another case", occ("ticket_assigned", assignee_id=AGENT.upper(), actor=f"user:{AGENT.upper()}"),
     rule("ticket_assigned", ("assignee",)), {}, []),
    ("ids in another case, assigned by someone else", occ("ticket_assigned", assignee_id=AGENT.upper()),
     rule("ticket_assigned", ("assignee",)), {}, [(f"user:{AGENT}", "email", {"to": "li.na@example.com"}, None)]),
    ("only the team changed", occ("ticket_assigned", previous_assignee_id=AGENT),
     rule("ticket_assigned", ("assignee",)), {}, []),
    ("assigned, on WeCom", occ("ticket_assigned"), rule("ticket_assigned", ("assignee",), agent_channel="wecom"), {},
     [(f"user:{AGENT}", "wecom", {"userid": "LiNa"}, None)]),
    ("no DingTalk id: e-mail instead", occ("ticket_assigned"),
     rule("ticket_assigned", ("assignee",), agent_channel="dingtalk"), {},
     [(f"user:{AGENT}", "email", {"to": "li.na@example.com"}, None)]),
    ("breach to assignee and supervisors", occ("sla_breached"), rule("sla_breached", ("assignee", "team_supervisors"),
                                                                     agent_channel="dingtalk"), {},
     [(f"user:{AGENT}", "email", {"to": "li.na@example.com"}, None),
      (f"user:{SUPER}", "dingtalk", {"userid": "staff-9"}, None)]),
    ("no assignee: supervisors only", occ("sla_warning", assignee_id=None),
     rule("sla_warning", ("assignee", "team_supervisors")), {"ticket": TicketView(ticket_id=TICKET.ticket_id)},
     [(f"user:{SUPER}", "email", {"to": "wang.qiang@example.com"}, None),
      ("assignee", None, {}, "the ticket has no assignee")]),
    ("named users, deduplicated, skips recorded", occ("sla_warning"),
     rule("sla_warning", ("assignee", "users"), user_ids=(AGENT, GONE, NOMAIL, str(uuid.uuid4()))), {},
     None),
    ("escalation notify list", occ("escalation", notify=(BOSS, "ops@example.com", "supervisors", "nonsense")),
     rule("escalation", ("assignee",)), {},
     [(f"user:{AGENT}", "email", {"to": "li.na@example.com"}, None),
      (f"user:{BOSS}", "email", {"to": "boss@example.com"}, None),
      (f"user:{SUPER}", "email", {"to": "wang.qiang@example.com"}, None),
      ("email:ops@example.com", "email", {"to": "ops@example.com"}, None),
      ("notify:nonsense", None, {}, "not a user id, role or e-mail address")]),
    ("opt-out does not touch agents", occ("sla_breached"), rule("sla_breached", ("assignee",)), {"opted_out": True},
     [(f"user:{AGENT}", "email", {"to": "li.na@example.com"}, None)]),
])
def test_rules(case, o, r, kw, expected) -> None:
    got = run(o, r, **kw)
    if expected is None:  # the named-users case
        assert [(g[0], g[3]) for g in got] == [
            (f"user:{AGENT}", None), (f"user:{GONE}", "user is deactivated"),
            (f"user:{NOMAIL}", "no email id and no e-mail address for this user"),
            (got[3][0], "unknown user (not in users.events)")]
    else:
        assert got == expected, case


def _event(cls, data_cls, **data):
    return cls(source="test", subject=str(data.get("ticket_id", "x")), data=data_cls(**data))


def test_which_events_notify() -> None:
    tid = uuid.uuid4()
    solved = _event(events.TicketStatusChanged, events.TicketStatusChangedData, ticket_id=tid, from_status="open",
                    to_status="solved", changed_at=NOW)
    reopened = _event(events.TicketStatusChanged, events.TicketStatusChangedData, ticket_id=tid, from_status="solved",
                      to_status="open", changed_at=NOW)
    assert occurrence_of(solved).key == "ticket_solved"
    assert occurrence_of(reopened) is None
    restored = _event(events.TicketStatusChanged, events.TicketStatusChangedData, ticket_id=tid, from_status="closed",
                      to_status="solved", changed_at=NOW, reason="restored")
    assert occurrence_of(restored) is None  # a deleted ticket restored to solved was not solved again
    breach = _event(events.SlaBreached, events.SlaAlertData, ticket_id=tid, metric="first_response", due_at=NOW)
    assert occurrence_of(breach).key == "sla_breached" and occurrence_of(breach).sla["due_at"] == NOW
    esc = _event(events.SlaEscalationRequested, events.SlaEscalationRequestedData, ticket_id=tid, metric="resolution",
                 actions=events.SlaEscalationActions(notify=["ops@example.com"]))
    assert occurrence_of(esc).notify == ("ops@example.com",)


from hypothesis import given, settings, strategies as st  # noqa: E402

from notify_svc.notifications.catalogue import KEYS  # noqa: E402

_USER_IDS = st.sampled_from([AGENT, SUPER, BOSS, GONE, NOMAIL, str(uuid.UUID(int=7))])


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(list(KEYS)), enabled=st.booleans(), team_switch=st.sampled_from([None, True, False]),
       recipients=st.lists(st.sampled_from(["customer", "assignee", "team_supervisors", "users"]), unique=True),
       user_ids=st.lists(_USER_IDS, max_size=4), assignee=st.one_of(st.none(), _USER_IDS),
       opted_out=st.booleans(), age_h=st.sampled_from([0, 23, 25]),
       notify=st.lists(st.sampled_from([BOSS, "ops@example.com", "supervisors", "x"]), max_size=3))
def test_laws(key, enabled, team_switch, recipients, user_ids, assignee, opted_out, age_h, notify) -> None:
    teams = {} if team_switch is None else {TEAM: team_switch}
    r = Rule(key=key, enabled=enabled, recipients=tuple(recipients), user_ids=tuple(user_ids), teams=teams)
    o = occ(key, time=NOW - timedelta(hours=age_h), assignee_id=assignee, notify=tuple(notify),
            actor="system:routing", created_by="channel:web")
    intents = evaluate(o, rule=r, ticket=TICKET, users=USERS, supervisors=[SUPER], customer_opted_out=opted_out,
                       now=NOW)
    sent = [i for i in intents if i.skip is None]
    # the team's switch wins over the rule's; off means nothing at all, not even a skip record
    if not (team_switch if team_switch is not None else enabled):
        assert intents == []
    # one intent per recipient: the dedupe key (event, key, recipient) never collides
    assert len({i.recipient for i in intents}) == len(intents)
    # an opted-out customer, and anyone after 24 hours, gets nothing
    if opted_out:
        assert all(i.recipient != "customer" for i in sent)
    if age_h > 24:
        assert sent == []
    # customers' keys go to the customer only, agents' keys never to the customer
    if KEYS[key].audience == "customer":
        assert all(i.recipient == "customer" for i in intents)
    else:
        assert all(i.recipient != "customer" for i in intents)
    # whatever is sent has a channel and an address on it
    for i in sent:
        assert i.channel in ("email", "wechat", "wecom", "dingtalk") and i.route
