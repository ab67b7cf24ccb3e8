"""Async SQLAlchemy engine plumbing.

Hot paths use SQLAlchemy Core on an ``AsyncConnection`` (one transaction per request,
committed at the boundary); the ORM is left for places where its convenience is worth it.
"""

from __future__ import annotations

import orjson
from sqlalchemy import MetaData, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(url: str, *, pool_size: int = 20, max_overflow: int = 0, pool_timeout: float = 10.0) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args={"server_settings": {"timezone": "UTC"}},
    )


async def _init_raw_connection(conn) -> None:  # type: ignore[no-untyped-def]
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, format="text"
        )


async def create_raw_pool(url: str, *, size: int, server_settings: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """An asyncpg pool on the same database as the engine (jsonb as Python values);
    ``server_settings`` adds session settings (e.g. a read-model rebuild's ``search_path``)."""
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.create_pool(
        dsn, min_size=size, max_size=size, init=_init_raw_connection,
        server_settings={"timezone": "UTC", **(server_settings or {})},
    )
