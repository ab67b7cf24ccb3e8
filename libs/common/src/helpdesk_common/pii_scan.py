"""Test helper: find a person's data anywhere it may remain (docs/security.md "Erasure").

``scan_database`` looks at every text, character, json/jsonb, array, tsvector and bytea column of
every table of a database (bytea raw and as UTF-8); ``scan_broker`` reads every record the broker
still holds on every topic (keys, values, headers). Both answer the places where a needle was
found, so an erasure test asserts an empty list and prints where the leak is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TEXTUAL = ("text", "character varying", "character", "json", "jsonb", "ARRAY", "tsvector", "USER-DEFINED", "xml")


@dataclass(frozen=True)
class Finding:
    where: str  # "<database>.<table>.<column>" or "topic <name> partition <p> offset <o>"
    needle: str
    sample: str

    def __str__(self) -> str:
        return f"{self.where}: {self.needle!r} in {self.sample!r}"


def _sample(text: str, needle: str) -> str:
    at = text.lower().find(needle.lower())
    return text[max(0, at - 40): at + len(needle) + 40] if at >= 0 else text[:80]


def encoded_forms(needle: str) -> list[str]:
    """The needle as it appears inside base64 text (a MIME part, a data URL, a token): for each of
    the three alignments, the characters that encode only the needle's bytes (pure). Cores
    shorter than 8 characters are left out (they would match by chance)."""
    import base64

    raw = needle.encode()
    out = []
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode().rstrip("=")
        start = -(-pad * 4 // 3)  # characters touched by the padding bytes
        whole = (pad + len(raw)) // 3 * 4  # characters of complete groups
        core = encoded[start:whole]
        if len(core) >= 8:
            out.append(core)
    return out


#: a ``pii_crypto`` token inside a column's text (a plain column, a ``{"sealed": …}`` object, a JSON array)
_TOKEN = re.compile(r"v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{22,}")


def _opened(keyring: Any, table: str, column: str, text: str) -> list[str]:
    """The plaintexts of the tokens in ``text`` that ``keyring`` opens under the column's context
    (``<table>.<column>``, ``_enc`` dropped: the services' convention); others are left out."""
    from .pii_crypto import PiiDecryptError

    context = f"{table}.{column.removesuffix('_enc')}"
    out = []
    for token in _TOKEN.findall(text):
        try:
            out.append(keyring.decrypt(token, context=context))
        except PiiDecryptError:
            continue
    return out


async def scan_database(url: str, needles: list[str], *, label: str | None = None,
                        encoded: bool = True, keyring: Any = None) -> list[Finding]:
    """Every (table, column) of the ``public`` schema holding a needle (case-insensitive), also
    base64-encoded (``encoded``), as text or as raw bytes; one query per column. With the
    service's ``keyring`` (``pii_crypto.Keyring``) the ciphertext is scanned too: every token in a
    column is opened and its plaintext searched, so data that is encrypted but not erased is found
    (the finding's column is suffixed ``(decrypted)``)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    label = label or make_url(url).database or "db"
    terms: dict[str, str] = {}  # what is searched -> the needle it stands for
    for needle in needles:
        terms[needle] = needle
        for form in encoded_forms(needle) if encoded else ():
            terms.setdefault(form, needle)
    searched = list(terms)
    conn = await asyncpg.connect(dsn)
    findings: list[Finding] = []
    try:
        columns = await conn.fetch(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' ORDER BY 1, 2")
        for col in columns:
            table, column, kind = col["table_name"], col["column_name"], col["data_type"]
            ident = f'"{table}"."{column}"'
            if kind == "bytea":
                sql = (f"SELECT encode({ident}, 'escape') AS v FROM \"{table}\" WHERE EXISTS (SELECT 1 FROM "
                       f"unnest($1::text[]) AS x(term) WHERE position(convert_to(x.term, 'UTF8') IN {ident}) > 0 "
                       f"OR position(convert_to(lower(x.term), 'UTF8') IN {ident}) > 0) LIMIT 1")
            elif kind in _TEXTUAL:
                sql = (f"SELECT {ident}::text AS v FROM \"{table}\" WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) "
                       f"AS x(term) WHERE position(lower(x.term) IN lower({ident}::text)) > 0) LIMIT 1")
            else:
                continue
            if keyring is not None and kind in _TEXTUAL:
                for (value,) in await conn.fetch(
                        f"SELECT {ident}::text FROM \"{table}\" WHERE {ident}::text ~ 'v1\\.[A-Za-z0-9_-]+\\.'"):
                    plain = "\n".join(_opened(keyring, table, column, value))
                    hit = next((n for n in needles if n.lower() in plain.lower()), None)
                    if hit is not None:
                        findings.append(Finding(f"{label}.{table}.{column} (decrypted)", hit, _sample(plain, hit)))
                        break
            row = await conn.fetchrow(sql, searched)
            if row is None:
                continue
            value = str(row["v"])
            hit = next((t for t in searched if t.lower() in value.lower()), searched[0])
            findings.append(Finding(f"{label}.{table}.{column}", terms[hit], _sample(value, hit)))
    finally:
        await conn.close()
    return findings


#: the broker's own topics a scan reads too when they exist (Apache Kafka: the consumer groups'
#: offsets and metadata, the transactions' state); the embedded broker has none
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")


async def scan_broker(bootstrap: str, needles: list[str], *, topic_prefix: str = "",
                      counts: dict[str, int] | None = None) -> list[Finding]:
    """Every record still held on every topic (whose name starts with ``topic_prefix``, and the
    broker's ``INTERNAL_TOPICS``) that holds a needle in its key, value or headers (UTF-8,
    case-insensitive). ``counts``, when given, receives the records read per topic, so that a
    clean scan can show it read something."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from .kafka import topic_partitions

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        held = await topic_partitions(admin)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    findings: list[Finding] = []
    lowered = [n.lower() for n in needles]
    counts = {} if counts is None else counts
    try:
        topics = [t for t in held if t.startswith(topic_prefix) and not t.startswith("__")]
        topics += [t for t in INTERNAL_TOPICS if t in held]
        partitions = [TopicPartition(t, p) for t in topics for p in held[t]]
        if not partitions:
            return findings
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        begins = await consumer.beginning_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > begins[tp]}
        for tp in remaining:
            consumer.seek(tp, begins[tp])
        while remaining:
            batch = await consumer.getmany(timeout_ms=2000, max_records=2000)
            if not batch:
                break
            for tp, records in batch.items():
                counts[tp.topic] = counts.get(tp.topic, 0) + len(records)
                for record in records:
                    parts: list[Any] = [record.key or b"", record.value or b""]
                    parts += [v or b"" for _, v in (record.headers or ())]
                    text = b"\n".join(p if isinstance(p, bytes) else str(p).encode() for p in parts).decode(
                        "utf-8", "replace")
                    low = text.lower()
                    for needle, low_needle in zip(needles, lowered, strict=True):
                        if low_needle in low:
                            findings.append(Finding(f"topic {tp.topic} partition {tp.partition} offset {record.offset}",
                                                    needle, _sample(text, needle)))
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    return findings
