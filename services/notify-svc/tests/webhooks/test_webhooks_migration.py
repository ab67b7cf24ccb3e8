"""Migration 0003 creates what webhooks/models.py says, and downgrades cleanly."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from helpdesk_common.migrate import alembic_config

pytestmark = pytest.mark.timeout(120)


def _webhook_diff(sync_conn) -> list:
    from notify_svc.db import metadata
    from notify_svc.webhooks import models as _webhooks  # noqa: F401

    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})

    def ours(item) -> bool:  # other domains' tables have their own tests
        # ("add_table", Table), ("add_index", Index), ("add_column", schema, table name, Column),
        # or a list of ("modify_type", schema, table name, column name, ...) for column changes
        parts = item[0] if isinstance(item, list) else item
        for part in parts[1:]:
            table = getattr(part, "table", part)
            name = part if isinstance(part, str) else getattr(table, "name", None)
            if isinstance(name, str) and name.startswith("webhook_"):
                return True
        return False

    return [d for d in compare_metadata(ctx, metadata) if ours(d)]


async def test_models_match_the_migration(db) -> None:
    async with db.connect() as conn:
        assert await conn.run_sync(_webhook_diff) == []


async def test_downgrade_and_upgrade_again(db, notify_db) -> None:
    config = alembic_config("notify_svc", notify_db)
    await asyncio.to_thread(command.downgrade, config, "0002")
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('webhook_subscriptions')")) is None
    await asyncio.to_thread(command.upgrade, config, "head")
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('webhook_subscriptions')")) is not None
