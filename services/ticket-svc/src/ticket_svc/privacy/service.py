"""ticket-svc's erasure of one customer (in the consumer's transaction) and its export."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common import erasure

from ..db import outbox
from ..pii.codec import codec, requester_of
from . import repository

SOURCE = "ticket-svc"
#: the identity kinds a WeChat / WeCom conversation key was made of before 0019 (``wechat:<openid>``)
_CONVERSATION_KINDS = (("wechat", "wechat_openid"), ("wecom", "wecom_external_userid"))


async def _person(conn: Any, customer_id: uuid.UUID) -> tuple[list[uuid.UUID], list[str]]:
    """The person's tickets and needles (names and identities as ticket-svc knows them,
    decrypted: the needles are what the plaintext columns are searched for)."""
    box = codec()
    known = [(r["kind"], box.identity_value(r)) for r in await repository.identities(conn, customer_id)]
    indexes = [box.identity_index(v) for _, v in known]
    legacy = [f"{channel}:{v}" for k, v in known for channel, kind in _CONVERSATION_KINDS if k == kind]
    ids = await repository.ticket_ids(conn, customer_id=customer_id, identities=known, indexes=indexes,
                                      conversations=box.person_conversations(indexes) + legacy)
    found: set[str] = set(erasure.needles(name=None, identities=known))
    for row in await repository.requesters(conn, ids):
        requester = requester_of(row)
        found |= set(erasure.needles(
            name=requester.get("name"),
            identities=[(k, requester.get(f)) for k, f in (("email", "email"), ("phone", "phone"),
                                                            ("wechat_openid", "wechat_openid"),
                                                            ("external", "external_id")) if requester.get(f)]
            + ([(row["requester_identity_kind"], row["requester_identity_value"])]
               if row["requester_identity_value"] else [])))
    return ids, sorted(found, key=lambda n: (-len(n), n))


async def erase(conn: Any, *, customer_id: uuid.UUID) -> dict[str, Any]:
    ids, found = await _person(conn, customer_id)
    counts: dict[str, Any] = await repository.erase_tickets(conn, ids=ids, customer_id=customer_id, found=found)
    counts.update(await repository.redact_mentions(conn, found=found))
    counts["outbox"] = await erasure.purge_published_outbox(conn, table=outbox.name, customer_id=customer_id,
                                                            found=found)
    if ids:  # events keyed by the person's tickets name the requester
        status = await conn.execute(f"DELETE FROM {outbox.name} WHERE sent_at IS NOT NULL AND key = ANY($1::text[]) "
                                    "AND event_type NOT LIKE 'privacy.%'",
                                    [str(i) for i in ids])
        counts["outbox"] += int(status.split()[-1])
    return counts


async def export(conn: Any, *, customer_id: uuid.UUID) -> dict[str, Any]:
    ids, _ = await _person(conn, customer_id)
    out = await repository.export(conn, ids)
    for ticket in out["tickets"]:  # the person's own bundle: the requester in plaintext
        ticket["requester"] = requester_of(ticket)
    for message in out["messages"]:  # files: metadata here, the content through the ticket's attachment route
        for item in message["attachments"] or []:
            if isinstance(item, dict) and item.get("id"):
                item["download"] = f"/v1/tickets/{message['ticket_id']}/attachments/{item['id']}"
    return out
