"""Who gets a notification for an event, on which channel, and who is skipped and why. Pure
functions over plain data: the handlers load the rule, the projections and the opt-out, call
``occurrence_of`` and ``evaluate``, and render and enqueue what comes out.

Decisions (docs/notifications.md):
- ``ticket_received`` is not sent for a ticket an agent created (``created_by`` is a user): the
  agent is talking to the customer already, often on the phone, and an automatic "we received
  your request" would be noise. Channels (``channel:...``) and the system create customer tickets.
- ``ticket_solved`` fires on a change *to* solved only.
- ``ticket_assigned`` is not sent to an agent who assigned the ticket to themselves, nor when only
  the team changed.
- A rule switched off for the ticket's team (a team override) sends nothing; an override that
  switches it on sends even when the rule is off for everyone else.
- A customer who opted out gets no notification (the skip is recorded with its reason); replies
  are not notifications and are never affected.
- ``approval_requested`` goes to the approvers the event names (ticket-svc resolved a team or a
  role to its members when the step started; a sequential countersign names the party whose turn
  it is, once per turn); ``approval_decided`` only when the decision ended the step (completed or
  rejected, not each of several approvals) and not to an assignee who made that decision.
- An event older than ``MAX_EVENT_AGE`` sends nothing (recorded as stale): replaying topics from
  the start to rebuild projections must not mail last month's acknowledgements again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .catalogue import KEYS

MAX_EVENT_AGE = timedelta(hours=24)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Rule:
    key: str
    enabled: bool
    recipients: tuple[str, ...]
    user_ids: tuple[str, ...] = ()
    agent_channel: str = "email"
    #: team id (str) -> enabled, for the teams that override the rule
    teams: Mapping[str, bool] = field(default_factory=dict)

    def enabled_for(self, team_id: str | None) -> bool:
        if team_id is not None and team_id in self.teams:
            return self.teams[team_id]
        return self.enabled


@dataclass(frozen=True, slots=True)
class TicketView:
    """notify-svc's projection of a ticket (from ticket events)."""

    ticket_id: str
    number: int | None = None
    subject: str | None = None
    status: str | None = None
    priority: str | None = None
    channel: str | None = None
    language: str | None = None
    requester: Mapping[str, Any] = field(default_factory=dict)
    customer_id: str | None = None
    team_id: str | None = None
    assignee_id: str | None = None
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class UserView:
    """A gateway user (from users.events) with the chat ids set through notification contacts."""

    user_id: str
    name: str | None = None
    role: str | None = None
    active: bool = True
    email: str | None = None
    wecom_userid: str | None = None
    dingtalk_userid: str | None = None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """An event, as far as notifications care."""

    key: str
    event_id: uuid.UUID
    time: datetime
    ticket_id: str
    team_id: str | None = None
    assignee_id: str | None = None
    actor: str | None = None
    created_by: str | None = None
    previous_assignee_id: str | None = None
    sla: Mapping[str, Any] | None = None
    #: sla.escalation_requested: the policy's ``notify`` entries
    notify: tuple[str, ...] = ()
    #: ticket.approval_requested: the user ids the step waits for
    approvers: tuple[str, ...] = ()
    #: approval keys: the step's facts (catalogue.VARIABLES["step"]; ``decided_by`` is a user id here)
    step: Mapping[str, Any] | None = None
    #: the ticket's number as the event carried it, for a ticket not (yet) in the projection
    number: int | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """One notification to one recipient, or the record of why it is not sent (``skip``)."""

    key: str
    #: ``customer``, ``user:<id>`` or ``email:<address>``: with the event id, the dedupe key
    recipient: str
    channel: str | None = None
    route: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    email: str | None = None
    #: the customer's language (agents: None, the tenant default applies)
    language: str | None = None
    skip: str | None = None


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def occurrence_of(event: Any) -> Occurrence | None:
    """The notification key an event triggers, with the facts the rules need; None when it
    triggers none (a status change to anything but solved, an unrelated type)."""
    data = event.data
    common = {"event_id": event.id, "time": event.time, "ticket_id": str(data.ticket_id)}
    if event.type == "ticket.created":
        return Occurrence("ticket_received", **common, team_id=_s(data.team_id), assignee_id=data.assignee_id,
                          created_by=data.created_by)
    if event.type == "ticket.status_changed":
        # a restore back to solved is no new resolution
        if data.to_status != "solved" or data.from_status == "solved" or data.reason is not None:
            return None
        return Occurrence("ticket_solved", **common, team_id=_s(data.team_id), assignee_id=data.assignee_id,
                          actor=data.actor)
    if event.type == "ticket.assigned":
        return Occurrence("ticket_assigned", **common, team_id=_s(data.team_id), assignee_id=data.assignee_id,
                          actor=data.actor, previous_assignee_id=data.previous_assignee_id)
    if event.type in ("sla.warning", "sla.breached"):
        return Occurrence("sla_warning" if event.type == "sla.warning" else "sla_breached", **common,
                          team_id=_s(data.team_id), assignee_id=data.assignee_id,
                          sla={"metric": data.metric, "due_at": data.due_at, "fraction": data.fraction,
                               "policy": data.policy})
    if event.type == "ticket.approval_requested":
        return Occurrence("approval_requested", **common, team_id=_s(data.team_id), assignee_id=data.assignee_id,
                          actor=data.actor, number=data.number, approvers=tuple(data.approvers),
                          step={"id": str(data.step_id), "key": data.step, "name": data.name, "kind": data.kind,
                                "rule": data.rule, "n": data.n, "expires_at": data.expires_at})
    if event.type == "ticket.approval_decided":
        if data.step_status not in ("completed", "rejected"):
            return None
        return Occurrence("approval_decided", **common, team_id=_s(data.team_id), assignee_id=data.assignee_id,
                          actor=data.actor, number=data.number,
                          step={"id": str(data.step_id), "key": data.step, "kind": data.kind,
                                "decision": data.decision, "decided_by": data.decided_by,
                                "status": data.step_status, "comment": data.comment})
    if event.type == "sla.escalation_requested":
        return Occurrence("escalation", **common, sla={"metric": data.metric, "due_at": None, "fraction": None,
                                                       "policy": None},
                          notify=tuple(data.actions.notify))
    return None


def _agent_intent(key: str, ref: str, user: UserView | None, channel: str) -> Intent:
    if user is None:
        return Intent(key, ref, skip="unknown user (not in users.events)")
    if not user.active:
        return Intent(key, ref, name=user.name, skip="user is deactivated")
    chat_id = {"wecom": user.wecom_userid, "dingtalk": user.dingtalk_userid}.get(channel)
    if channel == "wecom" and chat_id:
        return Intent(key, ref, "wecom", {"userid": chat_id}, name=user.name, email=user.email)
    if channel == "dingtalk" and chat_id:
        # ``userid``: a member of the company, sent a work notification (not a robot chat's staff id)
        return Intent(key, ref, "dingtalk", {"userid": chat_id}, name=user.name, email=user.email)
    # e-mail, and the fallback of a chat channel for which the agent has no id
    if user.email:
        return Intent(key, ref, "email", {"to": user.email}, name=user.name, email=user.email)
    return Intent(key, ref, name=user.name, skip=f"no {channel} id and no e-mail address for this user")


def customer_route(ticket: TicketView) -> tuple[str | None, dict[str, Any], str | None]:
    """(channel, route, why not) for a notification to the requester. E-mail whenever the
    requester has an address (the acknowledgement carries ``[#number]``, so an answer threads);
    WeChat by openid; other chat channels need a conversation route that only reply requests
    carry, so without an address the customer is not notified."""
    requester = ticket.requester or {}
    email = requester.get("email")
    if email:
        return "email", {"to": email, "cc": []}, None
    openid = requester.get("wechat_openid")
    if ticket.channel == "wechat" and openid:
        return "wechat", {"openid": openid}, None
    return None, {}, "no e-mail address (or WeChat openid) for the requester"


def evaluate(occ: Occurrence, *, rule: Rule, ticket: TicketView, users: Mapping[str, UserView],
             supervisors: Sequence[str], customer_opted_out: bool, now: datetime) -> list[Intent]:
    """The intents of one event: notifications to send and skips to record. Empty when the rule
    is off (for the ticket's team) or the event does not call for one at all."""
    spec = KEYS[occ.key]
    team_id = occ.team_id or ticket.team_id
    if not rule.enabled_for(team_id):
        return []
    assignee = canon_user_id(occ.assignee_id if occ.assignee_id is not None else ticket.assignee_id)
    if occ.key == "ticket_received":
        created_by = occ.created_by or ticket.created_by or ""
        if created_by.startswith("user:"):
            return []
    if occ.key == "ticket_assigned":
        if assignee is None or assignee == canon_user_id(occ.previous_assignee_id):
            return []
        if occ.actor and occ.actor.startswith("user:") and canon_user_id(occ.actor[5:]) == assignee:
            return []
    if occ.key == "approval_decided" and assignee is not None and assignee == user_ref((occ.step or {}).get("decided_by")):
        return []  # the assignee decided it: nothing to tell them

    stale = now - occ.time > MAX_EVENT_AGE
    intents: list[Intent] = []
    if spec.audience == "customer":
        if "customer" not in rule.recipients:
            return []
        requester = ticket.requester or {}
        name, email = requester.get("name"), requester.get("email")
        if stale:
            return [Intent(occ.key, "customer", name=name, skip="stale event")]
        if customer_opted_out:
            return [Intent(occ.key, "customer", name=name, email=email,
                           skip="the customer opted out of notifications")]
        channel, route, why = customer_route(ticket)
        if channel is None:
            return [Intent(occ.key, "customer", name=name, skip=why)]
        return [Intent(occ.key, "customer", channel, route, name=name, email=email, language=ticket.language)]

    wanted: list[str] = []  # user ids, then e-mail addresses, in order, without repeats
    others: list[Intent] = []
    if "approvers" in rule.recipients:
        wanted.extend(u for u in (user_ref(a) for a in occ.approvers) if u)
    if "assignee" in rule.recipients:
        if assignee:
            wanted.append(assignee)
        else:  # an unassigned ticket's SLA warning reaches nobody by this recipient: say so
            others.append(Intent(occ.key, "assignee", skip="the ticket has no assignee"))
    if "team_supervisors" in rule.recipients:
        wanted.extend(supervisors)
    if "users" in rule.recipients:
        wanted.extend(rule.user_ids)
    for entry in occ.notify:
        entry = entry.strip()
        if entry in ("assignee",):
            if assignee:
                wanted.append(assignee)
        elif entry in ("supervisors", "team_supervisors"):
            wanted.extend(supervisors)
        elif _is_uuid(entry):
            wanted.append(str(uuid.UUID(entry)))
        elif _EMAIL.match(entry):
            others.append(Intent(occ.key, f"email:{entry.lower()}", "email", {"to": entry}, email=entry))
        else:
            others.append(Intent(occ.key, f"notify:{entry[:100]}", skip="not a user id, role or e-mail address"))
    seen: set[str] = set()
    for user_id in (canon_user_id(w) for w in wanted):
        if user_id in seen:
            continue
        seen.add(user_id)
        intents.append(_agent_intent(occ.key, f"user:{user_id}", users.get(user_id), rule.agent_channel))
    for intent in others:
        if intent.recipient not in seen:
            seen.add(intent.recipient)
            intents.append(intent)
    if stale:
        return [Intent(i.key, i.recipient, name=i.name, skip="stale event") for i in intents]
    return intents


#: the log's key of a trigger's or automation's ``notify`` action (ticket.notification_requested):
#: not a catalogue key, since ticket-svc rendered the message and the trigger is its rule
REQUESTED_KEY = "notification_requested"


def requested_intents(to: Sequence[str], *, ticket: TicketView, assignee: str | None, users: Mapping[str, UserView],
                      supervisors: Sequence[str], agent_channel: str, customer_opted_out: bool,
                      stale: bool) -> list[Intent]:
    """Who a trigger's or automation's ``notify`` action reaches: the same recipient resolution
    as the notifications (agents through ``_agent_intent``, the requester through
    ``customer_route`` and the opt-out), one intent per distinct recipient, each entry that
    reaches nobody recorded with the reason."""
    key = REQUESTED_KEY
    intents: list[Intent] = []
    seen: set[str] = set()

    def agent(user_id: str) -> None:
        ref = f"user:{user_id}"
        if ref not in seen:
            seen.add(ref)
            intents.append(_agent_intent(key, ref, users.get(user_id), agent_channel))

    for entry in (e.strip() for e in to):
        if entry == "assignee":
            if assignee:
                agent(assignee)
            elif "assignee" not in seen:
                seen.add("assignee")
                intents.append(Intent(key, "assignee", skip="the ticket has no assignee"))
        elif entry in ("team_supervisors", "supervisors"):
            for supervisor in supervisors:
                agent(canon_user_id(supervisor) or supervisor)
        elif entry in ("requester", "customer"):
            if "customer" in seen:
                continue
            seen.add("customer")
            requester = ticket.requester or {}
            name, email = requester.get("name"), requester.get("email")
            channel, route, why = customer_route(ticket)
            if customer_opted_out:
                intents.append(Intent(key, "customer", name=name, email=email,
                                      skip="the customer opted out of notifications"))
            elif channel is None:
                intents.append(Intent(key, "customer", name=name, skip=why))
            else:
                intents.append(Intent(key, "customer", channel, route, name=name, email=email,
                                      language=ticket.language))
        elif entry.startswith("user:") and _is_uuid(entry[5:]):
            agent(str(uuid.UUID(entry[5:])))
        elif f"notify:{entry[:100]}" not in seen:
            seen.add(f"notify:{entry[:100]}")
            intents.append(Intent(key, f"notify:{entry[:100]}", skip=(
                "followers are not known to notify-svc: name them as user:<id>" if entry == "followers"
                else "not assignee, team_supervisors, supervisors, requester or user:<id>")))
    if stale:
        return [Intent(i.key, i.recipient, name=i.name, skip="stale event") for i in intents]
    return intents


def user_ref(value: str | None) -> str | None:
    """A user id from ``user:<id>`` or a bare id (events name people both ways), canonical."""
    if not value:
        return None
    return canon_user_id(value[5:] if value.startswith("user:") else value)


def canon_user_id(user_id: str | None) -> str | None:
    """A user id as the projections key it (a lower-case UUID), whatever case the event used."""
    if user_id is None:
        return None
    try:
        return str(uuid.UUID(user_id))
    except ValueError:
        return user_id


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
