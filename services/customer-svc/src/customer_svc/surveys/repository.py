"""The only place with SQL for surveys (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..pii.codec import codec

_SETTINGS = "csat_enabled, csat_delay_minutes, nps_enabled, nps_interval_days, version, updated_at"
COLUMNS = ("id, kind, customer_id, ticket_id, team_id, channel, language, status, send_at, sent_at, expires_at, "
           "answered_at, rating, score, comment, comment_enc, created_at")


async def settings(conn: Any, *, lock: bool = False) -> Any:
    return await conn.fetchrow(f"SELECT {_SETTINGS} FROM survey_settings WHERE id = 1" + (" FOR UPDATE" if lock else ""))


async def update_settings(conn: Any, values: dict[str, Any]) -> Any:
    return await conn.fetchrow(
        "UPDATE survey_settings SET csat_enabled = $1, csat_delay_minutes = $2, nps_enabled = $3, "
        "nps_interval_days = $4, version = version + 1, updated_at = clock_timestamp() WHERE id = 1 "
        f"RETURNING {_SETTINGS}",
        values["csat_enabled"], values["csat_delay_minutes"], values["nps_enabled"], values["nps_interval_days"])


async def ticket_facts(conn: Any, ticket_id: uuid.UUID) -> Any:
    """The ticket as customer-svc's projection knows it (customer, number, subject, team,
    language, channel), or None before the projection has it."""
    return await conn.fetchrow(
        "SELECT ticket_id, customer_id, number, subject, type, team_id, language, channel, merged_into "
        "FROM customer_tickets WHERE ticket_id = $1", ticket_id)


async def live_customer(conn: Any, customer_id: uuid.UUID) -> Any:
    """The customer a survey is for, following a merge to its survivor (one step: a survivor is
    never merged into its own victim); None when it does not exist."""
    return await conn.fetchrow(
        "SELECT c.id, c.language, c.restricted FROM customers c "
        "WHERE c.id = COALESCE((SELECT merged_into FROM customers WHERE id = $1), $1)", customer_id)


async def identities(conn: Any, customer_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = await conn.fetch("SELECT kind, value, value_enc FROM customer_identities WHERE customer_id = $1 "
                            "ORDER BY created_at, id", customer_id)
    box = codec()
    return [(r["kind"], box.identity_value(r)) for r in rows]


async def insert_csat(conn: Any, values: dict[str, Any]) -> Any:
    """The new survey, or None when the ticket has one already (``uq_surveys_csat_ticket``: a
    concurrent or repeated attempt waits for the first and then inserts nothing)."""
    return codec().survey(await conn.fetchrow(
        "INSERT INTO surveys (id, kind, customer_id, ticket_id, team_id, channel, language, status, send_at) "
        "VALUES ($1, 'csat', $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (ticket_id) WHERE kind = 'csat' DO NOTHING "
        f"RETURNING {COLUMNS}",
        values["id"], values["customer_id"], values["ticket_id"], values["team_id"], values["channel"],
        values["language"], values["status"], values["send_at"]))


async def lock_customer_nps(conn: Any, customer_id: uuid.UUID) -> None:
    """Serialise NPS scheduling per customer until the transaction ends: two tickets of one
    customer solved at once would otherwise both see no recent NPS survey and both insert one."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('survey-nps:' || $1, 0))", str(customer_id))


async def nps_since(conn: Any, customer_id: uuid.UUID, since: datetime) -> bool:
    """Whether the customer has an NPS survey created since ``since`` that was not skipped."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM surveys WHERE customer_id = $1 AND kind = 'nps' AND created_at >= $2 "
        "AND status <> 'skipped')", customer_id, since))


async def insert_nps(conn: Any, values: dict[str, Any]) -> Any:
    return codec().survey(await conn.fetchrow(
        "INSERT INTO surveys (id, kind, customer_id, ticket_id, team_id, channel, language, status, send_at) "
        f"VALUES ($1, 'nps', $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}",
        values["id"], values["customer_id"], values["ticket_id"], values["team_id"], values["channel"],
        values["language"], values["status"], values["send_at"]))


async def skip_scheduled_of_ticket(conn: Any, ticket_id: uuid.UUID) -> int:
    status = await conn.execute(
        "UPDATE surveys SET status = 'skipped' WHERE ticket_id = $1 AND status = 'scheduled'", ticket_id)
    return int(status.rsplit(" ", 1)[-1])


async def claim_due(conn: Any, *, limit: int) -> list[Any]:
    """Due surveys, locked for this transaction; a replica sending at the same time takes others
    (``SKIP LOCKED``), so no survey goes out twice."""
    box = codec()
    return [box.survey(r) for r in await conn.fetch(
        f"SELECT {COLUMNS} FROM surveys WHERE status = 'scheduled' AND send_at <= clock_timestamp() "
        "ORDER BY send_at LIMIT $1 FOR UPDATE SKIP LOCKED", limit)]


async def mark_sent(conn: Any, survey_id: uuid.UUID, *, customer_id: uuid.UUID, channel: str, sent_at: datetime,
                    expires_at: datetime) -> Any:
    return codec().survey(await conn.fetchrow(
        "UPDATE surveys SET status = 'sent', customer_id = $2, channel = $3, sent_at = $4, expires_at = $5 "
        f"WHERE id = $1 AND status = 'scheduled' RETURNING {COLUMNS}",
        survey_id, customer_id, channel, sent_at, expires_at))


async def mark_skipped(conn: Any, survey_id: uuid.UUID) -> None:
    await conn.execute("UPDATE surveys SET status = 'skipped' WHERE id = $1 AND status = 'scheduled'", survey_id)


async def get(conn: Any, survey_id: uuid.UUID) -> Any:
    return codec().survey(await conn.fetchrow(f"SELECT {COLUMNS} FROM surveys WHERE id = $1", survey_id))


async def answer(conn: Any, survey_id: uuid.UUID, *, rating: int | None, score: int | None,
                 comment: str | None) -> Any:
    """Record the answer once: only a sent, unexpired survey takes it, in this one statement, so
    two answers at once cannot both win. None when it was not (or no longer) answerable. The
    comment is stored encrypted only (``comment_enc``: pii/codec.py)."""
    box = codec()
    return box.survey(await conn.fetchrow(
        "UPDATE surveys SET status = 'answered', answered_at = clock_timestamp(), rating = $2, score = $3, "
        "comment = NULL, comment_enc = $4 WHERE id = $1 AND status = 'sent' AND expires_at > clock_timestamp() "
        f"RETURNING {COLUMNS}", survey_id, rating, score, box.seal_comment(comment)))


async def ticket_title(conn: Any, ticket_id: uuid.UUID | None) -> Any:
    if ticket_id is None:
        return None
    return await conn.fetchrow("SELECT number, subject FROM customer_tickets WHERE ticket_id = $1", ticket_id)


async def page(conn: Any, *, customer_id: uuid.UUID | None, kind: str | None, status: str | None,
               ticket_id: uuid.UUID | None, limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[Any]:
    """Newest first on (created_at, id); filters are parameters, never text from the request."""
    where, args = [], []
    for column, value in (("customer_id", customer_id), ("kind", kind), ("ticket_id", ticket_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if status == "sent":  # a sent survey whose link ran out reads as expired (service.survey_read)
        where.append("status = 'sent' AND expires_at > clock_timestamp()")
    elif status == "expired":
        where.append("(status = 'expired' OR (status = 'sent' AND expires_at <= clock_timestamp()))")
    elif status is not None:
        args.append(status)
        where.append(f"status = ${len(args)}")
    if after is not None:
        args += [after[0], after[1]]
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    box = codec()
    return [box.survey(r) for r in await conn.fetch(
        f"SELECT {COLUMNS} FROM surveys {clause} ORDER BY created_at DESC, id DESC LIMIT ${len(args)}", *args)]


async def customer_exists(conn: Any, customer_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)", customer_id))
