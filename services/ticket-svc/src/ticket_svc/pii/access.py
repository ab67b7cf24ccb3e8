"""Who sees a ticket's requester unmasked: customer-svc's rule (``helpdesk_common.pii_store.MaskPolicy``)
applied to the ticket at hand.

- a user whose role is in ``TICKET_PII_UNMASKED_ROLES`` (admin and supervisor by default) sees every
  requester unmasked;
- another user (an agent) sees the requester of a ticket that is assigned to them and not closed
  (``TICKET_PII_UNMASK_ASSIGNEE``), masked on every other ticket: the fact customer-svc reads from
  its projection of these same tickets, here read off the row itself (no query);
- channel keys (the bridge that brought the requester in) and visitors (only ever shown public
  views) are not users: the rule does not mask what they are shown.

Masked: the e-mail address, phone number, openid and external id (``helpdesk_common.identities.mask``:
``z***@example.com``, ``+86 138****5678``); the name is not (agents address the customer by name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from helpdesk_common.identities import mask
from helpdesk_common.identity import Principal
from helpdesk_common.pii_store import MaskPolicy

from . import audit

#: requester field -> the kind ``mask`` formats it as
MASKED_FIELDS = {"email": "email", "phone": "phone", "wechat_openid": "wechat_openid", "external_id": "external"}
DONE_STATUSES = frozenset({"closed"})

_policy: MaskPolicy | None = None


def configure(*, unmasked_roles: Iterable[str], assignee_sees: bool) -> MaskPolicy:
    global _policy
    _policy = MaskPolicy.of(unmasked_roles, assignee_sees)
    return _policy


def policy() -> MaskPolicy:
    if _policy is None:
        from ..config import get_settings

        settings = get_settings()
        return configure(unmasked_roles=settings.pii_unmasked_roles, assignee_sees=settings.pii_unmask_assignee)
    return _policy


def unmasked_for(principal: Principal | None, row: Mapping[str, Any]) -> bool:
    """True when ``principal`` may see the requester of ticket ``row`` as stored. ``None`` is
    ticket-svc itself (events, replies, the erasure), never a caller."""
    if principal is None or not principal.is_user:
        return True
    return reason_for(principal, row) is not None


def masked(requester: Mapping[str, Any]) -> dict[str, Any]:
    """The requester with every identity masked (pure)."""
    return {k: mask(MASKED_FIELDS[k], v) if k in MASKED_FIELDS and isinstance(v, str) and v else v
            for k, v in requester.items()}


def reason_for(principal: Principal, row: Mapping[str, Any]) -> str | None:
    """Why ``principal`` (a user) sees the requester of ``row`` unmasked (``role``, ``assignee``),
    or ``None`` when it does not: the audit's ``reason``."""
    rule = policy()
    if rule.by_role(principal):
        return audit.ROLE
    if rule.asks_tickets(principal) and row["assignee_id"] == principal.id and row["status"] not in DONE_STATUSES:
        return audit.ASSIGNEE
    return None


def shown(principal: Principal | None, row: Mapping[str, Any], requester: Mapping[str, Any]) -> dict[str, Any]:
    """The requester as ``principal`` may see it; a user shown it unmasked is noted for the
    request's audit row (``pii.audit``)."""
    if principal is None or not principal.is_user:
        return dict(requester)
    reason = reason_for(principal, row)
    if reason is None:
        return masked(requester)
    audit.note(principal, row["id"], audit.revealed_fields(requester, tuple(MASKED_FIELDS)), reason)
    return dict(requester)
