"""Intake: open a ticket (API, web form, any channel) or thread a message onto one.

Exactly once per channel message: the first statement of the transaction claims
``(channel, external_id)`` in ``channel_deliveries``; a concurrent duplicate blocks on that key
until the first transaction commits and then answers with the original ids. Threading:

- e-mail: ``In-Reply-To`` / ``References`` against the Message-IDs stored on messages, then a
  ``[#number]`` in the subject; only when the sender is the ticket's requester or on its CC
  list (a forged Message-ID from a stranger opens a new ticket instead of writing into
  someone else's conversation, cf. FreeScout CVE-2026-47123);
- chat, WeChat / WeCom, DingTalk: the conversation key joins the conversation's newest ticket
  that is not closed;
- a customer message for a closed ticket opens a linked follow-up ticket.
"""

from __future__ import annotations


import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw, insert_from_params, note_write
from helpdesk_common.problems import Problem
from helpdesk_common.text import one_line

from ..channels.inbound import InboundMessage, Sender
from ..conversation import service as conversation
from ..db import outbox
from ..pii.codec import cc_of, codec
from ..pii.codec import requester_of as stored_requester
from ..routing import service as routing
from ..tickets import changes, hooks, search
from ..tickets import repository as tickets
from . import repository

SUBJECT_MAX = 500
#: the API's limit on a requester's name (RequesterIn); a channel's display name (an e-mail
#: From header can be megabytes) is cut to it, because the name travels in ticket.created
REQUESTER_NAME_MAX = 256


@dataclass(frozen=True, slots=True)
class SystemTask:
    """A ticket ticket-svc opens on its own (``customers/``): who opens it (``system:...``, its
    ``created_by``), for which customer, and ``care_of`` for a care ticket."""

    actor: str
    customer_id: uuid.UUID | None
    care_of: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class IntakeResult:
    ticket_id: uuid.UUID
    message_id: uuid.UUID | None
    created: bool
    duplicate: bool = False


def requester_of(sender: Sender, *, fallback_external_id: str | None) -> dict[str, Any]:
    requester = {
        k: v for k, v in (("name", one_line(sender.name)[:REQUESTER_NAME_MAX] if sender.name else None),
                          ("email", sender.email.lower() if sender.email else None),
                          ("phone", sender.phone), ("wechat_openid", sender.wechat_openid)) if v
    }
    external = sender.external_id or (f"dingtalk:{sender.dingtalk_id}" if sender.dingtalk_id else None)
    if external or not (requester.keys() & {"email", "phone", "wechat_openid"}):
        requester["external_id"] = external or fallback_external_id or f"anonymous:{uuid.uuid4()}"
    return requester


def subject_of(message: InboundMessage) -> str:
    """The new ticket's subject, one clean line (``helpdesk_common.text.one_line``, the rule the
    API's ``Subject`` type applies) whatever the channel sent: a mail's encoded-word subject can
    carry CR/LF and bidi controls past the header parser. A channel message is never refused for
    its subject: with nothing visible left, the body's first line or the sender names it."""
    subject = one_line(message.subject or "")
    if subject:
        return subject[:SUBJECT_MAX]
    first_line = next((clean for line in message.body_text.splitlines() if (clean := one_line(line))), "")
    if first_line:
        return first_line[:80] + ("…" if len(first_line) > 80 else "")
    who = one_line(message.sender.name or message.sender.email or message.sender.phone or "") or "a customer"
    return f"{message.channel} message from {who}"[:SUBJECT_MAX]


def sender_may_thread(ticket: Mapping[str, Any], sender: Sender) -> bool:
    if not sender.email:
        return False
    email = sender.email.lower()
    requester_email = stored_requester(ticket).get("email")
    return email == (requester_email or "").lower() or email in {str(c).lower() for c in cc_of(ticket)}


#: intake by channel, for the dashboards and the intake alerts (deploy/prometheus); counted when the
#: ticket's row is written, so a transaction rolled back after it (an error answer) counts once too
TICKETS_OPENED = Counter("tickets_opened_total", "Tickets opened, by channel", ["channel"])


def _created(ticket_id: uuid.UUID, now: datetime, row: Mapping[str, Any], *, requester: dict[str, Any],
             created_by: str, language: str | None, message_id: uuid.UUID, follow_up_of: uuid.UUID | None,
             kb_suggestion_id: uuid.UUID | None) -> events.TicketCreated:
    """``ticket.created`` of the ticket ``row`` holds (or will hold: ``open_ticket``)."""
    return events.TicketCreated(
        source=changes.SOURCE, subject=str(ticket_id), time=now,
        data=events.TicketCreatedData(
            ticket_id=ticket_id, number=row["number"], subject=row["subject"], status=row["status"],
            priority=row["priority"], type=row["type"], channel=row["channel"], tags=row["tags"],
            requester=events.Requester(**requester), customer_id=row["customer_id"], created_by=created_by,
            created_at=now, language=language, team_id=row["team_id"], assignee_id=row["assignee_id"],
            customer_tier=row["customer_tier"], custom_fields=row["custom_fields"],
            message_id=message_id, follow_up_of=follow_up_of, kb_suggestion_id=kb_suggestion_id,
        ),
    )


async def open_ticket(
    conn: Any, *, principal: Principal | None, ticket_id: uuid.UUID, subject: str, description: str,
    requester: dict[str, Any], priority: str, type_: str | None, tags: Sequence[str], custom_fields: dict[str, Any],
    language: str | None, cc: Sequence[str], channel: str, assignee_id: str | None = None,
    team_id: uuid.UUID | None = None, conversation_key: str | None = None, follow_up_of: uuid.UUID | None = None,
    first_message: conversation.NewMessage | None = None, for_customer: SystemTask | None = None,
    kb_suggestion_id: uuid.UUID | None = None, opening_id: uuid.UUID | None = None, in_transaction: bool = True,
) -> Any:
    """Insert a routed ticket (and its opening message) with its events; returns the row.

    ``kb_suggestion_id``: the knowledge-base suggestion the web form showed before this ticket
    (carried on ``ticket.created`` only: kb-svc counts the suggestion as not deflected).

    ``for_customer``: a task ticket-svc opens itself (care, follow-up) for a known customer; its
    form's required fields cannot be asked of anyone, so an unsatisfiable form leaves the custom
    fields empty instead of refusing the event that asked for the task.

    ``opening_id``: the opening message's id, chosen by a caller that answers with it.

    ``in_transaction`` False: the caller holds no transaction (the API's ``POST /v1/tickets``
    without an Idempotency-Key). When nothing but the ticket's own statement is to be written
    (no routing rule, team or assignee to apply, no attachment, no after-create hook with
    anything configured: ``hooks.after_create_quiet``) that statement runs alone: it writes the
    ticket, its message, its audit entry and ``ticket.created`` atomically by itself, and the
    BEGIN and COMMIT around it were two of the intake's three round trips. Otherwise the
    ticket is opened in a transaction begun here, as for any other caller."""
    from ..forms import service as forms

    if not in_transaction:
        # the call's own arguments, to start it over in a transaction
        arguments = dict(
            principal=principal, ticket_id=ticket_id, subject=subject, description=description,
            requester=requester, priority=priority, type_=type_, tags=tags, custom_fields=custom_fields,
            language=language, cc=cc, channel=channel, assignee_id=assignee_id, team_id=team_id,
            conversation_key=conversation_key, follow_up_of=follow_up_of, first_message=first_message,
            for_customer=for_customer, kb_suggestion_id=kb_suggestion_id, opening_id=opening_id)
        rules = await routing.RULES.get(conn)
        quiet = (not rules and team_id is None and assignee_id is None
                 and not (first_message is not None and first_message.attachments)
                 and await hooks.after_create_quiet(conn, type_))
        if not quiet:
            return await _open_in_transaction(conn, **arguments)

    try:
        custom_fields, form_version = await forms.validate_new(conn, ticket_type=type_, values=custom_fields)
    except Problem:
        if for_customer is None:
            raise
        custom_fields, form_version = {}, None
    decision = await routing.route_new(
        conn,
        facts=routing.facts_for(channel=channel, type_=type_, priority=priority, language=language, tags=tags,
                                subject=subject, custom_fields=custom_fields, requester=requester),
        explicit_team_id=team_id, explicit_assignee_id=assignee_id, active=None if in_transaction else (),
    )
    now = datetime.now(UTC)
    if for_customer is not None:
        created_by = for_customer.actor
    else:
        assert principal is not None, "a ticket is opened by a caller, or by ticket-svc for a customer"
        created_by = principal.ref
    opening = first_message or conversation.NewMessage(
        author_kind="customer" if principal.kind == "channel" else "agent", author_id=principal.id,
        public=True, body_text=description, channel=channel, initial=True,
    )
    opening_text = [opening.body_text, *(a.filename for a in opening.attachments)]
    message = await conversation.row_values(conn, ticket_id, opening, now=now, message_id=opening_id)
    assigning = decision.team_id is not None or decision.assignee_id is not None
    if assigning and not in_transaction:  # not reached today (no rule, nothing named): start over
        return await _open_in_transaction(conn, **arguments)
    rules_matched = [str(r) for r in decision.matched_rule_ids]
    # the ticket, its opening message and (unless routing assigns it first) its audit entry: one
    # statement; the entry then records what the insert wrote (no team, no assignee)
    audit = None if assigning else (created_by, "created", {
        "channel": channel, "status": "new", "priority": decision.priority, "team_id": None, "assignee_id": None,
        "rules": rules_matched,
    })
    created = None
    if not assigning:
        # its number, customer and tier are the row's: the statement sets them (CREATED_FROM_ROW)
        created = _created(ticket_id, now, {
            "number": None, "subject": subject, "status": "new", "priority": decision.priority, "type": type_,
            "channel": channel, "tags": list(decision.tags), "customer_id": None, "customer_tier": None,
            "team_id": None, "assignee_id": None, "custom_fields": custom_fields,
        }, requester=requester, created_by=created_by, language=language, message_id=message["id"],
            follow_up_of=follow_up_of, kb_suggestion_id=kb_suggestion_id)
    row = await tickets.insert_ticket(conn, {
        "id": ticket_id, "subject": subject, "description": description, "status": "new",
        "priority": decision.priority, "type": type_, "channel": channel, "tags": list(decision.tags),
        "custom_fields": custom_fields, **codec().requester_columns(requester),
        "created_by": created_by, "created_at": now, "updated_at": now, "language": language, "cc": codec().seal_cc(cc),
        "conversation_key": codec().conversation_key(conversation_key), "follow_up_of": follow_up_of,
        "form_version": form_version,
        "search": search.document(subject=subject, public=[description, *(opening_text if opening.public else ())],
                                  internal=() if opening.public else opening_text),
        "awaiting_agent_since": now if opening.author_kind == "customer" else None, "message_count": 1,
        "public_message_count": 1 if opening.public else 0,
        **({"customer_id": for_customer.customer_id, "care_of": for_customer.care_of} if for_customer else {}),
    }, message=message, audit=audit,
       created=None if created is None else insert_from_params(created, data_from=tickets.CREATED_FROM_ROW))
    TICKETS_OPENED.labels(channel).inc()
    if created is not None:
        note_write()
        if not in_transaction:
            return row  # the hooks have nothing to do (checked above): the statement was all of it
        return await hooks.run_after_create(conn, row, created_by)
    if assigning:
        row = await routing.assign(conn, row, team_id=decision.team_id, assignee_id=decision.assignee_id,
                                   reason=decision.reason, actor="system:routing", offered=decision.offered,
                                   emit=False)
        await tickets.insert_audit(conn, ticket_id=ticket_id, actor=created_by, action="created", changes={
            "channel": channel, "status": "new", "priority": row["priority"],
            "team_id": changes.jsonable(row["team_id"]), "assignee_id": row["assignee_id"], "rules": rules_matched,
        })
    evts: list[Any] = [_created(ticket_id, now, row, requester=requester, created_by=created_by, language=language,
                                message_id=message["id"], follow_up_of=follow_up_of,
                                kb_suggestion_id=kb_suggestion_id)]
    if row["assignee_id"] is not None or row["team_id"] is not None:
        evts.append(events.TicketAssigned(
            source=changes.SOURCE, subject=str(ticket_id),
            data=events.TicketAssignedData(**changes.ref(row, "system:routing"), reason=decision.reason,
                                           assigned_at=now),
        ))
    await enqueue_raw(conn, outbox, *evts)
    return await hooks.run_after_create(conn, row, created_by)


async def _open_in_transaction(conn: Any, **kwargs: Any) -> Any:
    """``open_ticket`` in a transaction begun here, for a caller that holds none."""
    async with conn.transaction():
        return await open_ticket(conn, **kwargs, in_transaction=True)


async def receive(conn: Any, *, principal: Principal, message: InboundMessage) -> IntakeResult:
    """Take one channel message exactly once: dedupe, thread or open, route."""
    # a delivery id naming the sender (WeChat without a MsgId) is stored with the sender indexed
    stored_id = codec().delivery_id(message.external_id, message.conversation_key)
    if stored_id != message.external_id:
        message = replace(message, external_id=stored_id)
    delivery_key = message.external_id
    if delivery_key is not None:
        original = await repository.claim_delivery(conn, channel=message.channel, external_id=delivery_key)
        if original is not None:
            return IntakeResult(original["ticket_id"], original["message_id"], original["created_ticket"],
                                duplicate=True)
    ticket = await find_thread(conn, message)
    if ticket is not None and ticket["status"] != "closed" and ticket["merged_into"] is None:
        row, _ = await conversation.add(conn, ticket, customer_message(message), actor=principal.ref)
        result = IntakeResult(ticket["id"], row["id"], created=False)
    else:
        follow_up_of = ticket["id"] if ticket is not None else None
        if ticket is not None and ticket["merged_into"] is not None:
            follow_up_of = None
            target = await tickets.lock_ticket(conn, ticket["merged_into"])
            if target is not None and target["status"] != "closed":
                row, _ = await conversation.add(conn, target, customer_message(message), actor=principal.ref)
                result = IntakeResult(target["id"], row["id"], created=False)
                await _finish(conn, message, result)
                return result
        new_id, opening_id = uuid.uuid4(), uuid.uuid4()
        opening = customer_message(message, initial=True)
        created = await open_ticket(
            conn, principal=principal, ticket_id=new_id, subject=subject_of(message), description=message.body_text,
            requester=requester_of(message.sender, fallback_external_id=message.conversation_key),
            priority=message.metadata.get("priority", "normal") if isinstance(message.metadata, dict) else "normal",
            type_=message.metadata.get("type"), tags=message.metadata.get("tags", ()),
            custom_fields=message.metadata.get("custom_fields", {}), language=message.language, cc=(),
            channel=message.channel, conversation_key=message.conversation_key, follow_up_of=follow_up_of,
            first_message=opening, kb_suggestion_id=_suggestion_of(message), opening_id=opening_id,
        )
        if follow_up_of is not None:
            await tickets.insert_link(conn, ticket_id=new_id, other_id=follow_up_of, kind="follow_up_of",
                                      actor=principal.ref)
        result = IntakeResult(created["id"], opening_id, created=True)
    await _finish(conn, message, result)
    return result


def _suggestion_of(message: InboundMessage) -> uuid.UUID | None:
    """The knowledge-base suggestion a web form carried (channels/webform.py checked its form)."""
    value = (message.metadata or {}).get("kb_suggestion_id") if isinstance(message.metadata, dict) else None
    return uuid.UUID(value) if isinstance(value, str) else None


async def _finish(conn: Any, message: InboundMessage, result: IntakeResult) -> None:
    if message.reply_route:
        # the newest way to answer this customer (only channels whose parser gives one: WeChat,
        # WeCom, DingTalk; e-mail threading and chat keys live on messages and tickets already)
        await conversation.remember_reply_route(conn, ticket_id=result.ticket_id, channel=message.channel,
                                                route=message.reply_route)
    if message.external_id is not None:
        await repository.complete_delivery(conn, channel=message.channel, external_id=message.external_id,
                                           ticket_id=result.ticket_id, message_id=result.message_id,
                                           created_ticket=result.created)


def customer_message(message: InboundMessage, *, initial: bool = False) -> conversation.NewMessage:
    return conversation.NewMessage(
        author_kind="customer", author_id=None, public=True, body_text=message.body_text,
        body_html=message.body_html, channel=message.channel, external_id=message.external_id,
        email_message_id=message.external_id if message.channel == "email" else None,
        attachments=message.attachments,
        metadata={k: v for k, v in (message.metadata or {}).items()
                  if k not in ("custom_fields", "tags", "priority", "type", "full_text", "kb_suggestion_id")},
        initial=initial,
    )


async def find_thread(conn: Any, message: InboundMessage) -> Any:
    """The (locked) ticket this message continues, or None."""
    candidate = None
    if message.channel == "email":
        if message.thread_refs:
            found = await tickets.ticket_by_email_refs(conn, list(message.thread_refs)[:50])
            if found is not None and sender_may_thread(found, message.sender):
                candidate = found
        if candidate is None and message.ticket_number_hint is not None:
            found = await tickets.get_ticket_by_number(conn, message.ticket_number_hint)
            if found is not None and sender_may_thread(found, message.sender):
                candidate = found
    elif message.conversation_key:
        candidate = await tickets.newest_open_in_conversation(
            conn, codec().conversation_lookup(message.conversation_key))
    if candidate is None:
        return None
    return await tickets.lock_ticket(conn, candidate["id"])
