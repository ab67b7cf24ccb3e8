"""The only place with SQL for organisations (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

_COLUMNS = "id, name, domains, tier, attributes, notes, created_at, updated_at, version"
#: columns a write may set (names never come from requests)
UPDATABLE = ("name", "name_key", "domains", "tier", "attributes", "notes")


async def insert(conn: Any, values: dict[str, Any]) -> Any:
    """The new row, or None when the name (folded) is taken."""
    return await conn.fetchrow(
        "INSERT INTO organizations (id, name, name_key, domains, tier, attributes, notes) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name_key) DO NOTHING "
        f"RETURNING {_COLUMNS}",
        values["id"], values["name"], values["name_key"], values["domains"], values["tier"], values["attributes"],
        values["notes"],
    )


async def get(conn: Any, organization_id: uuid.UUID, *, lock: bool = False) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM organizations WHERE id = $1" + (" FOR UPDATE" if lock else ""),
                               organization_id)


async def exists(conn: Any, organization_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)", organization_id))


async def name_taken(conn: Any, name_key: str, *, other_than: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM organizations WHERE name_key = $1 AND id <> $2)",
                                    name_key, other_than))


async def update(conn: Any, organization_id: uuid.UUID, values: dict[str, Any]) -> Any:
    names = [n for n in UPDATABLE if n in values]
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    return await conn.fetchrow(
        f"UPDATE organizations SET {sets}, version = version + 1, updated_at = clock_timestamp() "
        f"WHERE id = $1 RETURNING {_COLUMNS}",
        organization_id, *(values[n] for n in names),
    )


async def delete(conn: Any, organization_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM organizations WHERE id = $1", organization_id)


async def has_members(conn: Any, organization_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM customers WHERE organization_id = $1)",
                                    organization_id))


async def claim_domains(conn: Any, organization_id: uuid.UUID, domains: list[str]) -> list[str]:
    """Make ``domains`` the organisation's; returns those another organisation holds (not taken)."""
    await conn.execute("DELETE FROM organization_domains WHERE organization_id = $1 AND domain <> ALL($2::text[])",
                       organization_id, domains)
    if not domains:
        return []
    await conn.execute(
        "INSERT INTO organization_domains (domain, organization_id) SELECT unnest($2::text[]), $1 "
        "ON CONFLICT (domain) DO NOTHING", organization_id, domains)
    rows = await conn.fetch(
        "SELECT domain FROM organization_domains WHERE domain = ANY($2::text[]) AND organization_id <> $1",
        organization_id, domains)
    return sorted(r["domain"] for r in rows)


async def by_domain(conn: Any, domain: str) -> uuid.UUID | None:
    return await conn.fetchval("SELECT organization_id FROM organization_domains WHERE domain = $1", domain)


async def page(conn: Any, *, limit: int, after: tuple[datetime, uuid.UUID] | None, name_prefix: str | None,
               domain: str | None, tier: str | None) -> list[Any]:
    """Newest first, keyset-paginated on (created_at, id); every filter must match."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = []
    if name_prefix is not None:
        escaped = name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(f"name_key LIKE {arg(escaped + '%')}")
    if domain is not None:
        where.append(f"id IN (SELECT organization_id FROM organization_domains WHERE domain = {arg(domain)})")
    if tier is not None:
        where.append(f"tier = {arg(tier)}")
    if after is not None:
        where.append(f"(created_at, id) < ({arg(after[0])}, {arg(after[1])})")
    sql = f"SELECT {_COLUMNS} FROM organizations" + (" WHERE " + " AND ".join(where) if where else "")
    return await conn.fetch(sql + f" ORDER BY created_at DESC, id DESC LIMIT {arg(limit)}", *args)


async def by_name_key(conn: Any, name_key: str) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM organizations WHERE name_key = $1", name_key)
