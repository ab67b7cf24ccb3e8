"""The migrated schema is what the table definitions say (no drift between models and history)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext


async def test_models_match_the_migrated_schema(db):
    async with db.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


def _diff(sync_conn):
    from sla_svc.calendars_api import models as _c  # noqa: F401
    from sla_svc.db import metadata
    from sla_svc.idempotency import models as _i  # noqa: F401
    from sla_svc.policies import models as _p  # noqa: F401
    from sla_svc.tickets import models as _t  # noqa: F401
    from sla_svc.timers import models as _tm  # noqa: F401

    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return compare_metadata(ctx, metadata)
