"""Organisations: supervisors and admins write, users read. Each change is one version and one
``organization.*`` event in the same transaction (outbox)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from helpdesk_common import concurrency, events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.pagination import decode_cursor, page
from helpdesk_common.problems import Problem
from helpdesk_common.validation import fold_key

from ..attributes import service as attributes
from ..db import outbox
from . import repository
from .domains import PUBLIC_EMAIL_DOMAINS, domain_key
from .schemas import OrganizationCreate, OrganizationUpdate

SOURCE = "customer-svc"
WRITE_ROLES = ("admin", "supervisor")
SCOPE = "organization"


def require_writer(principal: Principal) -> None:
    if not principal.has_role(*WRITE_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins change organisations.")


def to_read(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "domains": list(row["domains"]), "tier": row["tier"],
        "attributes": row["attributes"], "notes": row["notes"], "created_at": row["created_at"],
        "updated_at": row["updated_at"], "version": row["version"],
    }


def stored_domains(domains: list[str]) -> list[str]:
    """Distinct domain keys in the order given; 422 naming each public webmail domain."""
    keys = list(dict.fromkeys(domain_key(d) for d in domains))
    public = [(i, d) for i, d in enumerate(keys) if d in PUBLIC_EMAIL_DOMAINS]
    if public:
        raise Problem(422, "validation-error", "Public e-mail domain",
                      "Public webmail domains make no one an organisation's member: "
                      + ", ".join(d for _, d in public),
                      errors=[{"field": "body.domains", "message": f"{d} is a public webmail domain",
                               "code": "cross_field"} for _, d in public])
    return keys


def _not_found(organization_id: uuid.UUID) -> Problem:
    return Problem(404, "not-found", "Organisation not found", f"No organisation {organization_id}.")


def _name_taken(name: str) -> Problem:
    return Problem(409, "conflict", "Name taken", f"An organisation named {name!r} exists already.",
                   errors=[{"field": "body.name", "message": "is taken (names compare case-insensitively)",
                            "code": "unique"}])


async def _claim_domains(conn: Any, organization_id: uuid.UUID, domains: list[str]) -> None:
    taken = await repository.claim_domains(conn, organization_id, domains)
    if taken:
        raise Problem(409, "domain-taken", "Domain taken",
                      "Another organisation has " + ", ".join(taken) + ".",
                      errors=[{"field": "body.domains", "message": f"{d} belongs to another organisation",
                               "code": "unique"} for d in taken])


def _event(kind: type, row: Any, *, principal: Principal, changes: dict[str, Any] | None = None) -> Any:
    return kind(source=SOURCE, subject=str(row["id"]), data=events.OrganizationData(
        organization_id=row["id"], version=row["version"], name=row["name"], domains=list(row["domains"]),
        tier=row["tier"], attributes=row["attributes"], changes=changes or {}, actor=principal.ref,
        at=datetime.now(UTC),
    ))


async def create(conn: Any, *, body: OrganizationCreate, principal: Principal) -> dict[str, Any]:
    require_writer(principal)
    organization_id = uuid.uuid4()
    domains = stored_domains(body.domains)
    values = await attributes.for_create(conn, scope=SCOPE, given=body.attributes)
    row = await repository.insert(conn, {
        "id": organization_id, "name": body.name, "name_key": fold_key(body.name), "domains": domains,
        "tier": body.tier, "attributes": values, "notes": body.notes,
    })
    if row is None:
        raise _name_taken(body.name)
    await _claim_domains(conn, organization_id, domains)
    await attributes.claim_uniques(conn, scope=SCOPE, owner_id=organization_id, values=values)
    await enqueue_raw(conn, outbox, _event(events.OrganizationCreated, row, principal=principal))
    return to_read(row)


async def get(conn: Any, *, organization_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get(conn, organization_id)
    if row is None:
        raise _not_found(organization_id)
    return to_read(row)


def changes_of(before: Any, values: dict[str, Any]) -> dict[str, Any]:
    """What an event says changed: before/after per field; notes only that they changed."""
    return {k: ({} if k == "notes" else {"before": before[k], "after": v})
            for k, v in values.items() if k != "name_key"}


async def update(conn: Any, *, organization_id: uuid.UUID, body: OrganizationUpdate, principal: Principal,
                 if_match: str | None) -> dict[str, Any]:
    require_writer(principal)
    row = await repository.get(conn, organization_id, lock=True)
    if row is None:
        raise _not_found(organization_id)
    concurrency.check_version(row["version"], if_match, what="organisation")
    sent = body.model_fields_set
    wanted: dict[str, Any] = {}
    if "name" in sent and body.name is not None:
        wanted["name"] = body.name
        wanted["name_key"] = fold_key(body.name)
    if "domains" in sent and body.domains is not None:
        wanted["domains"] = stored_domains(body.domains)
    if "tier" in sent:
        wanted["tier"] = body.tier
    if "notes" in sent:
        wanted["notes"] = body.notes
    if "attributes" in sent and body.attributes is not None:
        wanted["attributes"] = await attributes.for_update(conn, scope=SCOPE, current=row["attributes"],
                                                           patch=body.attributes)
    values = {k: v for k, v in wanted.items() if k == "name_key" or row[k] != (list(v) if k == "domains" else v)}
    if set(values) == {"name_key"}:
        values = {}
    if not values:
        return to_read(row)
    if "name_key" in values and await repository.name_taken(conn, values["name_key"], other_than=organization_id):
        raise _name_taken(values["name"])
    if "domains" in values:
        await _claim_domains(conn, organization_id, values["domains"])
    if "attributes" in values:
        await attributes.claim_uniques(conn, scope=SCOPE, owner_id=organization_id, values=values["attributes"])
    before = row
    row = await repository.update(conn, organization_id, values)
    await enqueue_raw(conn, outbox, _event(events.OrganizationUpdated, row, principal=principal,
                                           changes=changes_of(before, values)))
    return to_read(row)


async def delete(conn: Any, *, organization_id: uuid.UUID, principal: Principal, if_match: str | None) -> None:
    """Refused (409) while customers belong to it: moving them is a decision (to another
    organisation, or none), not a side effect of a delete."""
    require_writer(principal)
    row = await repository.get(conn, organization_id, lock=True)
    if row is None:
        raise _not_found(organization_id)
    concurrency.check_version(row["version"], if_match, what="organisation")
    if await repository.has_members(conn, organization_id):
        raise Problem(409, "organization-in-use", "Organisation has members",
                      "Customers belong to this organisation; move them first.")
    await attributes.release(conn, scope=SCOPE, owner_id=organization_id)
    await repository.delete(conn, organization_id)
    await enqueue_raw(conn, outbox, _event(events.OrganizationDeleted, row, principal=principal))


async def list_page(conn: Any, *, limit: int, cursor: str | None, name: str | None, domain: str | None,
                    tier: str | None) -> dict[str, Any]:
    rows = await repository.page(
        conn, limit=limit + 1, after=decode_cursor(cursor) if cursor else None,
        name_prefix=fold_key(name) if name is not None else None,
        domain=domain_key(domain) if domain is not None else None,
        tier=fold_key(tier) if tier is not None else None,
    )
    rows, next_cursor = page(rows, limit)
    return {"items": [to_read(r) for r in rows], "next_cursor": next_cursor}
