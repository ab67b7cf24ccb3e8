"""``python -m customer_svc.pii reindex``: every blind index recomputed under a new index key.

The blind indexes (``customer_identities.value_bidx``, ``phone_key``, ``email_local``;
``customers.name_key`` and the opaque search terms in ``customers.search``) are HMACs under
``CUSTOMER_PII_INDEX_KEY``. Rotating that key (it leaked, or policy says so) means recomputing
each of them from the decrypted value under the new key, ``CUSTOMER_PII_NEW_INDEX_KEY``; the
ciphertext does not change (that is ``reencrypt``'s job, under ``CUSTOMER_PII_KEYS``).

A lookup compares one index, so the service cannot serve lookups while half the rows are under
each key: the rotation runs with customer-svc stopped (docs/security.md, "Keys and rotation"),
then the deployment's ``CUSTOMER_PII_INDEX_KEY`` becomes the new key. The command

- checks every row before it writes it: an index equal to the new key's is already done (a
  resumed run skips it), one equal to the old key's is moved, and one equal to neither means
  ``CUSTOMER_PII_INDEX_KEY`` is not the key these rows were indexed with: the batch is rolled
  back and the command stops (exit 2) before any wrong index is written;
- goes by primary key in batches of ``CUSTOMER_PII_REENCRYPT_BATCH`` rows, one transaction each,
  so a run that stops leaves committed batches done and the next run finishes the rest;
- leaves rows written before migration 0008 (plaintext, no index) to ``reencrypt``, which must
  run first; they are reported as ``not_indexed`` (exit 1 while there are some).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from helpdesk_common.pii_crypto import PiiKeyError, parse_index_key
from helpdesk_common.pii_store import walk

from . import repository
from .codec import Codec


class WrongIndexKey(Exception):
    """A row's index is neither the old key's nor the new key's."""


@dataclass
class Report:
    identities: int = 0
    customers: int = 0
    already: int = 0
    batches: int = 0


async def _identities(conn: Any, old: Codec, new: Codec, report: Report, *, after: uuid.UUID | None,
                      batch: int) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.identities_to_reindex(conn, after=after, limit=batch)
        moved = []
        for r in rows:
            value = old.identity_value(r)
            if r["value_bidx"] == new.identity_index(value):
                report.already += 1
                continue
            if r["value_bidx"] != old.identity_index(value):
                raise WrongIndexKey(f"customer_identities {r['id']}")
            moved.append((r["id"], *new.identity_columns(r["kind"], value)[1:]))
        await repository.store_identity_indexes(conn, moved)
    report.identities += len(moved)
    return len(rows), (rows[-1]["id"] if rows else None)


async def _customers(conn: Any, old: Codec, new: Codec, report: Report, *, after: uuid.UUID | None,
                     batch: int) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.customers_to_reindex(conn, after=after, limit=batch)
        moved = []
        for r in rows:
            name = old.customer({"name_enc": r["name_enc"]})["name"]
            new_key = new.name_key(name)
            if r["name_key"] == new_key and new_key is not None:
                report.already += 1
                continue
            if r["name_key"] != old.name_key(name):
                raise WrongIndexKey(f"customers {r['id']}")
            moved.append((r["id"], new_key, new.search_document(name)))
        await repository.store_customer_indexes(conn, moved)
    report.customers += len(moved)
    return len(rows), (rows[-1]["id"] if rows else None)


async def run(conn: Any, old: Codec, new: Codec, *, batch: int) -> tuple[Report, dict[str, int]]:
    """Walk both tables on ``conn`` (a bare asyncpg connection); (what moved, rows still in plaintext)."""
    report = Report()

    def step(fn: Any) -> Any:
        return lambda c, after: fn(c, old, new, report, after=after, batch=batch)

    _, report.batches = await walk(conn, [("identities", step(_identities)), ("customers", step(_customers))],
                                   batch=batch)
    return report, await repository.not_indexed(conn)


async def _main() -> tuple[int, dict[str, Any]]:
    from helpdesk_common.db import create_raw_pool

    from ..config import get_settings

    settings = get_settings()
    old = Codec.from_settings(settings.pii_keys_value, settings.pii_index_key_value)
    new_spec = settings.pii_new_index_key.get_secret_value() if settings.pii_new_index_key is not None else ""
    new = Codec(old.keyring, parse_index_key(new_spec, setting="CUSTOMER_PII_NEW_INDEX_KEY"))
    if new_spec.strip() == (settings.pii_index_key_value or "").strip():
        raise PiiKeyError("CUSTOMER_PII_NEW_INDEX_KEY is the current CUSTOMER_PII_INDEX_KEY: nothing to rotate")
    pool = await create_raw_pool(settings.database_url, size=1)
    try:
        async with pool.acquire() as conn:
            report, left = await run(conn, old, new, batch=settings.pii_reencrypt_batch)
    finally:
        await pool.close()
    return (0 if not any(left.values()) else 1), {
        "identities": report.identities, "customers": report.customers, "already": report.already,
        "batches": report.batches, "not_indexed": left}


def cli(argv: list[str]) -> int:
    """Exit 0 when every index is under the new key, 1 while plaintext rows wait for ``reencrypt``,
    2 for a usage or key error (nothing of the failing batch written)."""
    if argv != ["reindex"]:
        print("usage: python -m customer_svc.pii reindex", file=sys.stderr)
        return 2
    try:
        code, report = asyncio.run(_main())
    except (PiiKeyError, WrongIndexKey) as exc:
        what = (f"{exc}: its index is neither CUSTOMER_PII_INDEX_KEY's nor CUSTOMER_PII_NEW_INDEX_KEY's "
                "(is CUSTOMER_PII_INDEX_KEY the key the rows were indexed with?); this batch was not written"
                if isinstance(exc, WrongIndexKey) else str(exc))
        print(what, file=sys.stderr)
        return 2
    print(orjson.dumps(report).decode())
    return code
