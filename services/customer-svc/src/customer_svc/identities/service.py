"""Adding and removing a customer's identities by hand (supervisors and admins).

An identity is unique across customers: one that belongs to someone else is a 409 (merging the
two customers is the way to bring them together). A customer keeps at least one identity, so
every customer can be found again by the next message of the person and reached on a channel.
"""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common import events
from helpdesk_common.identities import InvalidIdentity
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.problems import Problem

from ..customers import service as customers
from ..db import outbox
from . import repository
from .rules import strict_key

WRITE_ROLES = ("admin", "supervisor")


def require_writer(principal: Principal) -> None:
    if not principal.has_role(*WRITE_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins change a customer's identities.")


def checked(kind: str, value: str) -> tuple[str, str]:
    try:
        return kind, strict_key(kind, value)
    except InvalidIdentity as exc:
        raise Problem(422, "validation-error", "Invalid identity", f"body.value: {exc}",
                      errors=[{"field": "body.value", "message": str(exc), "code": "cross_field"}]) from None


async def add(conn: Any, *, customer_id: uuid.UUID, kind: str, value: str, principal: Principal,
              if_match: str | None, answer: bool = True) -> tuple[dict[str, Any] | None, bool]:
    """The customer with the identity (None when not ``answer``: an import's row, shown to nobody),
    and whether it was added now (False: it had it already)."""
    require_writer(principal)
    pair = checked(kind, value)
    await customers.lock_for_change(conn, customer_id, if_match=if_match)
    owner = (await repository.owners_of(conn, [pair])).get(pair)
    if owner == customer_id:
        return (await customers.get_customer(conn, customer_id=customer_id, principal=principal) if answer
                else None), False
    if owner is not None or not await repository.add_identities(conn, customer_id=customer_id, identities=[pair]):
        raise customers.identity_taken([pair], "body.value")
    emitted: list[Any] = customers.identity_added(customer_id, [pair])
    emitted += await customers.after_identities_added(conn, customer_id, [pair], actor=principal.ref)
    await enqueue_raw(conn, outbox, *emitted)
    return (await customers.get_customer(conn, customer_id=customer_id, principal=principal) if answer
            else None), True


async def remove(conn: Any, *, customer_id: uuid.UUID, identity_id: uuid.UUID, principal: Principal,
                 if_match: str | None) -> dict[str, Any]:
    require_writer(principal)
    await customers.lock_for_change(conn, customer_id, if_match=if_match)
    held = {i["id"] for i in (await repository.identities_of(conn, [customer_id]))[customer_id]}
    if identity_id not in held:
        raise Problem(404, "not-found", "Identity not found", f"Customer {customer_id} has no identity {identity_id}.")
    if len(held) == 1:
        raise Problem(409, "last-identity", "Last identity",
                      "A customer keeps at least one identity; add another one first.")
    row = await repository.delete_identity(conn, customer_id=customer_id, identity_id=identity_id)
    await customers.repository.update_customer(conn, customer_id, {})
    await enqueue_raw(conn, outbox, events.CustomerIdentityRemoved(
        source=customers.SOURCE, subject=str(customer_id),
        data=events.CustomerIdentityRemovedData(customer_id=customer_id, actor=principal.ref,
                                                identity=events.Identity(kind=row["kind"], value=row["value"])),
    ))
    return await customers.get_customer(conn, customer_id=customer_id, principal=principal)
