"""Notification rules for the API and the handlers; never commits (endpoints and the consumer own
the transaction). Templates, rules and preferences are small: read fresh per request and per event."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from helpdesk_common.concurrency import check_version, conflict
from helpdesk_common.problems import Problem

from ..deliveries import handoff as deliveries
from ..deliveries.repository import LogEntry
from ..deliveries.service import destination_of
from . import render, repository, rules
from .catalogue import BUILTIN, BUILTIN_LANGUAGES, KEYS, Template, allowed_recipients
from .schemas import PreviewIn, RulePatch, TemplateIn

#: notifications share the replies' attempt budget (deliveries) unless the settings say otherwise
DEFAULT_MAX_ATTEMPTS = 8


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not found", what)


def template_problem(problems: Sequence[render.TemplateProblem]) -> Problem:
    return Problem(422, "validation-error", "Validation failed", "The template does not render.",
                   errors=[p.as_error() for p in problems])


def _key(key: str) -> str:
    if key not in KEYS:
        raise not_found(f"No notification key {key!r} (keys: {', '.join(KEYS)}).")
    return key


def _language(language: str) -> str:
    norm = render.normalise_language(language)
    if norm is None:
        raise Problem(422, "validation-error", "Validation failed", "Not a language tag.",
                      errors=[{"field": "path.language", "message": "a language tag such as zh-CN or en",
                               "code": "language"}])
    return norm


# ---- templates --------------------------------------------------------------------------------------

def template_read(key: str, language: str, row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is not None:
        return {"key": key, "language": language, "subject": row["subject"], "body_text": row["body_text"],
                "body_html": row["body_html"], "version": row["version"], "customized": True,
                "updated_at": row["updated_at"], "updated_by": row["updated_by"]}
    built = BUILTIN[(key, language)]
    return {"key": key, "language": language, "subject": built.subject, "body_text": built.body_text,
            "body_html": built.body_html, "version": 0, "customized": False, "updated_at": None, "updated_by": None}


async def list_templates(conn: Any) -> list[dict[str, Any]]:
    stored = {(r["key"], r["language"]): r for r in await repository.templates(conn)}
    pairs = sorted(set(stored) | set(BUILTIN))
    return [template_read(k, lang, stored.get((k, lang))) for k, lang in pairs]


async def get_template(conn: Any, *, key: str, language: str) -> dict[str, Any]:
    key, language = _key(key), _language(language)
    row = await repository.template(conn, key, language)
    if row is None and (key, language) not in BUILTIN:
        raise not_found(f"No {language} template for {key!r}.")
    return template_read(key, language, row)


async def put_template(conn: Any, *, key: str, language: str, body: TemplateIn, by: str,
                       if_match: str | None) -> dict[str, Any]:
    """Checked, then saved as a new version. A built-in never edited is version 0."""
    key, language = _key(key), _language(language)
    template = Template(body.subject, body.body_text, body.body_html)
    problems = render.validate(template, language=language)
    if problems:
        raise template_problem(problems)
    row = await repository.template(conn, key, language, for_update=True)
    fields = {"subject": body.subject, "body_text": body.body_text, "body_html": body.body_html, "updated_by": by}
    if row is None:
        check_version(0, if_match, what="template")
        row = await repository.insert_template(conn, key=key, language=language, **fields)
        if row is None:  # a concurrent first save committed between our read and insert
            raise conflict(1, "template")
    else:
        check_version(row["version"], if_match, what="template")
        row = await repository.update_template(conn, key=key, language=language, **fields)
    return template_read(key, language, row)


async def delete_template(conn: Any, *, key: str, language: str, if_match: str | None) -> None:
    """Back to the built-in (or gone, for a language without one)."""
    key, language = _key(key), _language(language)
    row = await repository.template(conn, key, language, for_update=True)
    if row is None:
        raise not_found(f"No stored {language} template for {key!r}.")
    check_version(row["version"], if_match, what="template")
    await repository.delete_template(conn, key, language)


async def template_for(conn: Any, *, key: str, language: str) -> Template | None:
    row = await repository.template(conn, key, language)
    if row is not None:
        return Template(row["subject"], row["body_text"], row["body_html"])
    return BUILTIN.get((key, language))


async def preview(conn: Any, *, body: PreviewIn) -> dict[str, Any]:
    language = _language(body.language)
    sample = body.sample.model_dump(exclude_unset=True)
    stored = await template_for(conn, key=body.key, language=language)
    parts = {part: getattr(body, part) for part in render.PARTS}
    if stored is None and None in (parts["subject"], parts["body_text"]):
        raise not_found(f"No {language} template for {body.key!r}: send subject and body_text to preview one.")
    template = Template(parts["subject"] if parts["subject"] is not None else stored.subject,  # type: ignore[union-attr]
                        parts["body_text"] if parts["body_text"] is not None else stored.body_text,  # type: ignore[union-attr]
                        parts["body_html"] if parts["body_html"] is not None else (stored.body_html if stored else ""))
    try:
        rendered = render.render(template, render.sample_context(sample, language=language))
    except render.RenderError as exc:
        raise template_problem(exc.problems) from None
    return {"key": body.key, "language": language, "subject": rendered.subject, "body_text": rendered.body_text,
            "body_html": rendered.body_html}


# ---- rules --------------------------------------------------------------------------------------------

def rule_read(row: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    spec = KEYS[row["key"]]
    return {"key": row["key"], "event_type": spec.event_type, "audience": spec.audience,
            "description": spec.description, "enabled": row["enabled"], "recipients": list(row["recipients"]),
            "user_ids": list(row["user_ids"]), "agent_channel": row["agent_channel"],
            "teams": [{"team_id": o["team_id"], "enabled": o["enabled"], "brand": o["brand"],
                       "updated_at": o["updated_at"], "updated_by": o["updated_by"]} for o in overrides],
            "version": row["version"], "updated_at": row["updated_at"], "updated_by": row["updated_by"]}


async def list_rules(conn: Any) -> list[dict[str, Any]]:
    overrides: dict[str, list[Any]] = {}
    for o in await repository.team_overrides(conn):
        overrides.setdefault(o["rule_key"], []).append(o)
    return [rule_read(r, overrides.get(r["key"], [])) for r in await repository.rules(conn) if r["key"] in KEYS]


async def _locked_rule(conn: Any, key: str, if_match: str | None) -> Any:
    row = await repository.rule(conn, _key(key), for_update=True)
    if row is None:
        raise not_found(f"No rule {key!r}.")
    check_version(row["version"], if_match, what="rule")
    return row


async def get_rule(conn: Any, *, key: str) -> dict[str, Any]:
    row = await repository.rule(conn, _key(key))
    if row is None:
        raise not_found(f"No rule {key!r}.")
    return rule_read(row, await repository.team_overrides(conn, key))


async def patch_rule(conn: Any, *, key: str, body: RulePatch, by: str, if_match: str | None) -> dict[str, Any]:
    row = await _locked_rule(conn, key, if_match)
    changes = body.model_dump(exclude_unset=True)
    recipients = changes.get("recipients", list(row["recipients"]))
    allowed = allowed_recipients(key)
    wrong = [r for r in recipients if r not in allowed]
    if wrong:
        raise Problem(422, "validation-error", "Validation failed", "Recipients this notification cannot have.",
                      errors=[{"field": "body.recipients", "code": "recipient",
                               "message": f"{', '.join(wrong)}: {key} goes to {' / '.join(allowed)} only"}])
    user_ids = [str(u) for u in changes["user_ids"]] if "user_ids" in changes else list(row["user_ids"])
    updated = await repository.update_rule(
        conn, key, enabled=changes.get("enabled", row["enabled"]), recipients=recipients, user_ids=user_ids,
        agent_channel=changes.get("agent_channel", row["agent_channel"]), updated_by=by)
    return rule_read(updated, await repository.team_overrides(conn, key))


async def put_team_override(conn: Any, *, key: str, team_id: uuid.UUID, enabled: bool, by: str,
                            if_match: str | None) -> dict[str, Any]:
    await _locked_rule(conn, key, if_match)
    await repository.put_team_override(conn, key, team_id, enabled=enabled, updated_by=by)
    await repository.bump_rule(conn, key)
    return await get_rule(conn, key=key)


async def delete_team_override(conn: Any, *, key: str, team_id: uuid.UUID, if_match: str | None) -> dict[str, Any]:
    await _locked_rule(conn, key, if_match)
    if not await repository.delete_team_override(conn, key, team_id):
        raise not_found(f"Team {team_id} has no override of {key!r}.")
    await repository.bump_rule(conn, key)
    return await get_rule(conn, key=key)


async def load_rule(conn: Any, key: str) -> tuple[rules.Rule, dict[str, Template]] | None:
    """The rule of ``key`` and its stored templates by language (one round trip)."""
    return rule_of(await repository.rule_with_teams(conn, key), key)


def rule_of(row: Mapping[str, Any] | None, key: str) -> tuple[rules.Rule, dict[str, Template]] | None:
    """The rule and its stored templates from the columns of ``repository.rule_with_teams``
    (None: no rule of that key)."""
    if row is None or row["key"] is None:
        return None
    teams = {str(team_id): enabled for team_id, enabled in zip(row["team_ids"], row["team_enabled"])}
    rule = rules.Rule(key=key, enabled=row["enabled"], recipients=tuple(row["recipients"]),
                      user_ids=tuple(row["user_ids"]), agent_channel=row["agent_channel"], teams=teams)
    found = row["templates"]
    if isinstance(found, str):  # a connection without the pool's jsonb codec
        found = orjson.loads(found)
    stored = {t["language"]: Template(t["subject"], t["body_text"], t["body_html"]) for t in found}
    return rule, stored


# ---- preferences and contacts ---------------------------------------------------------------------------

def preference_read(kind: str, value: str, row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"kind": kind, "value": value, "opted_out": False, "version": 0, "updated_at": None,
                "updated_by": None}
    return {"kind": kind, "value": value, "opted_out": row["opted_out"], "version": row["version"],
            "updated_at": row["updated_at"], "updated_by": row["updated_by"]}


def email_key(address: str) -> str:
    """How an address is stored and compared: lower-cased (the path's pattern says what an address
    is; requesters' addresses are lower-cased the same way when looked up)."""
    return address.strip().lower()


async def get_preference(conn: Any, *, kind: str, value: str) -> dict[str, Any]:
    return preference_read(kind, value, await repository.opt_out(conn, kind, value))


async def put_preference(conn: Any, *, kind: str, value: str, opted_out: bool, by: str,
                         if_match: str | None) -> dict[str, Any]:
    row = await repository.opt_out(conn, kind, value, for_update=True)
    check_version(row["version"] if row is not None else 0, if_match, what="preference")
    return preference_read(kind, value, await repository.put_opt_out(conn, kind, value, opted_out=opted_out,
                                                                      updated_by=by))


def contact_read(user_id: uuid.UUID, row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"user_id": user_id, "wecom_userid": None, "dingtalk_userid": None, "version": 0,
                "updated_at": None, "updated_by": None}
    return {"user_id": user_id, "wecom_userid": row["wecom_userid"], "dingtalk_userid": row["dingtalk_userid"],
            "version": row["version"], "updated_at": row["updated_at"], "updated_by": row["updated_by"]}


async def put_contact(conn: Any, *, user_id: uuid.UUID, wecom_userid: str | None, dingtalk_userid: str | None,
                      by: str, if_match: str | None) -> dict[str, Any]:
    row = await repository.contact(conn, user_id, for_update=True)
    check_version(row["version"] if row is not None else 0, if_match, what="contact")
    return contact_read(user_id, await repository.put_contact(
        conn, user_id, wecom_userid=wecom_userid, dingtalk_userid=dingtalk_userid, updated_by=by))


# ---- from an event to deliveries ----------------------------------------------------------------------------

def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def _due(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return None


def step_context(step: Mapping[str, Any] | None, *, decider_name: str | None) -> dict[str, Any]:
    """The ``step`` variable: every field present, times as the SLA's are shown, the decider by
    name (a template must not show a bare user id to people)."""
    step = step or {}
    return {"key": step.get("key"), "name": step.get("name"), "kind": step.get("kind"), "rule": step.get("rule"),
            "n": step.get("n"), "expires_at": _due(step.get("expires_at")), "decision": step.get("decision"),
            "decided_by": decider_name if step.get("decided_by") else None, "status": step.get("status"),
            "comment": step.get("comment")}


def context_for(intent: rules.Intent, *, ticket: rules.TicketView, occ: rules.Occurrence, language: str,
                agent_name: str | None, settings: Any, decider_name: str | None = None) -> dict[str, Any]:
    """The variables of ``catalogue.VARIABLES``, all present (null where unknown)."""
    agent_url = (getattr(settings, "notification_agent_url", "") or "").rstrip("/")
    requester = ticket.requester or {}
    sla = occ.sla or {}
    return {
        "ticket": {"id": ticket.ticket_id, "number": ticket.number, "subject": ticket.subject,
                   "status": ticket.status, "priority": ticket.priority, "channel": ticket.channel,
                   "url": f"{agent_url}/tickets/{ticket.ticket_id}" if agent_url and intent.recipient != "customer"
                   else None},
        "requester": {"name": requester.get("name"), "email": requester.get("email")},
        "agent": {"name": agent_name},
        "recipient": {"name": intent.name},
        "team": {"id": ticket.team_id, "name": None},
        "sla": {"metric": sla.get("metric"), "due_at": _due(sla.get("due_at")), "fraction": sla.get("fraction"),
                "policy": sla.get("policy")},
        "step": step_context(occ.step, decider_name=decider_name),
        "portal_url": getattr(settings, "notification_portal_url", "") or None,
        "reply_hint": render.reply_hint(intent.channel if intent.recipient == "customer" else "email", language),
        "language": language,
    }


def ticket_view(row: Mapping[str, Any] | None, occ: rules.Occurrence) -> rules.TicketView:
    if row is None:  # an SLA event about a ticket this service has not seen (yet): what the event says
        return rules.TicketView(ticket_id=occ.ticket_id, number=occ.number, team_id=occ.team_id,
                                assignee_id=occ.assignee_id)
    return rules.TicketView(
        ticket_id=str(row["ticket_id"]), number=row["number"], subject=row["subject"], status=row["status"],
        priority=row["priority"], channel=row["channel"], language=row["language"],
        requester=dict(row["requester"] or {}), customer_id=str(row["customer_id"]) if row["customer_id"] else None,
        team_id=str(row["team_id"]) if row["team_id"] else None, assignee_id=row["assignee_id"],
        created_by=row["created_by"])


async def enqueue_notification(conn: Any, *, delivery_id: uuid.UUID, channel: str, destination: str,
                               dedupe_key: str, payload: dict[str, Any], max_attempts: int, ticket_id: uuid.UUID,
                               event_id: uuid.UUID, log: LogEntry) -> uuid.UUID | None:
    """A queued delivery of kind ``notification``, through the deliveries module, in the caller's
    transaction, and its ``log`` entry (``queued``, with the delivery's id) in the same statement;
    None when ``dedupe_key`` has one already (a new entry then has no delivery id). The
    dispatcher sends it as it sends a
    reply: its payload has the same fields (route, subject, bodies, language, number, recipient)."""
    return await deliveries.queue(conn, delivery_id=delivery_id, kind="notification", channel=channel,
                                   destination=destination, dedupe_key=dedupe_key, payload=payload,
                                   max_attempts=max_attempts, ticket_id=ticket_id, event_id=event_id, log=log)


def dedupe_key(event_id: uuid.UUID, key: str, recipient: str) -> str:
    """One notification per (event, key, recipient): a redelivered or replayed event sends nothing twice."""
    return f"notification:{event_id}:{key}:{recipient}"


async def _users(conn: Any, ids: set[str]) -> dict[str, rules.UserView]:
    wanted = [u for u in (_uuid(i) for i in ids) if u is not None]
    if not wanted:
        return {}
    return {str(r["user_id"]): rules.UserView(
        user_id=str(r["user_id"]), name=r["name"], role=r["role"], active=r["active"], email=r["email"],
        wecom_userid=r["wecom_userid"], dingtalk_userid=r["dingtalk_userid"])
        for r in await repository.users_with_contacts(conn, wanted)}


class _Unread:
    """``notify``'s ``opted_out_by`` when the caller did not read it."""


UNREAD = _Unread()


async def notify(conn: Any, *, event: Any, settings: Any, now: datetime | None = None,
                 ticket_row: Any = None, opted_out_by: str | None | _Unread = UNREAD,
                 rule_key: str | None = None) -> list[rules.Intent]:
    """Evaluate, render and enqueue the notifications of one event, in the caller's transaction;
    ``ticket_row``: the ticket's projection row when the caller has just written it (else read);
    ``opted_out_by``: the opt-out that applies to its customer (``repository.is_opted_out``)
    when the caller read it with the row (else read here if the key's audience needs it);
    ``rule_key``: the key whose rule ``ticket_row`` carries (``repository.insert_ticket``)."""
    occ = rules.occurrence_of(event)
    if occ is None:
        return []
    if rule_key is not None and rule_key == occ.key:
        loaded = rule_of(ticket_row, occ.key)
    else:
        loaded = await load_rule(conn, occ.key)
    if loaded is None:
        return []
    rule, stored = loaded
    if ticket_row is None:
        ticket_row = await repository.ticket(conn, uuid.UUID(occ.ticket_id))
    ticket = ticket_view(ticket_row, occ)
    audience = KEYS[occ.key].audience
    supervisors: list[str] = []
    if audience == "agent" and ("team_supervisors" in rule.recipients
                                or any(n.strip() in ("supervisors", "team_supervisors") for n in occ.notify)):
        supervisors = [str(u) for u in await repository.active_supervisors(conn)]
    assignee = rules.canon_user_id(occ.assignee_id if occ.assignee_id is not None else ticket.assignee_id)
    decider = rules.user_ref((occ.step or {}).get("decided_by"))
    ids = {*supervisors, *rule.user_ids, *(n.strip() for n in occ.notify),
           *(u for u in (rules.user_ref(a) for a in occ.approvers) if u)}
    ids.update(u for u in (assignee, decider) if u)
    users = await _users(conn, ids)
    opted_out = False
    if audience == "customer":
        if isinstance(opted_out_by, _Unread):
            opted_out_by = await repository.is_opted_out(
                conn, customer_id=_uuid(ticket.customer_id), email=(ticket.requester or {}).get("email"))
        opted_out = opted_out_by is not None
    intents = rules.evaluate(occ, rule=rule, ticket=ticket, users=users, supervisors=supervisors,
                             customer_opted_out=opted_out, now=now or datetime.now(UTC))
    agent_name = users[assignee].name if assignee and assignee in users else None
    decider_name = users[decider].name if decider and decider in users else None
    ticket_uuid = uuid.UUID(occ.ticket_id)
    for intent in intents:
        if intent.skip is not None:
            await repository.log(conn, event_id=occ.event_id, key=occ.key, recipient=intent.recipient,
                                 ticket_id=ticket_uuid, status="skipped", reason=intent.skip, channel=None,
                                 delivery_id=None)
            continue
        await _enqueue(conn, intent=intent, occ=occ, ticket=ticket, agent_name=agent_name, settings=settings,
                       decider_name=decider_name, stored=stored)
    return intents


async def _enqueue(conn: Any, *, intent: rules.Intent, occ: rules.Occurrence, ticket: rules.TicketView,
                   agent_name: str | None, settings: Any, stored: dict[str, Template],
                   decider_name: str | None = None) -> None:
    """``stored``: the key's stored templates by language (``load_rule`` / ``rule_of``)."""
    default_language = getattr(settings, "notification_default_language", "en")
    available = sorted({lang for k, lang in BUILTIN if k == occ.key} | set(stored))
    language = render.choose_language(intent.language, available, default_language) or BUILTIN_LANGUAGES[-1]
    context = context_for(intent, ticket=ticket, occ=occ, language=language, agent_name=agent_name,
                          settings=settings, decider_name=decider_name)
    template = stored.get(language) or BUILTIN.get((occ.key, language))  # as template_for, from the rows read
    note = None
    try:
        rendered = render.render(template, context)  # type: ignore[arg-type]
    except (render.RenderError, AttributeError) as exc:
        # a stored template passed its checks when saved, so this is not expected; the built-in
        # says the same thing correctly, and the log keeps what went wrong
        fallback = BUILTIN.get((occ.key, language)) or BUILTIN[(occ.key, "en")]
        rendered = render.render(fallback, context)
        note = f"stored template failed, built-in used: {str(exc)[:300]}"
    delivery_id = uuid.uuid4()
    payload = {
        "ticket_id": occ.ticket_id, "number": ticket.number, "key": occ.key, "recipient_ref": intent.recipient,
        "channel": intent.channel, "route": dict(intent.route), "subject": rendered.subject,
        "body_text": rendered.body_text, "body_html": rendered.body_html, "language": language,
        "recipient": {"name": intent.name, "email": intent.email}, "automatic": True,
    }
    ticket_id = uuid.UUID(occ.ticket_id)
    await enqueue_notification(
        conn, delivery_id=delivery_id, channel=intent.channel or "email",
        destination=destination_of(intent.channel or "email", intent.route, settings=settings),
        dedupe_key=dedupe_key(occ.event_id, occ.key, intent.recipient), payload=payload,
        max_attempts=getattr(settings, "reply_max_attempts", DEFAULT_MAX_ATTEMPTS),
        ticket_id=ticket_id, event_id=occ.event_id,
        log=LogEntry(event_id=occ.event_id, key=occ.key, recipient=intent.recipient, ticket_id=ticket_id,
                     reason=note, channel=intent.channel))


# ---- a trigger's or an automation's notify action ---------------------------------------------------------

def requested_payload(intent: rules.Intent, *, data: Any, ticket: rules.TicketView, language: str) -> dict[str, Any]:
    """What the dispatcher sends: ticket-svc rendered ``subject`` and ``body`` already (the
    trigger's text), so they go as written, text only; the e-mail adapter adds ``[#number]``
    to the subject of an automatic message that lacks it, so an answer threads."""
    return {
        "ticket_id": str(data.ticket_id), "number": ticket.number, "key": rules.REQUESTED_KEY, "rule": data.rule,
        "recipient_ref": intent.recipient, "channel": intent.channel, "route": dict(intent.route),
        "subject": data.subject, "body_text": data.body, "body_html": "", "language": language,
        "recipient": {"name": intent.name, "email": intent.email}, "automatic": True,
    }


async def notify_requested(conn: Any, *, event: Any, settings: Any, now: datetime | None = None) -> int:
    """Queue a trigger's or automation's message to each recipient of ``data.to``, in the
    caller's transaction, and log each one (queued or skipped, with the rule's name); the number
    queued. One delivery per (event, recipient): a redelivered event sends nothing twice."""
    data = event.data
    ticket_uuid = data.ticket_id
    row = await repository.ticket(conn, ticket_uuid)
    fallback = rules.Occurrence(rules.REQUESTED_KEY, event.id, event.time, str(ticket_uuid), team_id=_s(data.team_id),
                                assignee_id=_s(data.assignee_id), number=data.number)
    ticket = ticket_view(row, fallback)
    wants = {e.strip() for e in data.to}
    supervisors = ([str(u) for u in await repository.active_supervisors(conn)]
                   if wants & {"team_supervisors", "supervisors"} else [])
    assignee = rules.canon_user_id(_s(data.assignee_id) or ticket.assignee_id)
    ids = {*supervisors, *(e[5:] for e in wants if e.startswith("user:"))}
    if assignee:
        ids.add(assignee)
    users = await _users(conn, ids)
    opted_out = False
    if wants & {"requester", "customer"}:
        opted_out = await repository.is_opted_out(
            conn, customer_id=_uuid(ticket.customer_id), email=(ticket.requester or {}).get("email")) is not None
    intents = rules.requested_intents(
        data.to, ticket=ticket, assignee=assignee, users=users, supervisors=supervisors,
        agent_channel=getattr(settings, "notification_requested_agent_channel", "email"),
        customer_opted_out=opted_out, stale=(now or datetime.now(UTC)) - event.time > rules.MAX_EVENT_AGE)
    default_language = getattr(settings, "notification_default_language", "en")
    queued = 0
    for intent in intents:
        if intent.skip is not None:
            await repository.log(conn, event_id=event.id, key=rules.REQUESTED_KEY, recipient=intent.recipient,
                                 ticket_id=ticket_uuid, status="skipped", reason=intent.skip, channel=None,
                                 delivery_id=None, rule=data.rule)
            continue
        language = render.normalise_language(intent.language) or default_language
        inserted = await enqueue_notification(
            conn, delivery_id=uuid.uuid4(), channel=intent.channel or "email",
            destination=destination_of(intent.channel or "email", intent.route, settings=settings),
            dedupe_key=dedupe_key(event.id, rules.REQUESTED_KEY, intent.recipient),
            payload=requested_payload(intent, data=data, ticket=ticket, language=language),
            max_attempts=getattr(settings, "reply_max_attempts", DEFAULT_MAX_ATTEMPTS), ticket_id=ticket_uuid,
            event_id=event.id,
            log=LogEntry(event_id=event.id, key=rules.REQUESTED_KEY, recipient=intent.recipient,
                         ticket_id=ticket_uuid, reason=None, channel=intent.channel, rule=data.rule))
        queued += inserted is not None
    return queued


def _s(value: Any) -> str | None:
    return None if value is None else str(value)
