"""The migrated schema is what the table definitions say (no drift between models and history)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext


async def test_models_match_the_migrated_schema(db):
    async with db.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


def _diff(sync_conn):
    import importlib
    import pkgutil

    import kb_svc
    from kb_svc.db import metadata

    # every domain package's models register their tables (content, search, deflection, ...)
    for module in pkgutil.iter_modules(kb_svc.__path__):
        if module.ispkg and module.name != "migrations":
            try:
                importlib.import_module(f"kb_svc.{module.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"kb_svc.{module.name}.models":
                    raise

    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return compare_metadata(ctx, metadata)
