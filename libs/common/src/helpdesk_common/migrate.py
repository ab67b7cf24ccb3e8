"""Alembic helper: one migration history per service, stored inside the service package.

The history lives in ``<package>/migrations`` (not next to the pyproject) so that an
installed wheel or container image carries it; ``python -m helpdesk_common.migrate <package>``
is the migration step (a Kubernetes Job / init container, ``make migrate`` locally).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(package: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", f"{package}:migrations")
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    return cfg


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py (online, async)."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())


async def ensure_database(database_url: str) -> None:
    """Create the service's database if it is missing (embedded stack and tests)."""
    url = make_url(database_url)
    name = url.database
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


def upgrade(package: str, database_url: str) -> None:
    command.upgrade(alembic_config(package, database_url), "head")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a service's migrations to head.")
    parser.add_argument("package", help="service package, e.g. ticket_svc")
    parser.add_argument("--url", help="database URL (default: the service's settings)")
    parser.add_argument("--create-database", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    url = args.url or importlib.import_module(f"{args.package}.config").get_settings().database_url
    if args.create_database:
        asyncio.run(ensure_database(url))
    upgrade(args.package, url)


if __name__ == "__main__":
    main()
