"""Zendesk's integer ids for our UUIDs (``zendesk_ids``, migration 0008).

Zendesk clients keep ids as integers (zenpy types them so, scripts store them), so every id this
surface shows is one: a ticket's is its number; a customer's, an agent's, a team's and a
comment's come from one sequence here, given the first time the surface shows them and kept.
Reads look up before they insert, so showing an id twice does not spend the sequence."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import zendesk_ids

CUSTOMER, USER, TEAM, COMMENT, IDENTITY, ORGANIZATION, FIELD = (
    "customer", "user", "team", "comment", "identity", "organization", "field")
#: the kinds a Zendesk "user" id may name: end users are our customers, agents our users
PEOPLE = (CUSTOMER, USER)

Pair = tuple[str, str]


async def _known(conn: AsyncConnection, pairs: list[Pair]) -> dict[Pair, int]:
    rows = await conn.execute(select(zendesk_ids.c.id, zendesk_ids.c.kind, zendesk_ids.c.native)
                              .where(tuple_(zendesk_ids.c.kind, zendesk_ids.c.native).in_(pairs)))
    return {(row.kind, row.native): row.id for row in rows}


async def ids_for(conn: AsyncConnection, pairs: Iterable[Pair]) -> dict[Pair, int]:
    """The integer id of each (kind, native id), given now to those that have none."""
    wanted = sorted({(kind, str(native)) for kind, native in pairs})
    if not wanted:
        return {}
    known = await _known(conn, wanted)
    missing = [pair for pair in wanted if pair not in known]
    if missing:
        await conn.execute(insert(zendesk_ids).values([{"kind": k, "native": n} for k, n in missing])
                           .on_conflict_do_nothing(constraint="uq_zendesk_ids_kind_native"))
        known.update(await _known(conn, missing))  # (a concurrent request may have given some)
    return known


async def native_of(conn: AsyncConnection, zendesk_id: int, kinds: Iterable[str]) -> Pair | None:
    """What an id a client sent names, when it is of one of ``kinds``; None otherwise."""
    row = (await conn.execute(select(zendesk_ids.c.kind, zendesk_ids.c.native)
                              .where(zendesk_ids.c.id == zendesk_id, zendesk_ids.c.kind.in_(list(kinds))))).first()
    return None if row is None else (row.kind, row.native)
