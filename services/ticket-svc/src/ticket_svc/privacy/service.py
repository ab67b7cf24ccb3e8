"""ticket-svc's erasure of one customer (in the consumer's transaction) and its export."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common import erasure

from ..db import outbox
from ..pii.codec import cc_of, codec, csat_comment_of, requester_of
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


#: rows read per batch when the erasure opens sealed columns
SEALED_BATCH = 500


def _redacted_cc(stored: Any, found: list[str]) -> Any | None:
    box = codec()
    cc = box.cc(stored)
    kept = [c for c in cc if not erasure.mentions(c, found)]
    return box.seal_cc(kept) if kept != cc else None


def _redacted_comment(stored: str, found: list[str]) -> str | None:
    box = codec()
    comment = box.comment(stored)
    redacted = erasure.redact(comment, found)
    return box.seal_comment(redacted) if redacted != comment else None


def _redacted_metadata(stored: Any, found: list[str]) -> Any | None:
    box = codec()
    metadata = box.metadata(stored)
    redacted = erasure.redact_json(metadata, found)
    return box.seal_metadata(redacted) if redacted != metadata else None


_SEALED_REDACTIONS = {
    "tickets.cc": _redacted_cc,  # a CC list: the person's own entries go
    "tickets.csat_comment": _redacted_comment,
    "messages.metadata": _redacted_metadata,
}


async def redact_sealed(conn: Any, *, found: list[str]) -> dict[str, int]:
    """The person's mentions inside sealed columns (other people's tickets CC'ing them, comments
    and e-mails naming them): every row holding one is opened in batches, redacted as its
    plaintext column would be and sealed again. A full read of those rows: erasure is rare, and
    an index of their contents would be a lookup of the very addresses they hide."""
    counts: dict[str, int] = {}
    for name, redacted_of in _SEALED_REDACTIONS.items():
        counts[name] = 0
        after = None
        while found:
            rows = await repository.sealed_batch(conn, name, after=after, limit=SEALED_BATCH)
            changed = [(r["id"], new) for r in rows if (new := redacted_of(r["value"], found)) is not None]
            await repository.store_sealed(conn, name, changed)
            counts[name] += len(changed)
            if len(rows) < SEALED_BATCH:
                break
            after = rows[-1]["id"]
    return counts


async def erase(conn: Any, *, customer_id: uuid.UUID) -> dict[str, Any]:
    ids, found = await _person(conn, customer_id)
    counts: dict[str, Any] = await repository.erase_tickets(conn, ids=ids, customer_id=customer_id, found=found)
    counts.update(await repository.redact_mentions(conn, found=found))
    counts.update(await redact_sealed(conn, found=found))
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
    for ticket in out["tickets"]:  # the person's own bundle: the requester, CCs and comment in plaintext
        ticket["requester"] = requester_of(ticket)
        ticket["cc"] = cc_of(ticket)
        ticket["csat_comment"] = csat_comment_of(ticket)
    for message in out["messages"]:  # files: metadata here, the content through the ticket's attachment route
        for item in message["attachments"] or []:
            if isinstance(item, dict) and item.get("id"):
                item["download"] = f"/v1/tickets/{message['ticket_id']}/attachments/{item['id']}"
    return out
