"""Data subject requests: business rules (flushes, never commits; bare asyncpg connections).

An erasure: created ``pending`` (the customer is restricted at once); the worker starts it
(``in_progress``) by publishing ``privacy.erasure_requested``; every service, customer-svc
included, anonymises what it holds in its consumer transaction and publishes
``privacy.erasure_completed``; when every expected service has, the request is ``completed``
(after the event-log step, docs/security.md "Erasure"). An export: created ``pending``; its bundle
is assembled when an admin downloads it, from customer-svc's rows and every service's
``GET /v1/privacy/customers/{id}/export`` asked with that admin's identity.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from helpdesk_common import erasure, events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.pagination import decode_cursor, page
from helpdesk_common.problems import Problem

from ..db import outbox
from . import repository, rules

log = logging.getLogger(__name__)

SOURCE = "customer-svc"


async def restrict(conn: Any, customer_id: uuid.UUID, restricted: bool) -> None:
    """Mark the customer restricted (or not) and tell the services that send on its behalf
    (``customer.restricted``: notify-svc holds its deliveries), when that changes."""
    if await repository.set_restricted(conn, customer_id, restricted):
        await enqueue_raw(conn, outbox, events.CustomerRestricted(
            source=SOURCE, subject=str(customer_id),
            data=events.CustomerRestrictedData(customer_id=customer_id, restricted=restricted, at=datetime.now(UTC))))


def require_admin(principal: Principal) -> None:
    if not principal.is_user or principal.role != "admin":
        raise Problem(403, "forbidden", "Forbidden", "Only admins handle data subject requests.")


def _not_found() -> Problem:
    return Problem(404, "not-found", "Not found", "No such privacy request.")


def view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"], "customer_id": row["customer_id"], "kind": row["kind"], "state": row["state"],
        # "_log" holds the worker's erasure point (offsets), not a service
        "requested_by": row["requested_by"],
        "services": {k: v for k, v in (row["services"] or {}).items() if not k.startswith("_")},
        "log": row["log_state"],
        "suspended_reason": row["suspended_reason"], "bundle_ready": row["bundle_ready"],
        "bundle_expires_at": row["bundle_expires_at"], "created_at": row["created_at"],
        "updated_at": row["updated_at"], "completed_at": row["completed_at"],
    }


async def create(conn: Any, *, principal: Principal, customer_id: uuid.UUID, kind: str,
                 services: tuple[str, ...]) -> tuple[dict[str, Any], bool]:
    """(the request, created?): an open request of the same customer and kind is answered as is."""
    found = await repository.customer(conn, customer_id)
    if found is None:
        raise Problem(404, "not-found", "Not found", "No such customer.")
    if found["merged_into"] is not None:  # a merged id: the person is its survivor now
        customer_id = found["merged_into"]
    existing = await repository.open_request(conn, customer_id=customer_id, kind=kind)
    if existing is not None:
        return view(existing), False
    row = await repository.insert_request(
        conn, request_id=uuid.uuid4(), customer_id=customer_id, kind=kind, requested_by=principal.ref,
        services=rules.initial_services(services if kind == "erase" else ()))
    if row is None:  # a concurrent request won the unique index
        return view(await repository.open_request(conn, customer_id=customer_id, kind=kind)), False
    await repository.audit(conn, request_id=row["id"], action="created", actor=principal.ref, detail={"kind": kind})
    if rules.restricts(kind=kind, state=row["state"]):
        await restrict(conn, customer_id, True)
    return view(row), True


async def get(conn: Any, request_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get(conn, request_id)
    if row is None:
        raise _not_found()
    out = view(row)
    out["audit"] = [dict(r) for r in await repository.audit_of(conn, request_id)]
    return out


async def list_requests(conn: Any, *, state: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
    rows = await repository.list_requests(conn, state=state, after=decode_cursor(cursor) if cursor else None,
                                          limit=limit)
    items, next_cursor = page(rows, limit)
    return {"items": [view(r) for r in items], "next_cursor": next_cursor}


async def change(conn: Any, *, principal: Principal, request_id: uuid.UUID, action: str,
                 reason: str | None = None) -> dict[str, Any]:
    """Suspend (PIPL Art. 47: e.g. a legal hold) or resume a request."""
    row = await repository.get(conn, request_id, lock=True)
    if row is None:
        raise _not_found()
    try:
        state = rules.transition(kind=row["kind"], state=row["state"], action=action)
    except rules.TransitionRefused as exc:
        raise Problem(409, "invalid-transition", "Invalid transition", str(exc)) from exc
    row = await repository.set_state(conn, request_id, state=state,
                                     suspended_reason=reason if state == "suspended" else None)
    await repository.audit(conn, request_id=request_id, action={"suspend": "suspended", "resume": "resumed"}[action], actor=principal.ref,
                           detail={"reason": reason} if reason else {})
    await restrict(conn, row["customer_id"], await repository.restricting(conn, row["customer_id"]))
    return view(row)


# --- erasure ---------------------------------------------------------------------------------

def _codec() -> Any:
    from ..pii.codec import codec

    return codec()


def plain_identity(row: Any) -> dict[str, Any]:
    """An identity row with its plaintext ``value`` (encrypted at rest or a legacy row)."""
    if row.get("value_enc") is not None:
        return _codec().identity(row)
    return dict(row)


def plain_customer(row: Any) -> dict[str, Any]:
    if row.get("name_enc") is not None or row.get("notes_enc") is not None:
        return _codec().customer(row)
    return dict(row)


def _index_identities(rows: list[Any]) -> list[events.Identity]:
    """The identities as blind indexes (the index customer-svc keeps, ``value_bidx``), never the
    values, for the erasure event; rows not yet re-encrypted have none and are left out."""
    return [events.Identity(kind=r["kind"], value=r["value_bidx"]) for r in rows if r.get("value_bidx")]


async def person_needles(conn: Any, ids: list[uuid.UUID]) -> list[str]:
    """The strings that reveal the person (names, identity values), decrypted."""
    found: set[str] = set(erasure.needles(
        name=None, identities=[(r["kind"], plain_identity(r)["value"]) for r in await repository.identities(conn, ids)]))
    for row in await repository.profiles(conn, ids):
        found |= set(erasure.needles(name=plain_customer(row).get("name"), identities=()))
    return sorted(found, key=lambda n: (-len(n), n))


async def start_due(conn: Any, *, limit: int, grace_s: float) -> int:
    """Start pending erasures older than ``grace_s``: publish ``privacy.erasure_requested``."""
    started = 0
    for row in await repository.claim_pending(conn, limit=limit, older_than_s=grace_s):
        if row["kind"] != "erase":
            continue
        ids = await repository.customer_ids(conn, row["customer_id"])
        identities = await repository.identities(conn, ids)
        now = datetime.now(UTC)
        await enqueue_raw(conn, outbox, events.PrivacyErasureRequested(
            source=SOURCE, subject=str(row["customer_id"]),
            data=events.ErasureRequestedData(request_id=row["id"], customer_id=row["customer_id"],
                                             identities=_index_identities(identities)[:200],
                                             requested_at=now)))
        await repository.set_state(conn, row["id"], state="in_progress")
        await repository.audit(conn, request_id=row["id"], action="started", actor="system:privacy")
        started += 1
    return started


async def erase_here(conn: Any, *, customer_id: uuid.UUID) -> dict[str, int]:
    """customer-svc's own anonymisation of the customer (and of every customer merged into it)."""
    ids = await repository.customer_ids(conn, customer_id)
    if not ids:
        return {}
    found = await person_needles(conn, ids)
    counts = await repository.erase(conn, ids=ids, erased_name=erasure.ERASED_NAME, found=found)
    counts["outbox"] = await erasure.purge_published_outbox(conn, table=outbox.name, customer_id=customer_id,
                                                            found=found)
    return counts


async def acknowledge(conn: Any, *, request_id: uuid.UUID, service: str, at: datetime,
                      expected: tuple[str, ...], log_mode: str) -> None:
    """One service's ``privacy.erasure_completed``; the last one completes the request (with the
    ``retention`` log mode at once; with ``delete-records`` / ``auto`` the worker completes it
    after the purge)."""
    row = await repository.get(conn, request_id, lock=True)
    if row is None or row["kind"] != "erase":
        log.warning("acknowledgement of an unknown erasure %s from %s", request_id, service)
        return
    services = rules.acknowledge(row["services"], service=service, at=at.isoformat())
    state = rules.next_state_after_ack(state=row["state"], services=services, expected=expected)
    log_state = row["log_state"]
    if state == "completed" and row["state"] != "completed":
        if log_mode in ("delete-records", "auto"):
            state, log_state = row["state"], "pending"
        else:
            log_state = "retention"
    await repository.set_state(conn, request_id, state=state, services=services, log_state=log_state,
                               suspended_reason=row["suspended_reason"])
    if state == "completed" and row["state"] != "completed":
        await complete(conn, request_id=request_id, customer_id=row["customer_id"], log_state=log_state)


async def complete(conn: Any, *, request_id: uuid.UUID, customer_id: uuid.UUID, log_state: str | None) -> None:
    """The audit row of a completed erasure, and the end of the restriction (the data is gone)."""
    await repository.audit(conn, request_id=request_id, action="completed", actor="system:privacy",
                           detail={"log": log_state})
    await restrict(conn, customer_id, await repository.restricting(conn, customer_id))


# --- export ----------------------------------------------------------------------------------

async def local_export(conn: Any, *, customer_id: uuid.UUID) -> dict[str, Any]:
    ids = await repository.customer_ids(conn, customer_id)
    out = await repository.export_rows(conn, ids)
    out["surveys"] = [_codec().survey(r) for r in out["surveys"]]  # comment_enc opened (pii/codec.py)
    out["customers"] = [{k: v for k, v in plain_customer(r).items() if k not in ("search", "name_key")}
                        for r in await repository.profiles(conn, ids)]
    out["identities"] = [{k: v for k, v in plain_identity(r).items()
                          if k not in ("value_bidx", "phone_key", "email_local")}
                         for r in await repository.identities(conn, ids)]
    return out


async def finish_export(conn: Any, *, principal: Principal, request_id: uuid.UUID, bundle: dict[str, Any],
                        ttl_s: int, failed: list[str]) -> None:
    row = await repository.get(conn, request_id, lock=True)
    await repository.store_bundle(conn, request_id, bundle=bundle,
                                  expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s))
    services = {name: {"state": "failed" if name in failed else "completed"} for name in bundle["services"]}
    if row["state"] in ("pending", "in_progress"):
        await repository.set_state(conn, request_id, state="in_progress" if failed else "completed",
                                   services=services)
    await repository.audit(conn, request_id=request_id, action="exported", actor=principal.ref,
                           detail={"failed": failed})
