"""The migrated schema is what the table definitions say (no drift between models and history)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext


async def test_models_match_the_migrated_schema(db):
    async with db.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


def _diff(sync_conn):
    from analytics_svc.db import metadata
    from analytics_svc.kpis import models as _k  # noqa: F401
    from analytics_svc.readmodel import models as _r  # noqa: F401
    from analytics_svc.steps import models as _s  # noqa: F401

    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return compare_metadata(ctx, metadata)
