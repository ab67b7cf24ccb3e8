"""``python -m ticket_svc.pii reindex``: every blind index ticket-svc stores, under a new index key.

The blind indexes are HMACs under ``TICKET_PII_INDEX_KEY`` (``codec.IDENTITY``, one context):

- ``tickets.requester_identity_bidx`` (the primary identity) and ``tickets.requester_bidx`` (every
  identity of the requester), recomputed from the decrypted ``tickets.requester``;
- ``tickets.conversation_key`` of a WeChat / WeCom ticket, ``<channel>:#<index of the sender>``:
  the key cannot be recomputed from itself, but the sender is an identity of the ticket's
  requester (``Sender(wechat_openid=…)``, ``external_id="wecom:…"``; a follow-up copies both), so
  the identity whose index under the old or the new key is the stored one gives the new key;
- ``customer_identity_projection.value_bidx``, recomputed from ``value_enc``.

``reply_routes.route`` is sealed, not indexed (found by its ticket): nothing to move there. The
ciphertext does not change (that is ``reencrypt``'s job, under ``TICKET_PII_KEYS``).

As customer-svc's command (``customer_svc/pii/reindex.py``): the old key is ``TICKET_PII_INDEX_KEY``,
the new one ``TICKET_PII_NEW_INDEX_KEY`` (only this command reads it; the service looks up with one
key and does not accept a second during the rotation). The command

- checks every index before it writes it: equal to the new key's, it is done (a resumed or repeated
  run skips it); equal to the old key's, it is moved; equal to neither, ``TICKET_PII_INDEX_KEY`` is
  not the key the rows were indexed with: the batch is rolled back and the command stops (exit 2)
  before any wrong index is written. The requester's indexes and the conversation key of a ticket
  are checked apart (a follow-up opened by a replica already on the new key copies its
  predecessor's key as stored);
- goes by id (tickets) and by customer (the projection, which has no key of its own) in batches of
  ``TICKET_PII_REENCRYPT_BATCH``, one transaction each, rows locked ``FOR UPDATE`` (a row the
  service holds is waited for, never skipped), and walks each table until a batch finds nothing;
  a batch that loses a deadlock or a unique race to the service is retried;
- is safe with the service running: what the service wrote under the old key after the walk passed
  is moved by the next run, what a replica already on the new key wrote is done, and an identity
  the projection holds under both keys keeps the row updated last (docs/security.md, "ticket-svc:
  the requester on a ticket", for how lookups behave meanwhile);
- leaves rows holding plaintext from before migration 0018 / 0019 (no index yet) to ``reencrypt``,
  which must run first; they are reported as ``not_indexed`` (exit 1 while there are some).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from helpdesk_common.identities import identities_of
from helpdesk_common.pii_crypto import PiiKeyError, parse_index_key
from helpdesk_common.pii_store import is_sealed

from . import repository
from .codec import Codec, is_indexed_conversation

#: how often a batch that lost a deadlock or a unique race to the service is tried again
_ATTEMPTS = 5


class WrongIndexKey(Exception):
    """A row's index is neither the old key's nor the new key's."""


@dataclass
class Report:
    tickets: int = 0
    conversation_keys: int = 0
    identities: int = 0
    duplicates: int = 0
    already: int = 0
    batches: int = 0


def _requester_indexes(box: Codec, requester: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(requester_identity_bidx, requester_bidx) as the intake stores them (its own rule; it also
    seals the requester, a few µs)."""
    columns = box.requester_columns(requester)
    return columns["requester_identity_bidx"], columns["requester_bidx"]


def _conversation_forms(old: Codec, new: Codec, key: str, requester: Mapping[str, Any]) -> tuple[str, str] | None:
    """(the old key's form, the new key's form) of an indexed WeChat / WeCom conversation key, from
    the requester's identity it indexes; None when no identity of the requester gives it."""
    channel = key.partition(":")[0]
    for _, value in identities_of(dict(requester)):
        forms = old.conversation_key(f"{channel}:{value}"), new.conversation_key(f"{channel}:{value}")
        if key in forms:
            return forms  # type: ignore[return-value]
    return None


def _ticket(old: Codec, new: Codec, r: Mapping[str, Any]) -> tuple[tuple[Any, ...] | None, bool]:
    """(the row's new indexes, or None when it has nothing to move; whether its conversation key moves).
    The requester's indexes and the conversation key are judged apart: a follow-up opened by a
    replica already on the new key copies its predecessor's key as it was stored."""
    requester = old.requester(r["requester"])
    primary, every = r["requester_identity_bidx"], list(r["requester_bidx"] or ())
    if is_sealed(r["requester"]):
        before, after = _requester_indexes(old, requester), _requester_indexes(new, requester)
        stored = (primary, set(every))
        if stored == (after[0], set(after[1])):
            pass
        elif stored == (before[0], set(before[1])):
            primary, every = after
        else:
            raise WrongIndexKey(f"tickets {r['id']} (requester_identity_bidx, requester_bidx)")
    # else plaintext from before 0018: reencrypt indexes it (reported as not_indexed)
    key = new_key = r["conversation_key"]
    if is_indexed_conversation(key):
        forms = _conversation_forms(old, new, key, requester)
        if forms is None:
            raise WrongIndexKey(f"tickets {r['id']} (conversation_key: no identity of its requester has this index)")
        new_key = forms[1]
    if primary == r["requester_identity_bidx"] and every == list(r["requester_bidx"] or ()) and key == new_key:
        return None, False
    return (r["id"], primary, every, new_key), key != new_key


async def _tickets_batch(conn: Any, old: Codec, new: Codec, after: uuid.UUID | None, batch: int,
                         report: Report) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.tickets_to_reindex(conn, after=after, limit=batch)
        moved, keys = [], 0
        for r in rows:
            row, key_moved = _ticket(old, new, r)
            if row is not None:
                moved.append(row)
                keys += key_moved
        await repository.store_ticket_indexes(conn, moved)
    report.tickets += len(moved)
    report.conversation_keys += keys
    report.already += len(rows) - len(moved)
    return len(rows), (rows[-1]["id"] if rows else None)


async def _identities_batch(conn: Any, old: Codec, new: Codec, after: uuid.UUID | None, batch: int,
                            report: Report) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        customers = await repository.customers_after(conn, after=after, limit=batch)
        rows = await repository.identities_to_reindex(conn, customers) if customers else []
        moved = []
        for r in rows:
            value = old.identity_value(r)
            if r["value_bidx"] == new.identity_index(value):
                continue
            if r["value_bidx"] != old.identity_index(value):
                raise WrongIndexKey(f"customer_identity_projection (customer {r['customer_id']}, {r['kind']})")
            moved.append((r["at"], r["kind"], new.identity_index(value), r["updated_at"]))
        duplicates = await repository.store_identity_indexes(conn, moved)
    report.identities += len(moved)
    report.duplicates += duplicates
    report.already += len(rows) - len(moved)
    return len(customers), (customers[-1] if customers else None)


Batch = Callable[[Any, Codec, Codec, Any, int, Report], Awaitable[tuple[int, Any]]]


async def _walk(conn: Any, step: Batch, old: Codec, new: Codec, *, batch: int, report: Report) -> None:
    """Batch after batch until one finds nothing (a locked ``LIMIT`` can come back short while the
    service updates rows, so a short batch does not mean the end)."""
    after: Any = None
    while True:
        for attempt in range(_ATTEMPTS):
            try:
                count, last = await step(conn, old, new, after, batch, report)
                break
            except (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.UniqueViolationError):
                if attempt == _ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        if not count:
            return
        report.batches += 1
        after = last


async def run(conn: Any, old: Codec, new: Codec, *, batch: int) -> tuple[Report, dict[str, int]]:
    """Walk tickets and the identity projection on ``conn`` (a bare asyncpg connection with the
    service's JSON codecs); (what moved, rows still in plaintext)."""
    report = Report()
    await _walk(conn, _tickets_batch, old, new, batch=batch, report=report)
    await _walk(conn, _identities_batch, old, new, batch=batch, report=report)
    return report, await repository.not_indexed(conn)


async def _main() -> tuple[int, dict[str, Any]]:
    from helpdesk_common.db import create_raw_pool

    from ..config import get_settings

    settings = get_settings()
    old = Codec.from_settings(settings.pii_keys_value, settings.pii_index_key_value)
    new_spec = settings.pii_new_index_key.get_secret_value() if settings.pii_new_index_key is not None else ""
    new_key = parse_index_key(new_spec, setting="TICKET_PII_NEW_INDEX_KEY")
    if new_key == parse_index_key(settings.pii_index_key_value or "", setting="TICKET_PII_INDEX_KEY"):
        raise PiiKeyError("TICKET_PII_NEW_INDEX_KEY is the current TICKET_PII_INDEX_KEY: nothing to rotate")
    new = Codec(old.keyring, new_key)
    pool = await create_raw_pool(settings.database_url, size=1)
    try:
        async with pool.acquire() as conn:
            report, left = await run(conn, old, new, batch=settings.pii_reencrypt_batch)
    finally:
        await pool.close()
    return (0 if not any(left.values()) else 1), {
        "tickets": report.tickets, "conversation_keys": report.conversation_keys, "identities": report.identities,
        "duplicates": report.duplicates, "already": report.already, "batches": report.batches, "not_indexed": left}


def cli(argv: list[str]) -> int:
    """Exit 0 when every index is under the new key, 1 while plaintext rows wait for ``reencrypt``,
    2 for a usage or key error (nothing of the failing batch written)."""
    if argv != ["reindex"]:
        print("usage: python -m ticket_svc.pii reindex", file=sys.stderr)
        return 2
    try:
        code, report = asyncio.run(_main())
    except (PiiKeyError, WrongIndexKey) as exc:
        what = (f"{exc}: its index is neither TICKET_PII_INDEX_KEY's nor TICKET_PII_NEW_INDEX_KEY's "
                "(is TICKET_PII_INDEX_KEY the key the rows were indexed with?); this batch was not written"
                if isinstance(exc, WrongIndexKey) else str(exc))
        print(what, file=sys.stderr)
        return 2
    print(orjson.dumps(report).decode())
    return code
