"""Customer rules: requester resolution (find by any identity, or create), the profile, search.

Service functions run on the caller's connection and never commit: the consumer (events) or
the endpoint (requests) owns the transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from helpdesk_common import concurrency, events
from helpdesk_common.identities import InvalidIdentity, identities_of, normalize, normalize_phone
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw, insert_from_params
from helpdesk_common.pagination import decode_cursor, page
from helpdesk_common.problems import Problem
from helpdesk_common.validation import fold_key

from ..attributes import service as attributes
from ..attributes.types import Invalid, parse_filter
from ..db import outbox
from ..identities import repository as identities
from ..identities.repository import Pair
from ..identities.rules import email_domain, strict_key
from ..organizations import repository as organizations
from ..organizations.domains import joinable
from ..pii import access
from ..pii.codec import codec
from ..ticket_facts import service as ticket_facts
from ..timeline import repository as timeline
from . import profile, repository, search
from .schemas import CustomerCreate, CustomerUpdate

log = logging.getLogger(__name__)

SOURCE = "customer-svc"
SCOPE = "customer"
#: who may change the profile beyond name and notes: the tier moves routing and SLA targets of
#: every open ticket, the organisation and owner decide who looks after the customer
WRITE_ROLES = ("admin", "supervisor")
#: what agents may change themselves (what they learn in a conversation)
AGENT_FIELDS = frozenset({"name", "notes"})
#: profile fields whose current values every customer.updated carries
PROFILE_FIELDS = ("organization_id", "account_owner_id", "language", "time_zone", "tags", "attributes")


class IdentityTakenConcurrently(Exception):
    """Another transaction claimed one of the identities first.

    Raised so the consumer's transaction rolls back; its retry then sees the committed owner
    and resolves to that customer instead of creating a second one.
    """


def pick_existing(identities: list[Pair], owners: dict[Pair, uuid.UUID]) -> uuid.UUID | None:
    """The owner of the highest-priority identity that has one (``identities`` are in priority order)."""
    for identity in identities:
        if identity in owners:
            return owners[identity]
    return None


def _identity(kind: str, value: str) -> events.Identity:
    return events.Identity(kind=kind, value=value)


def updated_event(row: Any, changes: dict[str, Any], *, actor: str | None) -> events.CustomerUpdated:
    """``customer.updated`` with the customer's current values (consumers keep the highest version)."""
    return events.CustomerUpdated(
        source=SOURCE, subject=str(row["id"]),
        data=events.CustomerUpdatedData(
            customer_id=row["id"], version=row["version"], name=row["name"], tier=row["tier"], changes=changes,
            actor=actor, updated_at=row["updated_at"],
            **{name: (list(row[name]) if name == "tags" else row[name]) for name in PROFILE_FIELDS},
        ),
    )


async def resolve_requester(
    conn: Any, *, ticket_id: uuid.UUID, requester: dict[str, Any], link: bool = True,
    emit: list[Any] | None = None, defer_new: list[repository.NewCustomer] | None = None,
) -> tuple[uuid.UUID, bool] | None:
    """Find or create the requester's customer; emits customer.* and customer.requester_resolved.
    ``link``: also give the projected ticket that customer (``ticket_facts.customer_resolved``);
    the ``ticket.created`` handler projects the ticket afterwards, with the customer, instead.
    ``emit``: the events are appended to it for the caller to write in its transaction (the
    handler's projection statement) instead of written here. ``defer_new``: a new customer is not
    written here either but appended to it (``repository.NewCustomer``, its ``customer.created``
    with it) for that statement to write; the caller then passes what it inserted to
    ``confirm_new``.

    Returns ``(customer_id, created)``, or None when the requester carries no identity at all
    (ticket-svc never sends one; there is nothing to resolve by). A new customer whose e-mail
    domain belongs to an organisation joins it (in the insert); an existing one without an
    organisation joins when a new address of such a domain is added.
    """
    # a deferred customer exists only once the caller's statement ran: nothing may be written
    # before it that names it (the resolution's events, a link)
    assert defer_new is None or (emit is not None and not link), "defer_new needs emit and link=False"
    found = identities_of(requester)
    if not found:
        log.warning("requester without identity, not resolved", extra={"ticket_id": str(ticket_id)})
        return None
    owners = await identities.owners_of(conn, found)
    existing = pick_existing(found, owners)
    emitted: list[Any] = []
    if existing is None and defer_new is not None:
        customer_id = uuid.uuid4()
        name = requester.get("name")
        created = events.CustomerCreated(
            source=SOURCE, subject=str(customer_id),
            # created_at is a placeholder: it and organization_id are the insert's (CREATED_FROM_ROW)
            data=events.CustomerCreatedData(
                customer_id=customer_id, name=name, created_at=datetime.now(UTC),
                identities=[_identity(k, v) for k, v in found],
            ),
        )
        defer_new.append(repository.NewCustomer(
            customer_id=customer_id, name=name, join_domain=joinable(email_domain(found)), identities=found,
            created=insert_from_params(created, data_from=repository.CREATED_FROM_ROW)))
    elif existing is None:
        customer_id = uuid.uuid4()
        name = requester.get("name")
        row, inserted = await repository.insert_with_identities(
            conn, customer_id=customer_id, name=name, join_domain=joinable(email_domain(found)), identities=found)
        if len(inserted) != len(found):
            raise IdentityTakenConcurrently(f"identities {set(found) - set(inserted)} were claimed concurrently")
        emitted.append(events.CustomerCreated(
            source=SOURCE, subject=str(customer_id),
            data=events.CustomerCreatedData(
                customer_id=customer_id, name=row["name"], created_at=row["created_at"],
                identities=[_identity(k, v) for k, v in found], organization_id=row["organization_id"],
            ),
        ))
    else:
        # the owner read above may be a customer being merged right now: follow it to its survivor
        customer_id = await repository.live_id(conn, existing) or existing
        unknown = [i for i in found if i not in owners]
        inserted = await identities.add_identities(conn, customer_id=customer_id, identities=unknown)
        if len(inserted) != len(unknown):
            raise IdentityTakenConcurrently(f"identities {set(unknown) - set(inserted)} were claimed concurrently")
        emitted += identity_added(customer_id, inserted)
        if inserted:  # rare: a known person writing from a new address or number
            emitted += await after_identities_added(conn, customer_id, inserted, actor="system:requester")
    created = existing is None
    if link:
        await ticket_facts.customer_resolved(conn, ticket_id=ticket_id, customer_id=customer_id)
    emitted.append(events.CustomerRequesterResolved(
        source=SOURCE,
        subject=str(ticket_id),  # keyed by the ticket: ordered with the ticket's own events
        data=events.CustomerRequesterResolvedData(ticket_id=ticket_id, customer_id=customer_id, created=created),
    ))
    if emit is not None:
        emit.extend(emitted)
    else:
        await enqueue_raw(conn, outbox, *emitted)
    return customer_id, created


def confirm_new(new: repository.NewCustomer, inserted: list[Pair]) -> None:
    """After the statement that wrote a deferred new customer: every identity must be its own,
    else another transaction claimed one first and this one must roll back (its retry resolves
    to that customer)."""
    if len(inserted) != len(new.identities):
        raise IdentityTakenConcurrently(f"identities {set(new.identities) - set(inserted)} were claimed concurrently")


def identity_added(customer_id: uuid.UUID, pairs: list[Pair]) -> list[events.CustomerIdentityAdded]:
    return [events.CustomerIdentityAdded(
        source=SOURCE, subject=str(customer_id),
        data=events.CustomerIdentityAddedData(customer_id=customer_id, identity=_identity(k, v)),
    ) for k, v in pairs]


async def after_identities_added(conn: Any, customer_id: uuid.UUID, pairs: list[Pair], *,
                                 actor: str) -> list[events.CustomerUpdated]:
    """New identities change the customer (its version moves); a new e-mail address of an
    organisation's domain makes a customer without organisation its member (``customer.updated``)."""
    row = await repository.touch_joining(conn, customer_id, join_domain=joinable(email_domain(pairs)))
    if row is None or row["organization_id"] == row["previous_organization_id"]:
        return []
    return [updated_event(row, {"organization_id": {"before": None, "after": row["organization_id"]}}, actor=actor)]


# --- reads --------------------------------------------------------------------------------------


def to_read(row: Any, identities_shown: list[dict[str, Any]]) -> dict[str, Any]:
    """A customer as the API shows it (``schemas.CustomerRead``), rendered straight by orjson; its
    identities as ``pii.access.shown`` rendered them for the caller (masked or not)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "tier": row["tier"],
        "organization_id": row["organization_id"],
        "account_owner_id": row["account_owner_id"],
        "language": row["language"],
        "time_zone": row["time_zone"],
        "tags": list(row["tags"]),
        "notes": row["notes"],
        "attributes": row["attributes"],
        "identities": identities_shown,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }


def _not_found(customer_id: uuid.UUID) -> Problem:
    return Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")


def merged_away(customer_id: uuid.UUID, survivor_id: uuid.UUID) -> Problem:
    """A merged customer is a tombstone: 410 naming the survivor rather than a redirect, so that a
    write meant for the merged record (a PATCH with its version, an identity) is never applied to
    another customer by a client that follows redirects (docs/customers.md, "Merge")."""
    return Problem(410, "customer-merged", "Customer merged",
                   f"Customer {customer_id} was merged into {survivor_id}.", survivor_id=str(survivor_id))


def live(row: Any, customer_id: uuid.UUID) -> Any:
    """The row of a customer that exists and was not merged away; 404 or 410 otherwise."""
    if row is None:
        raise _not_found(customer_id)
    if row["merged_into"] is not None:
        raise merged_away(customer_id, row["merged_into"])
    return row


async def read(conn: Any, row: Any, principal: Principal, *, route: str = "customers.read") -> dict[str, Any]:
    """One customer for ``principal``: identities masked or not, and audited (``pii.access``)."""
    found = await identities.identities_of(conn, [row["id"]])
    return to_read(row, (await access.shown(conn, principal, found, route=route))[row["id"]])


async def get_customer(conn: Any, *, customer_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    row = live(await repository.get_customer(conn, customer_id), customer_id)
    return await read(conn, row, principal)


def identity_filters(*, email: str | None, phone: str | None) -> list[Pair]:
    found = []
    if email is not None:
        found.append(("email", normalize("email", email)))
    if phone is not None:
        found.append(("phone", normalize("phone", phone)))
    return found


def identity_candidates(q: str) -> list[str]:
    """The keys ``q`` could be an identity under: as typed (platform and external ids), lower-cased
    (an e-mail address), E.164 (a phone number, when it reads as one)."""
    text = q.strip()
    found = [text, text.lower()]
    if any(c.isdigit() for c in text) and not any(c.isalpha() for c in text):
        try:
            found.append(normalize_phone(text, strict=True))
        except InvalidIdentity:
            pass
    return list(dict.fromkeys(v for v in found if v))


ATTRIBUTE_PREFIX = "attr."


async def attribute_filters(conn: Any, filters: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """``attr.<key>=<value>`` pairs as jsonb containments; 422 naming ``query.attr.<key>`` for a key
    no definition has or a value its type cannot take."""
    if not filters:
        return []
    defined = await attributes.definitions(conn, SCOPE)
    out, errors = [], []
    for key, text in filters:
        definition = defined.get(key)
        if definition is None:
            errors.append({"field": f"query.{ATTRIBUTE_PREFIX}{key}", "message": "unknown attribute",
                           "code": "not_found"})
            continue
        try:
            out.append({key: parse_filter(definition, text)})
        except Invalid as exc:
            errors.append({"field": f"query.{ATTRIBUTE_PREFIX}{key}", "message": exc.message, "code": "cross_field"})
    if errors:
        raise Problem(422, "validation-error", "Validation failed",
                      "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    return out


async def list_customers(
    conn: Any,
    *,
    principal: Principal,
    limit: int,
    cursor: str | None,
    email: str | None = None,
    phone: str | None = None,
    tier: str | None = None,
    q: str | None = None,
    organization_id: uuid.UUID | None = None,
    account_owner_id: uuid.UUID | None = None,
    tags: list[str] | None = None,
    attribute_pairs: list[tuple[str, str]] | None = None,
    segment: str | None = None,
    risk_band: str | None = None,
) -> dict[str, Any]:
    opaque = codec().search_query(q) if q is not None else None
    name_query = (opaque, search.tsquery(q)) if opaque is not None else None
    values = identity_candidates(q) if q is not None else None
    if q is not None and name_query is None and not values:
        return {"items": [], "next_cursor": None}
    rows = await repository.search(
        conn,
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
        identities=identity_filters(email=email, phone=phone),
        tier=fold_key(tier) if tier is not None else None,
        organization_id=organization_id,
        account_owner_id=account_owner_id,
        segment=segment,
        risk_band=risk_band,
        tags=profile.normalise_tags(tags) if tags else None,
        attributes=await attribute_filters(conn, attribute_pairs or []),
        name_query=name_query,
        identity_values=values,
    )
    rows, next_cursor = page(rows, limit)
    found = await access.shown(conn, principal, await identities.identities_of(conn, [r["id"] for r in rows]),
                               route="customers.list")
    return {"items": [to_read(r, found[r["id"]]) for r in rows], "next_cursor": next_cursor}


# --- writes -------------------------------------------------------------------------------------


def check_version(current: int, if_match: str | None) -> None:
    """Optimistic concurrency: the shared rule (``helpdesk_common.concurrency``), on the locked row."""
    concurrency.check_version(current, if_match, what="customer")


def forbidden_fields(sent: set[str], principal: Principal) -> list[str]:
    """The fields of a change the caller may not make (pure)."""
    if principal.has_role(*WRITE_ROLES):
        return []
    return sorted(f for f in sent if f not in AGENT_FIELDS)


def _forbid(fields: list[str]) -> Problem:
    return Problem(403, "forbidden", "Forbidden",
                   "Only supervisors and admins change a customer's " + ", ".join(fields) + ".")


async def check_organization(conn: Any, organization_id: uuid.UUID | None) -> None:
    if organization_id is not None and not await organizations.exists(conn, organization_id):
        raise Problem(422, "validation-error", "Validation failed", f"No organisation {organization_id}.",
                      errors=[{"field": "body.organization_id", "message": "no such organisation",
                               "code": "not_found"}])


def changes_of(before: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """What ``customer.updated`` says changed: before/after per field; notes only that they did
    (their text is not an event's to carry); the search vector not at all."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == "search":
            continue
        if name == "notes":
            out[name] = {}
        else:
            old = before[name]
            out[name] = {"before": list(old) if name == "tags" and old is not None else old, "after": value}
    return out


async def note_tier(conn: Any, row: Any, *, before: str | None, actor: str | None) -> None:
    """A tier change on the customer's timeline (by hand here; tier rules call it too), one entry
    per customer version."""
    await timeline.record(conn, entry=timeline.entry_id(f"{row['id']}:{row['version']}", "tier.changed"),
                          customer_id=row["id"], at=row["updated_at"], kind="tier.changed",
                          summary={"before": before, "after": row["tier"], "actor": actor})


async def update_customer(
    conn: Any, *, customer_id: uuid.UUID, update: CustomerUpdate, principal: Principal,
    if_match: str | None, answer: bool = True,
) -> dict[str, Any] | None:
    """Change a customer's profile; emits one ``customer.updated`` when something changed.

    ticket-svc keeps the tier on every open ticket of the customer (routing, SLA re-targeting),
    so a tier change here reaches live SLA timers without anyone touching the tickets.
    """
    sent = set(update.model_fields_set)
    denied = forbidden_fields(sent, principal)
    if denied:
        raise _forbid(denied)
    row = live(await repository.get_customer(conn, customer_id, lock=True), customer_id)
    check_version(row["version"], if_match)
    wanted: dict[str, Any] = {}
    for name in ("name", "tier", "organization_id", "account_owner_id", "language", "time_zone", "notes"):
        if name in sent:
            wanted[name] = getattr(update, name)
    if sent & {"tags", "add_tags", "remove_tags"}:
        try:
            wanted["tags"] = profile.apply_tags(list(row["tags"]), replace=update.tags,
                                                add=update.add_tags or (), remove=update.remove_tags or ())
        except ValueError as exc:
            raise Problem(422, "validation-error", "Validation failed", str(exc),
                          errors=[{"field": "body.tags", "message": str(exc), "code": "cross_field"}]) from None
    if "attributes" in sent and update.attributes is not None:
        wanted["attributes"] = await attributes.for_update(conn, scope=SCOPE, current=row["attributes"],
                                                           patch=update.attributes)
    values = {name: value for name, value in wanted.items()
              if (list(row[name]) if name == "tags" else row[name]) != value}
    if "organization_id" in values:
        await check_organization(conn, values["organization_id"])
    if "attributes" in values:
        await attributes.claim_uniques(conn, scope=SCOPE, owner_id=customer_id, values=values["attributes"])
    if values:
        before = row
        row = await repository.update_customer(conn, customer_id, values)
        await enqueue_raw(conn, outbox, updated_event(row, changes_of(before, values), actor=principal.ref))
        if "tier" in values:
            await note_tier(conn, row, before=before["tier"], actor=principal.ref)
    return await read(conn, row, principal) if answer else None


def strict_identities(given: list[Any]) -> list[Pair]:
    """(kind, key) of each identity a request names, distinct; 422 naming each bad one."""
    pairs, errors = [], []
    for index, identity in enumerate(given):
        try:
            pairs.append((identity.kind, strict_key(identity.kind, identity.value)))
        except InvalidIdentity as exc:
            errors.append({"field": f"body.identities.{index}.value", "message": str(exc), "code": "cross_field"})
    if errors:
        raise Problem(422, "validation-error", "Invalid identities",
                      "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    return list(dict.fromkeys(pairs))


def identity_taken(pairs: list[Pair], field: str) -> Problem:
    return Problem(409, "identity-taken", "Identity taken",
                   "Another customer has " + ", ".join(f"{k} {v}" for k, v in pairs)
                   + "; merge the customers instead.",
                   # the field errors name the kind only: an import keeps them as its row errors
                   errors=[{"field": field, "message": f"this {k} belongs to another customer", "code": "unique"}
                           for k, v in pairs])


async def create_customer(conn: Any, *, body: CustomerCreate, principal: Principal,
                          answer: bool = True) -> dict[str, Any] | None:
    """A customer entered by hand (or by an integration): identities checked strictly and unique,
    the organisation by ``organization_id`` or else the first e-mail's domain. Emits
    ``customer.created`` and, when the profile carries more than a name, ``customer.updated``
    with it (ticket-svc learns the tier from that event)."""
    if not principal.has_role(*WRITE_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins create customers.")
    pairs = strict_identities(body.identities)
    owners = await identities.owners_of(conn, pairs)
    if owners:
        raise identity_taken([p for p in pairs if p in owners], "body.identities")
    await check_organization(conn, body.organization_id)
    customer_id = uuid.uuid4()
    values = await attributes.for_create(conn, scope=SCOPE, given=body.attributes)
    tags = profile.normalise_tags(body.tags)
    row = await repository.insert_full(conn, {
        "id": customer_id, "name": body.name, "tier": body.tier,
        "organization_id": body.organization_id, "account_owner_id": body.account_owner_id,
        "language": body.language, "time_zone": body.time_zone, "tags": tags, "notes": body.notes,
        "attributes": values,
    }, join_domain=joinable(email_domain(pairs)))
    inserted = await identities.add_identities(conn, customer_id=customer_id, identities=pairs)
    if len(inserted) != len(pairs):
        raise identity_taken([p for p in pairs if p not in inserted], "body.identities")
    await attributes.claim_uniques(conn, scope=SCOPE, owner_id=customer_id, values=values)
    emitted: list[Any] = [events.CustomerCreated(
        source=SOURCE, subject=str(customer_id),
        data=events.CustomerCreatedData(customer_id=customer_id, name=row["name"], created_at=row["created_at"],
                                        identities=[_identity(k, v) for k, v in pairs],
                                        organization_id=row["organization_id"]),
    )]
    profile_values = {name: row[name] for name in ("tier", *PROFILE_FIELDS, "notes")
                      if row[name] not in (None, [], {})}
    if profile_values:
        blank = {name: None for name in profile_values}
        emitted.append(updated_event(row, changes_of(blank, profile_values), actor=principal.ref))
    await enqueue_raw(conn, outbox, *emitted)
    # ``answer=False``: nobody is shown the customer (an import's row), so nothing to render or audit
    return await read(conn, row, principal) if answer else None


async def lock_for_change(conn: Any, customer_id: uuid.UUID, *, if_match: str | None) -> Any:
    row = live(await repository.get_customer(conn, customer_id, lock=True), customer_id)
    check_version(row["version"], if_match)
    return row
