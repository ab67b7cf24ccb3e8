"""Consumers of the gateway's ``users.events`` (routing/users.py). They run on the bare asyncpg
connection of a raw consumer, and in the gateway's synchronous ``PUT /internal/users/{id}``."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import users


async def handle_user(conn: Any, event: events.UserCreated | events.UserUpdated) -> None:
    d = event.data
    await users.apply_user(conn, user_id=str(d.user_id), display_name=d.display_name, role=d.role, active=d.active,
                           version=d.version)


USER_HANDLERS = {
    "user.created": handle_user,
    "user.updated": handle_user,
}
