"""Who sees a customer's identities unmasked, and the audit of every time someone did.

The one function every answer carrying identities goes through is ``shown``: customers (read,
list, search, create, change), the 360 view, identity changes, merges and splits, duplicate
suggestions. It decides per customer, masks what the caller may not see
(``helpdesk_common.identities.mask``: ``13*******78``, ``a***@example.com``) and writes one
``pii_access_log`` row per customer it showed unmasked (who, when, which identity kinds, why).

The rule (``CUSTOMER_PII_UNMASKED_ROLES``, ``CUSTOMER_PII_UNMASK_ASSIGNEE``):

- a user whose role is listed (admin and supervisor by default) sees every customer unmasked;
- any other user (an agent) sees a customer unmasked while one of the customer's tickets that
  is not closed is assigned to them (the ticket facts customer-svc keeps from ticket-svc's
  events: no call on the read path), masked otherwise;
- channel keys and visitors reach no customer route (403 before this).

Names and notes are not masked: an agent addresses the customer by name and writes the notes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from helpdesk_common.identities import mask
from helpdesk_common.identity import Principal
from helpdesk_common.observability import request_id_var
from helpdesk_common.pii_store import MaskPolicy

from . import repository

ROLE, ASSIGNEE = "role", "assignee"
PURPOSES = ("read", "export")


#: the rule is shared with ticket-svc (``helpdesk_common.pii_store.MaskPolicy``)
Policy = MaskPolicy


_policy: Policy | None = None


def configure(*, unmasked_roles: Iterable[str], assignee_sees: bool) -> Policy:
    global _policy
    _policy = MaskPolicy.of(unmasked_roles, assignee_sees)
    return _policy


def policy() -> Policy:
    if _policy is None:
        from ..config import get_settings

        settings = get_settings()
        return configure(unmasked_roles=settings.pii_unmasked_roles, assignee_sees=settings.pii_unmask_assignee)
    return _policy


def render(identity_rows: Iterable[Mapping[str, Any]], *, unmasked: bool) -> list[dict[str, Any]]:
    """Identities as the API shows them (pure): id, kind, and the value or its mask."""
    return [{"id": i["id"], "kind": i["kind"], "value": i["value"] if unmasked else mask(i["kind"], i["value"])}
            for i in identity_rows]


def fields_of(identity_rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The audit's ``fields``: the identity kinds shown, e.g. ``identities.email`` (pure)."""
    return sorted({f"identities.{i['kind']}" for i in identity_rows})


async def reasons(conn: Any, principal: Principal, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each customer the caller sees unmasked, with why (``role`` or ``assignee``)."""
    rule = policy()
    if rule.by_role(principal):
        return dict.fromkeys(customer_ids, ROLE)
    if rule.asks_tickets(principal) and customer_ids:
        return dict.fromkeys(await repository.worked_by(conn, principal.id, customer_ids), ASSIGNEE)
    return {}


@dataclass
class Shown:
    """What ``shown`` decided: the rendered identities per customer and the audit entries."""

    identities: dict[uuid.UUID, list[dict[str, Any]]]
    revealed: list[tuple[uuid.UUID, list[str], str]]


async def decide(conn: Any, principal: Principal,
                 by_customer: Mapping[uuid.UUID, list[Mapping[str, Any]]]) -> Shown:
    """Masking without writing the audit (for read-only transactions; ``record`` it after)."""
    why = await reasons(conn, principal, list(by_customer))
    rendered = {cid: render(rows, unmasked=cid in why) for cid, rows in by_customer.items()}
    revealed = [(cid, fields_of(rows), why[cid]) for cid, rows in by_customer.items() if cid in why and rows]
    return Shown(rendered, revealed)


async def record(conn: Any, principal: Principal, revealed: list[tuple[uuid.UUID, list[str], str]], *, route: str,
                 purpose: str = "read") -> None:
    """Write the audit rows of ``revealed`` (customer, fields, reason)."""
    await repository.record(conn, actor=principal.ref, actor_role=principal.role, entries=revealed, purpose=purpose,
                            route=route, request_id=request_id_var.get())


async def shown(conn: Any, principal: Principal, by_customer: Mapping[uuid.UUID, list[Mapping[str, Any]]], *,
                route: str, purpose: str = "read") -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The identities of each customer as ``principal`` may see them; unmasked ones audited."""
    result = await decide(conn, principal, by_customer)
    await record(conn, principal, result.revealed, route=route, purpose=purpose)
    return result.identities


async def exported(conn: Any, principal: Principal, customer_ids: list[uuid.UUID], *, fields: list[str],
                   route: str) -> None:
    """Audit an export of ``customer_ids`` (``purpose`` export): call it in the export's transaction."""
    await record(conn, principal, [(cid, fields, ROLE) for cid in customer_ids], route=route, purpose="export")
