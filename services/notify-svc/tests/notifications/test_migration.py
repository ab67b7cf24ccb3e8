"""Migration 0004 creates what notifications/models.py says, seeds the rules, and downgrades cleanly."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from helpdesk_common.migrate import alembic_config
from notify_svc.notifications.catalogue import KEYS

pytestmark = pytest.mark.timeout(120)


def _notification_diff(sync_conn) -> list:
    from notify_svc.db import metadata
    from notify_svc.notifications import models as _notifications  # noqa: F401

    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})

    def ours(item) -> bool:  # other domains' tables have their own tests
        parts = item[0] if isinstance(item, list) else item
        for part in parts[1:]:
            table = getattr(part, "table", part)
            name = part if isinstance(part, str) else getattr(table, "name", None)
            if isinstance(name, str) and name.startswith("notification_"):
                return True
        return False

    return [d for d in compare_metadata(ctx, metadata) if ours(d)]


async def test_models_match_the_migration_and_every_key_has_a_rule(db) -> None:
    async with db.connect() as conn:
        assert await conn.run_sync(_notification_diff) == []
        seeded = (await conn.execute(text("SELECT key, enabled, recipients FROM notification_rules ORDER BY key"))).all()
    assert {r.key: (r.enabled, tuple(r.recipients)) for r in seeded} == {
        k.key: (k.default_enabled, k.default_recipients) for k in KEYS.values()}


async def test_downgrade_and_upgrade_again(db, notify_db) -> None:
    config = alembic_config("notify_svc", notify_db)
    await asyncio.to_thread(command.downgrade, config, "0003")
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('notification_rules')")) is None
    await asyncio.to_thread(command.upgrade, config, "head")
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM notification_rules")) == len(KEYS)
