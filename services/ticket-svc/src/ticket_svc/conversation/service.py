"""Adding a message to a ticket, and what a message does to the ticket.

A customer message reopens pending, on-hold and solved tickets and starts the wait for an
agent; the first public agent reply is the first response, and every public agent reply to a
waiting customer is a response (SLA and analytics consume these flags from
``ticket.message_added``). A customer message on a closed ticket never touches it: the caller
opens a linked follow-up ticket instead (``lifecycle.after_customer_message``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.problems import Problem

from ..channels.inbound import InboundAttachment
from ..db import outbox
from ..pii.codec import cc_of, codec, requester_of
from ..tickets import changes, hooks, lifecycle, search
from ..tickets import repository as ticket_repository
from . import attachments as attachment_rules
from . import outbound, repository
from .sanitize import sanitize_html


@dataclass(frozen=True, slots=True)
class NewMessage:
    author_kind: str  # customer | agent | system
    author_id: str | None
    public: bool
    body_text: str
    body_html: str | None = None
    channel: str | None = None
    external_id: str | None = None
    email_message_id: str | None = None
    attachments: Sequence[InboundAttachment] = ()
    metadata: Mapping[str, Any] | None = None
    #: the ticket's opening message: not a reply, so never a response
    initial: bool = False
    #: a public agent reply: where it goes (or why it cannot), sent as ``ticket.reply_requested``
    reply: ReplyRequest | None = None


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    plan: outbound.Plan
    author_name: str | None = None
    #: the attachment capability key (``TICKET_ATTACHMENT_URL_KEY``); None: no ``url``
    url_key: bytes | None = None
    url_ttl_s: int = 7 * 86_400
    #: ``EVENT_MAX_BYTES``
    event_limit: int = 262_144


async def store_attachments(conn: Any, items: Sequence[InboundAttachment]) -> list[dict[str, Any]]:
    attachment_rules.check(items)
    await repository.store_blobs(conn, [(a.sha256, a.content) for a in items])
    return [attachment_rules.metadata_of(a) for a in items]


async def insert(conn: Any, ticket_id: uuid.UUID, message: NewMessage, *, now: datetime) -> Any:
    """Insert the message row only (the ticket is updated by ``add``)."""
    return await repository.insert_message(conn, await row_values(conn, ticket_id, message, now=now))


async def row_values(conn: Any, ticket_id: uuid.UUID, message: NewMessage, *, now: datetime,
                     message_id: uuid.UUID | None = None) -> dict[str, Any]:
    """The message's row as ``repository.insert_message`` writes it (its attachments' contents
    stored first), for a caller that writes it in a statement of its own (a ticket's opening);
    ``message_id``: its id when the caller chose it (else a new one)."""
    reply = message.reply
    return {
        "id": message_id or uuid.uuid4(),
        "ticket_id": ticket_id,
        "author_kind": message.author_kind,
        "author_id": message.author_id,
        "public": message.public,
        "body_text": message.body_text,
        "body_html": sanitize_html(message.body_html),
        "channel": message.channel,
        "external_id": message.external_id,
        "email_message_id": message.email_message_id,
        "attachments": await store_attachments(conn, message.attachments),
        "metadata": codec().seal_metadata(message.metadata),
        "created_at": now,
        "delivery_status": None if reply is None else "queued" if reply.plan.deliverable else "undeliverable",
        "delivery_reason": None if reply is None else reply.plan.reason,
    }


def ticket_effects(ticket: Mapping[str, Any], message: NewMessage, *, now: datetime,
                   holds_status: bool = False) -> tuple[dict[str, Any], lifecycle.ReplyKind]:
    """The ticket fields a message changes (pure). ``holds_status``: the customer's message is an
    answer the ticket waits for (``hooks.holds_status``), so it neither reopens the ticket nor
    waits for an agent; the answer's hook decides."""
    values: dict[str, Any] = {"message_count": ticket["message_count"] + 1}
    if message.public:
        values["public_message_count"] = ticket["public_message_count"] + 1
    kind = lifecycle.ReplyKind(first_response=False, response=False)
    if message.author_kind == "customer" and not message.initial and not holds_status:
        target = lifecycle.after_customer_message(ticket["status"])
        if target == "open":
            values.update(status="open", custom_status_id=None)
        if ticket["awaiting_agent_since"] is None:
            values["awaiting_agent_since"] = now
    elif message.author_kind == "agent" and not message.initial:
        kind = lifecycle.classify_agent_reply(
            public=message.public,
            first_response_done=ticket["first_response_at"] is not None,
            awaiting_agent=ticket["awaiting_agent_since"] is not None,
        )
        if message.public:
            values["awaiting_agent_since"] = None
            if kind.first_response:
                values["first_response_at"] = now
            target = lifecycle.after_agent_reply(ticket["status"])
            if target:
                values.update(status=target, custom_status_id=None)
            if ticket["assignment_state"] == "offered" and ticket["assignee_id"] == message.author_id:
                values["assignment_state"] = "accepted"
    return values, kind


async def add(conn: Any, ticket: Mapping[str, Any], message: NewMessage, *, actor: str) -> tuple[Any, Any]:
    """Add ``message`` to the locked ``ticket``; returns (message row, new ticket row)."""
    now = datetime.now(UTC)
    row = await insert(conn, ticket["id"], message, now=now)
    held = message.author_kind == "customer" and await hooks.run_holds_status(conn, ticket, message)
    values, kind = ticket_effects(ticket, message, now=now, holds_status=held)
    text = [message.body_text, *(a.filename for a in message.attachments)]
    new_ticket = await changes.apply(
        conn, ticket, values, actor=actor, action="message_added", reason="message",
        search=search.document(public=text if message.public else (), internal=() if message.public else text),
        force=True,
    )
    await ticket_repository.insert_audit(
        conn, ticket_id=ticket["id"], actor=actor, action="message_added",
        changes={"message_id": str(row["id"]), "author_kind": row["author_kind"], "public": row["public"],
                 "attachments": len(row["attachments"])},
    )
    evts: list[Any] = [events.TicketMessageAdded(
        source=changes.SOURCE, subject=str(ticket["id"]),
        data=events.TicketMessageAddedData(
            **changes.ref(new_ticket, actor), message_id=row["id"], author_kind=message.author_kind,
            author_id=message.author_id, public=message.public, channel=message.channel,
            first_response=kind.first_response, response=kind.response, created_at=now,
        ),
    )]
    if message.reply is not None and message.reply.plan.deliverable:
        evts.append(reply_requested(new_ticket, row, message, message.reply, now=now))
    await enqueue_raw(conn, outbox, *evts)
    return row, await hooks.run_after_message(conn, ticket, row, new_ticket, actor)


def reply_requested(ticket: Mapping[str, Any], row: Mapping[str, Any], message: NewMessage, reply: ReplyRequest, *,
                    now: datetime) -> events.TicketReplyRequested:
    """The delivery order for notify-svc, within ``EVENT_MAX_BYTES`` (``outbound.fitted``)."""
    plan = reply.plan
    expires = int(now.timestamp()) + reply.url_ttl_s
    attachments = [
        events.ReplyAttachment(
            sha256=a["sha256"], filename=a["filename"], content_type=a["content_type"], size=a["size"],
            url=outbound.attachment_url(reply.url_key, sha256=a["sha256"], content_type=a["content_type"],
                                        expires=expires) if reply.url_key else None,
        )
        for a in row["attachments"]
    ]
    requester = {k: v for k, v in requester_of(ticket).items() if v is not None}

    def build(text: str, html: str | None) -> events.TicketReplyRequested:
        return events.TicketReplyRequested(
            source=changes.SOURCE, subject=str(ticket["id"]), time=now,
            data=events.TicketReplyRequestedData(
                ticket_id=ticket["id"], number=ticket["number"], message_id=row["id"], subject=ticket["subject"],
                language=ticket["language"], channel=plan.channel, recipient=events.Requester(**requester),
                route=plan.route, body_text=text, body_html=html, attachments=attachments,
                email_message_id=message.email_message_id if plan.channel == "email" else None,
                in_reply_to=plan.in_reply_to, references=list(plan.references), author_id=message.author_id,
                author_name=reply.author_name, team_id=ticket["team_id"], requested_at=now,
            ),
        )

    return outbound.fitted(build, body_text=row["body_text"], body_html=row["body_html"], limit=reply.event_limit)


async def plan_reply(conn: Any, ticket: Mapping[str, Any], *, settings: Any = None) -> outbound.Plan:
    """Where a reply on ``ticket`` goes. Reads only what the channel needs: nothing for chat or an
    unreachable requester, the e-mail thread (one indexed read) for e-mail, the stored route (a
    primary-key read) for WeChat, WeCom and DingTalk."""
    channel, _ = outbound.reply_channel(ticket)
    thread: list[Any] = []
    stored = None
    if outbound.needs_thread(channel):
        thread = await repository.email_thread(conn, ticket_id=ticket["id"], limit=outbound.REFERENCES_MAX)
    elif channel in outbound.ROUTED_CHANNELS:
        stored = codec().route(await repository.reply_route(conn, ticket_id=ticket["id"], channel=channel))
    return outbound.plan(ticket, stored_route=stored, thread=thread,
                         wechat_app_ids=getattr(settings, "wechat_app_ids", None))


async def remember_reply_route(conn: Any, *, ticket_id: uuid.UUID, channel: str, route: Mapping[str, Any]) -> None:
    """Keep the newest way to answer: the new route's keys win, keys it lacks keep their older
    value (a callback without a session webhook leaves the last valid one in place). The route is
    stored sealed, so the merge is done here on the plaintext, the older row read locked."""
    box = codec()
    older = box.route(await repository.reply_route(conn, ticket_id=ticket_id, channel=channel, lock=True)) or {}
    await repository.store_reply_route(conn, ticket_id=ticket_id, channel=channel,
                                       route=box.seal_route({**older, **route}))


def reply_request(plan: outbound.Plan, *, principal: Principal, settings: Any = None) -> ReplyRequest:
    key = getattr(settings, "attachment_url_key", None)
    return ReplyRequest(
        plan=plan, author_name=principal.name,
        url_key=key.get_secret_value().encode() if key is not None else None,
        url_ttl_s=getattr(settings, "attachment_url_ttl_s", 7 * 86_400),
        event_limit=getattr(settings, "event_max_bytes", 262_144),
    )


@dataclass(frozen=True, slots=True)
class Posted:
    message: Any
    follow_up_ticket_id: uuid.UUID | None = None


EMAIL_DOMAIN = "helpdesk.invalid"


async def post(conn: Any, *, ticket: Mapping[str, Any], principal: Principal, body: Any,
               attachments: Sequence[InboundAttachment], settings: Any = None) -> Posted:
    """A message posted through the API: agents reply or note; channel keys write as the customer.

    A public agent reply is also a delivery order for notify-svc (``ticket.reply_requested``, in
    this transaction), or ``undeliverable`` at once when the customer cannot be reached."""
    if ticket["merged_into"] is not None:
        raise Problem(409, "ticket-merged", "Ticket merged",
                      f"This ticket was merged into {ticket['merged_into']}; post there.",
                      merged_into=str(ticket["merged_into"]))
    if principal.kind == "channel":
        message = NewMessage(author_kind="customer", author_id=None, public=True, body_text=body.body,
                             body_html=body.html, channel=principal.channel, attachments=attachments)
        if ticket["status"] == "closed":
            from ..intake import service as intake

            new_id = uuid.uuid4()
            await intake.open_ticket(
                conn, principal=principal, ticket_id=new_id, subject=ticket["subject"], description=body.body,
                requester=requester_of(ticket), priority=ticket["priority"], type_=ticket["type"],
                tags=ticket["tags"], custom_fields={}, language=ticket["language"], cc=cc_of(ticket),
                channel=ticket["channel"] or "api", conversation_key=ticket["conversation_key"],
                follow_up_of=ticket["id"], first_message=replace(message, initial=True),
            )
            await ticket_repository.insert_link(conn, ticket_id=new_id, other_id=ticket["id"], kind="follow_up_of",
                                                actor=principal.ref)
            if ticket["channel"] in outbound.ROUTED_CHANNELS:
                await repository.copy_reply_routes(conn, source_id=ticket["id"], target_id=new_id)
            first = await repository.list_messages(conn, ticket_id=new_id, public_only=False, limit=1, after=None)
            return Posted(first[0], follow_up_ticket_id=new_id)
        row, _ = await add(conn, ticket, message, actor=principal.ref)
        return Posted(row)
    if ticket["status"] == "closed":
        raise Problem(409, "ticket-closed", "Ticket closed", "A closed ticket is final.")
    email_id = f"ticket-{ticket['number']}-{uuid.uuid4().hex[:16]}@{EMAIL_DOMAIN}" if body.public else None
    reply = None
    if body.public:
        reply = reply_request(await plan_reply(conn, ticket, settings=settings), principal=principal,
                              settings=settings)
    message = NewMessage(author_kind="agent", author_id=principal.id, public=body.public, body_text=body.body,
                         body_html=body.html, channel="agent", email_message_id=email_id, attachments=attachments,
                         reply=reply)
    row, _ = await add(conn, ticket, message, actor=principal.ref)
    return Posted(row)


def to_created(posted: Posted, *, to_customer: bool = False) -> dict[str, Any]:
    return {**to_read(posted.message, to_customer=to_customer), "follow_up_ticket_id": posted.follow_up_ticket_id}


def to_read(row: Mapping[str, Any], *, to_customer: bool = False) -> dict[str, Any]:
    return {
        "id": row["id"],
        "ticket_id": row["ticket_id"],
        "author_kind": row["author_kind"],
        "author_id": row["author_id"],
        "public": row["public"],
        "body_text": row["body_text"],
        "body_html": row["body_html"],
        "channel": row["channel"],
        "attachments": [
            {k: a.get(k) for k in ("id", "filename", "content_type", "size", "sha256", "storage_key", "inline",
                                   "content_id")}
            for a in row["attachments"]
        ],
        "created_at": row["created_at"],
        **delivery_of(row, to_customer=to_customer),
    }


_NO_DELIVERY = {"delivery_status": None, "delivery_reason": None, "delivery_attempts": None,
                "delivery_updated_at": None}


def delivery_of(row: Mapping[str, Any], *, to_customer: bool = False) -> dict[str, Any]:
    """The delivery fields of a message (all null but for public agent replies). The customer's
    side (channel keys) sees the state, never the reason: notify-svc's reasons name providers'
    error codes and our configuration, which are ours to read."""
    status = row["delivery_status"]
    if status is None:
        return _NO_DELIVERY
    return {"delivery_status": status, "delivery_reason": None if to_customer else row["delivery_reason"],
            "delivery_attempts": row["delivery_attempts"], "delivery_updated_at": row["delivery_updated_at"]}
