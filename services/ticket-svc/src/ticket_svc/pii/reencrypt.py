"""``python -m ticket_svc.pii reencrypt``: every stored requester under the current key.

Moves, in batches of ``TICKET_PII_REENCRYPT_BATCH`` rows (one transaction each, committed before
the next), every row that holds

- plaintext written before migration 0018 (``tickets.requester`` as an object and
  ``requester_identity_value``; the projection's ``value``) or 0019 (a WeChat / WeCom
  ``tickets.conversation_key`` naming its sender, a ``reply_routes.route`` object): it is
  encrypted or indexed and the plaintext cleared;
- plaintext written before migration 0021 (a ticket's CC list and CSAT comment, a message's
  personal metadata): it is sealed;
- ciphertext under another key than the first of ``TICKET_PII_KEYS`` (after a rotation): it is
  decrypted with the key it names and encrypted again with the current one.

customer-svc's command does the same for its tables; the loop, the report and the exit code are
``helpdesk_common.pii_store``'s. Idempotent, resumable, ``SKIP LOCKED`` (docs/security.md,
"Personal data at rest", "Keys and rotation").
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from helpdesk_common.pii_store import cli as reencrypt_cli
from helpdesk_common.pii_store import walk

from . import repository
from .codec import Codec, configure


async def _tickets(conn: Any, box: Codec, after: uuid.UUID | None, batch: int) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.tickets_to_seal(conn, after=after, current_kid=box.keyring.current_kid, limit=batch)
        await repository.store_tickets(conn, [
            (r["id"], {**box.requester_columns(box.requester(r["requester"])),
                       "conversation_key": box.conversation_key(r["conversation_key"])}) for r in rows])
    return len(rows), (rows[-1]["id"] if rows else None)


async def _identities(conn: Any, box: Codec, batch: int) -> tuple[int, None]:
    async with conn.transaction():
        rows = await repository.identities_to_seal(conn, current_kid=box.keyring.current_kid, limit=batch)
        sealed = []
        for r in rows:
            value = box.identity_value(r)
            sealed.append((r["at"], r["kind"], box.seal_identity(value), box.identity_index(value)))
        await repository.store_identities(conn, sealed)
    return len(rows), None


async def _routes(conn: Any, box: Codec, after: tuple[uuid.UUID, str] | None,
                  batch: int) -> tuple[int, tuple[uuid.UUID, str] | None]:
    async with conn.transaction():
        rows = await repository.routes_to_seal(conn, after=after, current_kid=box.keyring.current_kid, limit=batch)
        await repository.store_routes(conn, [(r["ticket_id"], r["channel"], box.seal_route(box.route(r["route"]) or {}))
                                             for r in rows])
    return len(rows), ((rows[-1]["ticket_id"], rows[-1]["channel"]) if rows else None)


async def _ticket_fields(conn: Any, box: Codec, after: uuid.UUID | None,
                         batch: int) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.ticket_fields_to_seal(conn, after=after, current_kid=box.keyring.current_kid,
                                                      limit=batch)
        await repository.store_ticket_fields(conn, [
            (r["id"], box.seal_cc(box.cc(r["cc"])), box.seal_comment(box.comment(r["csat_comment"])))
            for r in rows])
    return len(rows), (rows[-1]["id"] if rows else None)


async def _messages(conn: Any, box: Codec, after: uuid.UUID | None, batch: int) -> tuple[int, uuid.UUID | None]:
    async with conn.transaction():
        rows = await repository.messages_to_seal(conn, after=after, current_kid=box.keyring.current_kid, limit=batch)
        await repository.store_messages(conn, [(r["id"], box.seal_metadata(box.metadata(r["metadata"])))
                                               for r in rows])
    return len(rows), (rows[-1]["id"] if rows else None)


async def run(conn: Any, box: Codec, *, batch: int) -> dict[str, Any]:
    """Walk the tables on ``conn`` (a bare asyncpg connection with the service's JSON codecs)."""
    done, batches = await walk(conn, [
        ("tickets", lambda c, after: _tickets(c, box, after, batch)),
        ("identities", lambda c, _after: _identities(c, box, batch)),
        ("reply_routes", lambda c, after: _routes(c, box, after, batch)),
        ("ticket_fields", lambda c, after: _ticket_fields(c, box, after, batch)),
        ("messages", lambda c, after: _messages(c, box, after, batch)),
    ], batch=batch)
    return {"current_kid": box.keyring.current_kid, **done, "batches": batches,
            "remaining": await repository.remaining(conn, current_kid=box.keyring.current_kid)}


async def _main() -> dict[str, Any]:
    from helpdesk_common.db import create_raw_pool

    from ..config import get_settings

    settings = get_settings()
    box = configure(settings.pii_keys_value, settings.pii_index_key_value)
    pool = await create_raw_pool(settings.database_url, size=1)
    try:
        async with pool.acquire() as conn:
            return await run(conn, box, batch=settings.pii_reencrypt_batch)
    finally:
        await pool.close()


def cli() -> None:
    sys.exit(reencrypt_cli(sys.argv[1:], module="ticket_svc.pii", run=_main))
