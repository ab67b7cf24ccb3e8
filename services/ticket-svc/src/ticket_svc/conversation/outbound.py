"""What ticket-svc tells notify-svc about a public agent reply (``ticket.reply_requested``).

ticket-svc owns messages and the customer's side of the conversation, so it decides here, in
pure functions over plain data, *where* a reply goes and *how* that channel addresses the
customer; notify-svc sends without calling back. docs/channels/outbound.md, "What ticket-svc
sends", is the reader's version.

- **Channel**: the ticket's own for e-mail, WeChat, WeCom, DingTalk and chat; web-form, phone
  and API tickets are answered by e-mail when the requester has an address. With no way to
  reach the customer there is no event: the message is ``undeliverable`` at once, with a
  reason an agent can act on.
- **Route**: the channel's addressing, with the field names notify-svc's adapters read.
- **Attachments** go by reference: a capability URL on ticket-svc (HMAC over the file's hash,
  its media type and an expiry), which ticket-svc itself verifies; no shared secret with
  notify-svc and no lookup table.
- **Size**: an event must stay under ``EVENT_MAX_BYTES``; a reply is never refused for it (a
  long reply is what an agent means to send): the HTML part goes first, then the text is cut
  with a note saying so.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from helpdesk_common import events

from ..pii.codec import cc_of, is_indexed_conversation, message_metadata_of, requester_of

#: channels answered on themselves
OWN_CHANNELS = frozenset({"email", "wechat", "wecom", "dingtalk", "chat"})
#: channels whose route ticket-svc records at intake in ``reply_routes`` (one primary-key read
#: when replying; other channels need no read, or the e-mail thread read)
ROUTED_CHANNELS = frozenset({"wechat", "wecom", "dingtalk"})
#: what a ticket's channel is called in a reason an agent reads
_CHANNEL_WORDS = {"web": "a web form", "phone": "a phone", "api": "an API", None: "an API"}
#: e-mail ids carried in ``references`` (the newest; a long thread's oldest are dropped)
REFERENCES_MAX = 20
#: a Message-ID longer than this is not put into a header of ours (RFC 5322 lines are 998)
MESSAGE_ID_MAX = 250
FINAL_STATES = frozenset({"sent", "failed", "undeliverable"})
DELIVERY_STATES = ("queued", "sent", "failed", "undeliverable")


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a reply goes: ``channel`` and ``route``, or ``reason`` why it cannot go anywhere."""

    channel: str | None
    route: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()

    @property
    def deliverable(self) -> bool:
        return self.channel is not None


def reply_channel(ticket: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(channel to answer on, None) or (None, why not)."""
    channel = ticket["channel"]
    if channel in OWN_CHANNELS:
        return channel, None
    if requester_of(ticket).get("email"):
        return "email", None
    return None, f"no e-mail address for {_CHANNEL_WORDS.get(channel, f'a {channel}')} ticket"


def needs_thread(channel: str | None) -> bool:
    return channel == "email"


def _after(prefix: str, value: str | None) -> str | None:
    """The id after ``prefix`` in ``value``; None for a conversation key that holds an index
    (``pii.codec``: a WeChat or WeCom sender is not stored in it, the stored route names them)."""
    if not value or not value.startswith(prefix) or is_indexed_conversation(value):
        return None
    return value[len(prefix):] or None


def _first_address(addresses: Any) -> str | None:
    """The first address of a parsed To list (``parse_address_list``: dicts with ``email``, or
    plain strings)."""
    for item in addresses or ():
        address = item.get("email") if isinstance(item, Mapping) else item
        if isinstance(address, str) and "@" in address:
            return address
    return None


def plan(ticket: Mapping[str, Any], *, stored_route: Mapping[str, Any] | None = None,
         thread: Sequence[Mapping[str, Any]] = (), wechat_app_ids: Mapping[str, str] | None = None) -> Plan:
    """The delivery of a reply on ``ticket`` (pure).

    ``stored_route``: the ticket's ``reply_routes`` row for its channel (WeChat, WeCom, DingTalk);
    ``thread``: the ticket's public e-mail ids, newest first (``repository.email_thread``)."""
    channel, reason = reply_channel(ticket)
    if channel is None:
        return Plan(None, reason=reason)
    requester = requester_of(ticket)
    stored = dict(stored_route or {})
    key = ticket["conversation_key"]
    if channel == "email":
        to = requester.get("email")
        if not to:
            return Plan(None, reason="no e-mail address for the requester")
        ids = [r["email_message_id"] for r in thread if len(r["email_message_id"]) <= MESSAGE_ID_MAX]
        customer = next((r for r in thread if r["author_kind"] == "customer"
                         and len(r["email_message_id"]) <= MESSAGE_ID_MAX), None)
        route: dict[str, Any] = {"to": to, "cc": [str(c) for c in cc_of(ticket)]}
        sender = _first_address(message_metadata_of(customer["sent_to"]).get("to")) if customer is not None else None
        if sender and len(sender) <= 254:  # a header address (RFC 5321's limit); else notify-svc's default
            route["from"] = sender
        return Plan("email", route, in_reply_to=customer["email_message_id"] if customer is not None else None,
                    references=tuple(reversed(ids[:REFERENCES_MAX])))
    if channel == "wechat":
        openid = stored.get("openid") or requester.get("wechat_openid") or _after("wechat:", key)
        if not openid:
            return Plan(None, reason="no WeChat openid for this customer")
        route = {"openid": openid}
        original_id = stored.get("original_id")
        app_id = (wechat_app_ids or {}).get(original_id) if original_id else None
        if app_id:
            route["app_id"] = app_id
        if original_id:
            route["original_id"] = original_id
        return Plan("wechat", route)
    if channel == "wecom":
        user = stored.get("external_userid") or _after("wecom:", requester.get("external_id")) or _after("wecom:", key)
        if not user:
            return Plan(None, reason="no WeCom user id for this customer")
        route = {"external_userid": user, **{k: stored[k] for k in ("open_kfid", "corp_id", "agent_id") if stored.get(k)}}
        return Plan("wecom", route)
    if channel == "dingtalk":
        route = {k: stored[k] for k in ("session_webhook", "session_webhook_expires_at", "sender_staff_id",
                                        "robot_code") if stored.get(k) is not None}
        conversation_id = stored.get("conversation_id") or _after("dingtalk:", key)
        if conversation_id:
            route["conversation_id"] = conversation_id
        if not route.get("session_webhook") and not route.get("sender_staff_id"):
            return Plan(None, reason="no DingTalk session webhook or staff id to answer this conversation")
        return Plan("dingtalk", route)
    # chat: the visitor reads replies on their conversation
    if not key:
        return Plan(None, reason="no chat conversation to answer on")
    return Plan("chat", {"conversation_key": key})


# --- attachment capabilities -----------------------------------------------------------------

def _mac(key: bytes, sha256: str, content_type: str, expires: int) -> str:
    message = f"attachment\n{sha256}\n{content_type}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def attachment_url(key: bytes, *, sha256: str, content_type: str, expires: int) -> str:
    """``/internal/attachments/{sha256}?type=&exp=&sig=``: a path on ticket-svc (notify-svc
    prefixes its ticket-svc base URL). The media type is signed with the hash, so the answer's
    ``Content-Type`` is the one the message stored, without a lookup."""
    sig = _mac(key, sha256, content_type, expires)
    return f"/internal/attachments/{sha256}?type={quote(content_type, safe='')}&exp={expires}&sig={sig}"


def verify_attachment(key: bytes, *, sha256: str, content_type: str, expires: int, sig: str, now: float) -> bool:
    """The signature matches (constant time) and has not expired."""
    if expires < now:
        return False
    return hmac.compare_digest(_mac(key, sha256, content_type, expires).encode(), sig.encode("utf-8", "replace"))


# --- the event's size --------------------------------------------------------------------------

TRUNCATION_NOTE = "\n\n[…] (This reply was too long to send here in full; the rest was left out.)"


def fitted(build: Callable[[str, str | None], Any], *, body_text: str, body_html: str | None, limit: int) -> Any:
    """The event ``build(text, html)`` makes, within ``limit`` encoded bytes: as is when it fits;
    else without the HTML part (the text says the same); else with the text cut (binary search
    on the cut, a few encodes, only ever for replies near 64 K characters) and a note."""

    def size(evt: Any) -> int:
        return len(events.encode(evt))

    evt = build(body_text, body_html)
    if size(evt) <= limit:
        return evt
    evt = build(body_text, None)
    if size(evt) <= limit:
        return evt
    low, high = 0, len(body_text)
    best = build(TRUNCATION_NOTE.lstrip(), None)
    while low <= high:
        middle = (low + high) // 2
        candidate = build(body_text[:middle].rstrip() + TRUNCATION_NOTE, None)
        if size(candidate) <= limit:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best
