"""What every service needs to erase one customer's data (docs/security.md "Erasure").

Pure helpers (the needles to look for, redaction of free text) and the two pieces of SQL every
service runs the same way on its bus tables: deleting published outbox rows that mention the
person, and the acknowledgement event. Each service's own tables are its business: its handler
of ``privacy.erasure_requested`` anonymises them in its consumer transaction and then calls
``acknowledge``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from . import events
from .app import runtime_of
from .identity import CurrentPrincipal, require_user
from .responses import JSONBytesResponse

#: the tombstone's display name, wherever a person's name was kept for display
ERASED_NAME = "Erased customer"
#: what replaces a mention of the person in free text
REDACTED = "[redacted]"
#: the shortest needle searched for in free text: shorter names ("Li", "Wu") would redact every
#: word containing them; they are still removed from fields that hold only the name
MIN_NEEDLE_CHARS = 3


def _phone_variants(value: str) -> set[str]:
    digits = re.sub(r"\D", "", value)
    out = {value}
    if len(digits) >= 6:
        out.add(digits)
        if value.startswith("+"):
            out.add("+" + digits)
        # a Chinese mobile number written without its country code, and with it
        if digits.startswith("86") and len(digits) == 13:
            out.add(digits[2:])
        elif len(digits) == 11 and digits.startswith("1"):
            out.add("+86" + digits)
            out.add("86" + digits)
    return out


def needles(*, name: str | None, identities: Iterable[tuple[str, str]]) -> list[str]:
    """Every string whose presence in free text reveals the person (pure): the name, each
    identity value (an e-mail address, an openid...), phone numbers also as bare digits.
    Longest first, so that a redaction of a long needle is not pre-empted by a shorter one
    inside it; duplicates and needles shorter than ``MIN_NEEDLE_CHARS`` are dropped."""
    found: set[str] = set()
    if name and name.strip() and name.strip() != ERASED_NAME:
        found.add(name.strip())
    for kind, value in identities:
        if not value or not value.strip():
            continue
        value = value.strip()
        if kind == "phone":
            found |= _phone_variants(value)
        else:
            found.add(value)
            if kind == "email" and "@" in value:
                found.add(value.lower())
    return sorted((n for n in found if len(n) >= MIN_NEEDLE_CHARS), key=lambda n: (-len(n), n))


def _pattern(found: list[str]) -> re.Pattern[str] | None:
    if not found:
        return None
    return re.compile("|".join(re.escape(n) for n in found), re.IGNORECASE)


def redact(text: str | None, found: list[str]) -> str | None:
    """``text`` with every case-insensitive occurrence of a needle replaced by ``REDACTED``
    (pure; None stays None)."""
    if text is None:
        return None
    pattern = _pattern(found)
    return text if pattern is None else pattern.sub(REDACTED, text)


def mentions(text: str | None, found: list[str]) -> bool:
    pattern = _pattern(found)
    return bool(text) and pattern is not None and pattern.search(text) is not None


def redact_json(value: Any, found: list[str]) -> Any:
    """A JSON value with every string (keys included) redacted (pure)."""
    if isinstance(value, str):
        return redact(value, found)
    if isinstance(value, list):
        return [redact_json(v, found) for v in value]
    if isinstance(value, dict):
        return {redact(k, found): redact_json(v, found) for k, v in value.items()}
    return value


def _redacted_value(value: Any, kind: str, found: list[str]) -> Any:
    if value is None:
        return None
    if kind == "json":
        return redact_json(value, found)
    if kind == "text[]":
        return [redact(v, found) for v in value]
    if kind == "drop[]":  # lists of addresses: a mention is the person's own entry
        return [v for v in value if not mentions(v if isinstance(v, str) else str(v), found)]
    if kind == "tsvector":
        return ""
    return redact(value, found)


async def redact_rows(conn: Any, *, table: str, key: str, columns: dict[str, str], found: list[str],
                      where: str = "TRUE", args: tuple[Any, ...] = ()) -> int:
    """Redact every mention of a needle in ``columns`` (name -> ``text``, ``json``, ``text[]``,
    ``drop[]`` (a list of addresses: the person's entries removed) or ``tsvector`` (emptied)) of
    the rows of ``table`` (bare asyncpg connection, jsonb as Python values) that match ``where``
    (its parameters ``args`` are ``$2``...) and mention one. A full scan of the table when
    ``where`` does not narrow it: erasure is rare, and free text mentioning the person can be on
    any row. Returns the rows changed."""
    if not found or not columns:
        return 0
    names = list(columns)
    mention = " OR ".join(f"position(lower(t.term) IN lower({c}::text)) > 0" for c in names)
    selected = ", ".join(f"{c}::text AS {c}" if columns[c] == "tsvector" else c for c in names)
    rows = await conn.fetch(
        f"SELECT {key} AS _key, {selected} FROM {table} WHERE ({where}) AND EXISTS ("
        f"SELECT 1 FROM unnest($1::text[]) AS t(term) WHERE {mention})", found, *args)
    sets = ", ".join(f"{c} = ${i + 2}" + ("::tsvector" if columns[c] == "tsvector" else "") for i, c in enumerate(names))
    for row in rows:
        values = [_redacted_value(row[c], columns[c], found) for c in names]
        await conn.execute(f"UPDATE {table} SET {sets} WHERE {key} = $1", row["_key"], *values)
    return len(rows)


async def purge_published_outbox(conn: Any, *, table: str, customer_id: uuid.UUID, found: list[str]) -> int:
    """Delete the published rows of an outbox (bare asyncpg connection) whose payload names the
    customer or any needle: once published, a row is only kept for audit and replay, and an
    erased person must not stay in it. Unpublished rows stay: they are published (and then
    purged from the log like every other record, docs/security.md "Erasure"), and so do the
    privacy events themselves (ids only: they are the erasure's own record). Returns how many."""
    terms = [str(customer_id), *found]
    status = await conn.execute(
        f"DELETE FROM {table} WHERE sent_at IS NOT NULL AND event_type NOT LIKE 'privacy.%' AND EXISTS ("
        "SELECT 1 FROM unnest($1::text[]) AS t(term) "
        "WHERE position(lower(t.term) IN lower(convert_from(payload, 'UTF8'))) > 0)", terms)
    return int(status.split()[-1])


def completed_event(*, request_id: uuid.UUID, customer_id: uuid.UUID, service: str) -> events.PrivacyErasureCompleted:
    return events.PrivacyErasureCompleted(
        source=service, subject=str(request_id),
        data=events.ErasureCompletedData(request_id=request_id, customer_id=customer_id, service=service,
                                         at=datetime.now(UTC)))


async def purge_log(settings: Any, *, topics: list[str], point: dict[str, int] | None) -> tuple[str, dict[str, int]]:
    """The event-log step of an erasure on a broker with DeleteRecords (Kafka).

    ``point`` ("topic:partition" -> end offset when the step began; None the first time: it is
    read now and returned) is the erasure point. When every consumer group that committed on a
    partition has committed at or past the point, the records below the lowest committed offset are
    deleted (no consumer loses an event it has not processed). Returns ("purged" | "waiting", point).
    """
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.records_to_delete import RecordsToDelete
    from aiokafka.consumer import AIOKafkaConsumer

    from .kafka import topic_partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000)
    await consumer.start()
    await admin.start()
    try:
        existing = await topic_partitions(admin)
        partitions = [TopicPartition(t, p) for t in topics for p in existing.get(t, ())]
        if point is None:
            ends = await consumer.end_offsets(partitions)
            point = {f"{tp.topic}:{tp.partition}": offset for tp, offset in ends.items()}
        lowest: dict[TopicPartition, int] = {}
        for group in await admin.list_consumer_groups():
            group_id = group[0]
            committed = await admin.list_consumer_group_offsets(group_id, partitions=partitions)
            for tp, meta in committed.items():
                if meta.offset >= 0:
                    lowest[tp] = min(lowest.get(tp, meta.offset), meta.offset)
        waiting = [tp for tp in partitions if f"{tp.topic}:{tp.partition}" in point
                   and tp in lowest and lowest[tp] < point[f"{tp.topic}:{tp.partition}"]]
        if waiting:
            return "waiting", point
        targets = {tp: RecordsToDelete(before_offset=min(lowest.get(tp, point[f"{tp.topic}:{tp.partition}"]),
                                                         point[f"{tp.topic}:{tp.partition}"]))
                   for tp in partitions if f"{tp.topic}:{tp.partition}" in point}
        if targets:
            await admin.delete_records(targets)
        return "purged", point
    finally:
        await admin.close()
        await consumer.stop()


def raw_erasure_handler(*, service: str, outbox: Any,
                        erase: Any) -> Any:
    """The ``privacy.erasure_requested`` handler of a service on a bare asyncpg connection: its
    ``erase(conn, customer_id)`` in the consumer's transaction, then the acknowledgement (a
    redelivery finds nothing left and acknowledges again)."""
    from .outbox import enqueue_raw

    async def handle_erasure_requested(conn: Any, event: events.PrivacyErasureRequested) -> None:
        data = event.data
        await erase(conn, data.customer_id)
        await enqueue_raw(conn, outbox, completed_event(request_id=data.request_id, customer_id=data.customer_id,
                                                        service=service))

    return handle_erasure_requested


def export_router(*, service: str, export: Any) -> Any:
    """``GET /v1/privacy/customers/{id}/export`` (admins): what ``service`` holds on a customer,
    ``await export(conn, customer_id)`` on a bare asyncpg connection, for customer-svc's export
    bundle. The gateway routes ``/v1/privacy`` to customer-svc only, so no client reaches it
    through the gateway; customer-svc calls it with the downloading admin's signed identity."""
    router = APIRouter(prefix="/v1/privacy", tags=["privacy"])

    @router.get("/customers/{customer_id}/export", summary=f"What {service} holds on a customer (admins)")
    async def export_customer(request: Request, customer_id: uuid.UUID,
                              principal: CurrentPrincipal) -> JSONBytesResponse:
        require_user(principal, "admin")
        async with runtime_of(request).raw_transaction() as conn:
            return JSONBytesResponse(await export(conn, customer_id))

    return router
