"""Users as the other services see them.

- **Events.** Creating a user, and every change of a user's name, role or state (deactivation,
  re-activation), is a ``user.created`` / ``user.updated`` event on ``users.events``, written to
  the gateway's outbox in the transaction of the change (endpoints, the dev bootstrap, and
  migration 0004 for the users that existed before). An event carries the user's current state
  and ``users.version`` (bumped by each such change) and the sign-in address (for notify-svc,
  which e-mails agents their notifications), never a credential; a password change is no event.
  ticket-svc keeps its user projection and the agent profiles from them (docs/ARCHITECTURE.md,
  "Identity and authorization").
- **Provisioning** (``Provisioner``). The admin who creates a user waits for the agent profile:
  after the commit the gateway sends the same event to ticket-svc (``PUT /internal/users/{id}``,
  with the admin's signed identity; ticket-svc runs its consumer's handler on it), so the SPA's
  next ``PUT /v1/agents/{id}`` cannot race the broker. The outbox event is the guarantee and
  the call only makes it immediate: when ticket-svc does not answer in time the user is created
  anyway, the answer says ``"agent_profile": "pending"``, and the event provisions the profile
  when ticket-svc consumes it. Changes (rename, role, deactivation) go the same way, so a
  deactivation takes the agent out of routing before the admin's request is answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from prometheus_client import Counter

from helpdesk_common import events
from helpdesk_common.identity import IDENTITY_HEADER, IdentitySigner, Principal
from helpdesk_common.observability import request_id_var

from ..proxy.upstreams import base_url

log = logging.getLogger(__name__)

SOURCE = "gateway"
#: users column -> event field: the changes other services hear of (a new version each)
ANNOUNCED = {"name": "display_name", "role": "role", "active": "active"}

PROVISIONING = Counter("gateway_user_provisioning_total",
                       "Synchronous agent-profile provisioning calls to ticket-svc, by outcome", ["outcome"])


def _data(row: Any, actor: str) -> dict[str, Any]:
    # the address is for notify-svc only (agents' notifications: helpdesk_common.events.UserData);
    # rows read without it (the backfill of migration 0004) announce none
    return {"user_id": row.id, "version": row.version, "display_name": row.name, "role": row.role,
            "active": row.active, "actor": actor, "email": getattr(row, "email", None)}


def user_created(row: Any, *, actor: str) -> events.UserCreated:
    return events.UserCreated(source=SOURCE, subject=str(row.id), data=events.UserCreatedData(**_data(row, actor)))


def announced_changes(before: Any, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The event's ``changes`` for applying ``values`` to ``before`` (empty: nothing to announce)."""
    return {field: {"before": getattr(before, column), "after": values[column]}
            for column, field in ANNOUNCED.items()
            if column in values and values[column] != getattr(before, column)}


def user_updated(after: Any, changes: dict[str, dict[str, Any]], *, actor: str) -> events.UserUpdated:
    return events.UserUpdated(source=SOURCE, subject=str(after.id),
                              data=events.UserUpdatedData(**_data(after, actor), changes=changes))


class Provisioner:
    """Sends a user event to ticket-svc right away; never fails the change it follows."""

    def __init__(self, *, ticket_url: str, signer: IdentitySigner, session: Callable[[], aiohttp.ClientSession],
                 timeout_s: float) -> None:
        self._ticket_url = ticket_url  # one or more replicas (proxy/upstreams.py)
        self._signer = signer
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def provision(self, event: events.UserCreated | events.UserUpdated, caller: Principal) -> bool:
        """True when ticket-svc applied it (the agent profile is as the event says)."""
        headers = {IDENTITY_HEADER: self._signer.token_for(caller), "content-type": "application/json"}
        rid = request_id_var.get()
        if rid:
            headers["x-request-id"] = rid
        try:
            async with self._session().put(base_url(self._ticket_url) + "/internal/users/" + event.subject, data=events.encode(event), headers=headers,
                                           timeout=self._timeout) as response:
                await response.read()
                if response.status == 200:
                    PROVISIONING.labels("ok").inc()
                    return True
                outcome, detail = "refused", f"HTTP {response.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            outcome, detail = "unavailable", repr(exc)
        PROVISIONING.labels(outcome).inc()
        log.warning("agent profile not provisioned now; the user event will provision it",
                    extra={"user_id": event.subject, "event_type": event.type, "error": detail})
        return False
