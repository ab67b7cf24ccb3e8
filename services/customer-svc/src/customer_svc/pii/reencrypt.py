"""``python -m customer_svc.pii reencrypt``: every stored personal value under the current key.

It moves, in batches of ``CUSTOMER_PII_REENCRYPT_BATCH`` rows (one transaction each, committed
before the next), every row that holds

- plaintext written before migration 0008 (``customer_identities.value``, ``customers.name`` and
  ``notes`` and their plaintext search lexemes, ``customer_merges.identities[].value``), or
  before migration 0010 (``surveys.comment``): it is encrypted, its blind indexes computed and
  the plaintext cleared;
- ciphertext under another key than the first of ``CUSTOMER_PII_KEYS`` (after a rotation): it is
  decrypted with the key it names and encrypted again with the current one.

Idempotent (a row already in the current form is not selected again) and resumable (a run that
stops leaves committed batches done; the next run selects what is left). Rows are locked with
``SKIP LOCKED``, so two runs, or the running service, never wait on each other; a row the service
writes meanwhile is written in the current form anyway. The walk goes by primary key, so a row is
visited once per run. Prints what it did and what is left, as JSON.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

from helpdesk_common.pii_store import cli as reencrypt_cli
from helpdesk_common.pii_store import walk

from . import repository
from .codec import Codec, configure


@dataclass
class Report:
    identities: int = 0
    customers: int = 0
    merges: int = 0
    surveys: int = 0
    batches: int = 0
    remaining: dict[str, int] = field(default_factory=dict)


async def _identities(conn: Any, box: Codec, *, after: uuid.UUID | None, batch: int) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.identities_to_seal(conn, after=after, current_kid=box.keyring.current_kid,
                                                   limit=batch)
        sealed = []
        for r in rows:
            value = box.identity_value(r)
            sealed.append((r["id"], *box.identity_columns(r["kind"], value)))
        await repository.store_identities(conn, sealed)
    return len(rows), (rows[-1]["id"] if rows else None)


async def _customers(conn: Any, box: Codec, *, after: uuid.UUID | None, batch: int) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.customers_to_seal(conn, after=after, current_kid=box.keyring.current_kid, limit=batch)
        sealed = []
        for r in rows:
            plain = box.customer(r)
            name, notes = plain["name"], plain["notes"]
            sealed.append((r["id"], box.seal_name(name), box.name_key(name), box.search_document(name),
                           box.seal_notes(notes)))
        await repository.store_customers(conn, sealed)
    return len(rows), (rows[-1]["id"] if rows else None)


async def _merges(conn: Any, box: Codec, *, after: uuid.UUID | None, batch: int) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.merges_to_seal(conn, after=after, current_kid=box.keyring.current_kid, limit=batch)
        for r in rows:
            moved = []
            for item in r["identities"]:
                item = dict(item)
                value = item.pop("value") if "value" in item else box.open_merge_identity(item["value_enc"])
                item["value_enc"] = box.seal_merge_identity(value)
                moved.append(item)
            await repository.store_merge(conn, r["id"], moved)
    return len(rows), (rows[-1]["id"] if rows else None)


async def _surveys(conn: Any, box: Codec, *, after: uuid.UUID | None, batch: int) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.surveys_to_seal(conn, after=after, current_kid=box.keyring.current_kid, limit=batch)
        await repository.store_surveys(conn, [(r["id"], box.seal_comment(box.comment_of(r["comment"], r["comment_enc"])))
                                              for r in rows])
    return len(rows), (rows[-1]["id"] if rows else None)


async def run(conn: Any, box: Codec, *, batch: int) -> Report:
    """Walk the four tables on ``conn`` (a bare asyncpg connection with the service's JSON codecs)."""
    def step(fn: Any) -> Any:
        return lambda c, after: fn(c, box, after=after, batch=batch)

    done, batches = await walk(conn, [("identities", step(_identities)), ("customers", step(_customers)),
                                      ("merges", step(_merges)), ("surveys", step(_surveys))], batch=batch)
    return Report(**done, batches=batches, remaining=await repository.remaining(conn, current_kid=box.keyring.current_kid))


async def _main() -> dict[str, Any]:
    from helpdesk_common.db import create_raw_pool

    from ..config import get_settings

    settings = get_settings()
    box = configure(settings.pii_keys_value, settings.pii_index_key_value)
    pool = await create_raw_pool(settings.database_url, size=1)
    try:
        async with pool.acquire() as conn:
            report = await run(conn, box, batch=settings.pii_reencrypt_batch)
    finally:
        await pool.close()
    return {"current_kid": box.keyring.current_kid, "identities": report.identities, "customers": report.customers,
            "merges": report.merges, "surveys": report.surveys, "batches": report.batches, "remaining": report.remaining}


def cli() -> None:
    sys.exit(reencrypt_cli(sys.argv[1:], module="customer_svc.pii", run=_main))
