"""Migration 0002 creates what deliveries/models.py says, and downgrades cleanly."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from helpdesk_common.migrate import alembic_config

pytestmark = pytest.mark.timeout(120)


def _delivery_diff(sync_conn) -> list:
    from notify_svc.db import metadata
    from notify_svc.deliveries import models as _deliveries  # noqa: F401

    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})

    def ours(item) -> bool:  # other domains' tables have their own tests
        parts = item[0] if isinstance(item, list) else item
        for part in parts[1:]:
            table = getattr(part, "table", part)
            name = part if isinstance(part, str) else getattr(table, "name", None)
            if isinstance(name, str) and (name.startswith("deliver") or name == "delivery_attempts"):
                return True
        return False

    return [d for d in compare_metadata(ctx, metadata) if ours(d)]


async def test_models_match_the_migration(db, notify_db) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config("notify_svc", notify_db), "head")
    async with db.connect() as conn:
        assert await conn.run_sync(_delivery_diff) == []


async def test_downgrade_and_upgrade_again(db, notify_db) -> None:
    config = alembic_config("notify_svc", notify_db)
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "0001")
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('deliveries')")) is None
    await asyncio.to_thread(command.upgrade, config, "head")
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('delivery_attempts')")) is not None
