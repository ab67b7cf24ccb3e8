"""The only place with SQL for notifications (asyncpg: the API, the consumer and the deliveries
module share the service's raw pool)."""

from __future__ import annotations

import uuid
from typing import Any

# ---- rules ------------------------------------------------------------------------------------

_RULE = "key, enabled, recipients, user_ids, agent_channel, version, updated_by, updated_at"


async def rules(conn: Any) -> list[Any]:
    return list(await conn.fetch(f"SELECT {_RULE} FROM notification_rules ORDER BY key"))


async def rule(conn: Any, key: str, *, for_update: bool = False) -> Any:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {_RULE} FROM notification_rules WHERE key = $1{lock}", key)


def _rule_with_teams_sql(key: str) -> str:
    return (
        f"SELECT {_RULE}, "
        "ARRAY(SELECT t.team_id FROM notification_rule_teams t WHERE t.rule_key = r.key ORDER BY t.team_id) "
        "AS team_ids, "
        "ARRAY(SELECT t.enabled FROM notification_rule_teams t WHERE t.rule_key = r.key ORDER BY t.team_id) "
        "AS team_enabled, "
        "COALESCE((SELECT jsonb_agg(jsonb_build_object('language', m.language, 'subject', m.subject, "
        "'body_text', m.body_text, 'body_html', m.body_html)) FROM notification_templates m WHERE m.key = r.key), "
        f"'[]'::jsonb) AS templates FROM notification_rules r WHERE r.key = {key}")


async def rule_with_teams(conn: Any, key: str) -> Any:
    """The rule with its team overrides (``team_ids``, ``team_enabled``: parallel arrays) and
    every stored language of its template (``templates``: a list of objects with ``language``,
    ``subject``, ``body_text``, ``body_html``; empty when only the built-ins exist), one round
    trip: what the consumer reads for every event it notifies about (``insert_ticket`` reads it
    with the ticket for ``ticket.created``)."""
    return await conn.fetchrow(_rule_with_teams_sql("$1"), key)


async def update_rule(conn: Any, key: str, *, enabled: bool, recipients: list[str], user_ids: list[str],
                      agent_channel: str, updated_by: str) -> Any:
    return await conn.fetchrow(
        f"UPDATE notification_rules SET enabled = $2, recipients = $3, user_ids = $4, agent_channel = $5, "
        f"updated_by = $6, version = version + 1, updated_at = now() WHERE key = $1 RETURNING {_RULE}",
        key, enabled, recipients, user_ids, agent_channel, updated_by)


async def team_overrides(conn: Any, key: str | None = None) -> list[Any]:
    where = "WHERE rule_key = $1 " if key else ""
    args = (key,) if key else ()
    return list(await conn.fetch(
        f"SELECT rule_key, team_id, brand, enabled, updated_by, updated_at FROM notification_rule_teams {where}"
        f"ORDER BY rule_key, team_id", *args))


async def put_team_override(conn: Any, key: str, team_id: uuid.UUID, *, enabled: bool, updated_by: str) -> Any:
    return await conn.fetchrow(
        "INSERT INTO notification_rule_teams (rule_key, team_id, enabled, updated_by) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (rule_key, team_id) DO UPDATE SET enabled = EXCLUDED.enabled, updated_by = EXCLUDED.updated_by, "
        "updated_at = now() RETURNING rule_key, team_id, brand, enabled, updated_by, updated_at",
        key, team_id, enabled, updated_by)


async def delete_team_override(conn: Any, key: str, team_id: uuid.UUID) -> bool:
    return await conn.fetchval(
        "DELETE FROM notification_rule_teams WHERE rule_key = $1 AND team_id = $2 RETURNING true", key, team_id) is True


async def bump_rule(conn: Any, key: str) -> None:
    """A team override is part of its rule: changing one is a new version of the rule."""
    await conn.execute("UPDATE notification_rules SET version = version + 1, updated_at = now() WHERE key = $1", key)


# ---- templates ----------------------------------------------------------------------------------

_TEMPLATE = "key, language, subject, body_text, body_html, version, updated_by, created_at, updated_at"


async def templates(conn: Any) -> list[Any]:
    return list(await conn.fetch(f"SELECT {_TEMPLATE} FROM notification_templates ORDER BY key, language"))


async def template(conn: Any, key: str, language: str, *, for_update: bool = False) -> Any:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {_TEMPLATE} FROM notification_templates WHERE key = $1 AND language = $2{lock}", key, language)


async def insert_template(conn: Any, *, key: str, language: str, subject: str, body_text: str, body_html: str,
                          updated_by: str) -> Any:
    """None when a concurrent first save won (the caller answers 412)."""
    return await conn.fetchrow(
        f"INSERT INTO notification_templates (key, language, subject, body_text, body_html, updated_by) "
        f"VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING {_TEMPLATE}",
        key, language, subject, body_text, body_html, updated_by)


async def update_template(conn: Any, *, key: str, language: str, subject: str, body_text: str, body_html: str,
                          updated_by: str) -> Any:
    return await conn.fetchrow(
        f"UPDATE notification_templates SET subject = $3, body_text = $4, body_html = $5, updated_by = $6, "
        f"version = version + 1, updated_at = now() WHERE key = $1 AND language = $2 RETURNING {_TEMPLATE}",
        key, language, subject, body_text, body_html, updated_by)


async def delete_template(conn: Any, key: str, language: str) -> None:
    await conn.execute("DELETE FROM notification_templates WHERE key = $1 AND language = $2", key, language)


# ---- opt-outs and contacts --------------------------------------------------------------------------

_OPT_OUT = "kind, value, opted_out, version, updated_by, updated_at"


async def opt_out(conn: Any, kind: str, value: str, *, for_update: bool = False) -> Any:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {_OPT_OUT} FROM notification_opt_outs WHERE kind = $1 AND value = $2{lock}", kind, value)


async def put_opt_out(conn: Any, kind: str, value: str, *, opted_out: bool, updated_by: str) -> Any:
    return await conn.fetchrow(
        f"INSERT INTO notification_opt_outs (kind, value, opted_out, updated_by) VALUES ($1, $2, $3, $4) "
        f"ON CONFLICT (kind, value) DO UPDATE SET opted_out = EXCLUDED.opted_out, updated_by = EXCLUDED.updated_by, "
        f"version = notification_opt_outs.version + 1, updated_at = now() RETURNING {_OPT_OUT}",
        kind, value, opted_out, updated_by)


_OPTED_OUT = ("SELECT kind FROM notification_opt_outs WHERE opted_out AND ((kind = 'customer' AND value = {customer}) "
              "OR (kind = 'email' AND value = {email})) ORDER BY kind LIMIT 1")


async def is_opted_out(conn: Any, *, customer_id: uuid.UUID | None, email: str | None) -> str | None:
    """Which opt-out applies (``customer`` or ``email``), or None. Either one is enough."""
    return await conn.fetchval(_OPTED_OUT.format(customer="$1", email="$2"),
                               str(customer_id) if customer_id else None, email.lower() if email else None)


_CONTACT = "user_id, wecom_userid, dingtalk_userid, version, updated_by, updated_at"


async def contact(conn: Any, user_id: uuid.UUID, *, for_update: bool = False) -> Any:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {_CONTACT} FROM notification_contacts WHERE user_id = $1{lock}", user_id)


async def put_contact(conn: Any, user_id: uuid.UUID, *, wecom_userid: str | None, dingtalk_userid: str | None,
                      updated_by: str) -> Any:
    return await conn.fetchrow(
        f"INSERT INTO notification_contacts (user_id, wecom_userid, dingtalk_userid, updated_by) "
        f"VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET wecom_userid = EXCLUDED.wecom_userid, "
        f"dingtalk_userid = EXCLUDED.dingtalk_userid, updated_by = EXCLUDED.updated_by, "
        f"version = notification_contacts.version + 1, updated_at = now() RETURNING {_CONTACT}",
        user_id, wecom_userid, dingtalk_userid, updated_by)


# ---- projections ------------------------------------------------------------------------------------

async def upsert_user(conn: Any, *, user_id: uuid.UUID, version: int, name: str | None, role: str, active: bool,
                      email: str | None) -> None:
    """Keep the highest version. An event without ``email`` (from a gateway older than the field)
    keeps the address already known; an event of the version we have fills a missing address and
    changes nothing else (the gateway's migration 0005 re-announces existing users so)."""
    await conn.execute(
        "INSERT INTO notification_users (user_id, version, name, role, active, email) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (user_id) DO UPDATE SET "
        "name = CASE WHEN notification_users.version < EXCLUDED.version THEN EXCLUDED.name ELSE notification_users.name END, "
        "role = CASE WHEN notification_users.version < EXCLUDED.version THEN EXCLUDED.role ELSE notification_users.role END, "
        "active = CASE WHEN notification_users.version < EXCLUDED.version THEN EXCLUDED.active "
        "ELSE notification_users.active END, "
        "email = COALESCE(EXCLUDED.email, notification_users.email), "
        "version = GREATEST(EXCLUDED.version, notification_users.version), updated_at = now() "
        "WHERE notification_users.version < EXCLUDED.version "
        "OR (notification_users.version = EXCLUDED.version AND notification_users.email IS NULL "
        "AND EXCLUDED.email IS NOT NULL)",
        user_id, version, name, role, active, email)


async def users_with_contacts(conn: Any, user_ids: list[uuid.UUID]) -> list[Any]:
    return list(await conn.fetch(
        "SELECT u.user_id, u.name, u.role, u.active, u.email, c.wecom_userid, c.dingtalk_userid "
        "FROM notification_users u LEFT JOIN notification_contacts c USING (user_id) WHERE u.user_id = ANY($1)",
        user_ids))


async def active_supervisors(conn: Any) -> list[uuid.UUID]:
    return [r["user_id"] for r in await conn.fetch(
        "SELECT user_id FROM notification_users WHERE role = 'supervisor' AND active ORDER BY user_id LIMIT 200")]


async def insert_ticket(conn: Any, *, ticket_id: uuid.UUID, number: int | None, subject: str, status: str,
                        priority: str, channel: str | None, language: str | None, requester: dict[str, Any],
                        customer_id: uuid.UUID | None, team_id: uuid.UUID | None, assignee_id: str | None,
                        created_by: str, rule_key: str | None = None) -> Any:
    """The creation fills everything; a later event that arrived first (a replay, another
    partition) has only set what it knew, which the creation does not overwrite. Returns the
    row as ``ticket`` reads it (the consumer notifies from it without reading it again), with
    ``opted_out_by``: ``is_opted_out`` of its customer and requester, in the same round trip;
    with ``rule_key``, the columns of ``rule_with_teams`` for that key too (all None when there
    is no such rule: a round trip fewer for the notification the creation triggers)."""
    email = requester.get("email")
    sql = (
        "INSERT INTO notification_tickets (ticket_id, number, subject, status, priority, channel, language, requester, "
        "customer_id, team_id, assignee_id, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
        "ON CONFLICT (ticket_id) DO UPDATE SET number = COALESCE(notification_tickets.number, EXCLUDED.number), "
        "subject = COALESCE(notification_tickets.subject, EXCLUDED.subject), channel = EXCLUDED.channel, "
        "language = COALESCE(notification_tickets.language, EXCLUDED.language), requester = EXCLUDED.requester, "
        "customer_id = COALESCE(notification_tickets.customer_id, EXCLUDED.customer_id), "
        f"created_by = EXCLUDED.created_by, updated_at = now() RETURNING {_TICKET}, "
        f"({_OPTED_OUT.format(customer='notification_tickets.customer_id::text', email='$13')}) AS opted_out_by")
    args = [ticket_id, number, subject, status, priority, channel, language, requester, customer_id, team_id,
            assignee_id, created_by, email.lower() if email else None]
    if rule_key is not None:
        # no column name in both halves (a test checks _TICKET against _RULE's)
        sql = (f"WITH projected AS ({sql}) SELECT projected.*, rule.* FROM projected "
               f"LEFT JOIN LATERAL ({_rule_with_teams_sql('$14')}) rule ON true")
        args.append(rule_key)
    return await conn.fetchrow(sql, *args)


async def update_ticket_ref(conn: Any, *, ticket_id: uuid.UUID, version: int | None, number: int | None,
                            status: str | None, priority: str | None, team_id: uuid.UUID | None,
                            assignee_id: str | None, subject: str | None = None, language: str | None = None,
                            set_team: bool = True) -> None:
    """The facts every ticket event carries; an event older than the stored version changes
    nothing (events of one ticket are ordered on their partition; this guards replays)."""
    await conn.execute(
        "INSERT INTO notification_tickets (ticket_id, number, status, priority, team_id, assignee_id, version, subject, "
        "language) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (ticket_id) DO UPDATE SET number = COALESCE(EXCLUDED.number, notification_tickets.number), "
        "status = COALESCE(EXCLUDED.status, notification_tickets.status), "
        "priority = COALESCE(EXCLUDED.priority, notification_tickets.priority), "
        "team_id = CASE WHEN $10 THEN EXCLUDED.team_id ELSE notification_tickets.team_id END, "
        "assignee_id = CASE WHEN $10 THEN EXCLUDED.assignee_id ELSE notification_tickets.assignee_id END, "
        "version = COALESCE(EXCLUDED.version, notification_tickets.version), "
        "subject = COALESCE(EXCLUDED.subject, notification_tickets.subject), "
        "language = COALESCE(EXCLUDED.language, notification_tickets.language), updated_at = now() "
        "WHERE notification_tickets.version IS NULL OR EXCLUDED.version IS NULL "
        "OR notification_tickets.version <= EXCLUDED.version",
        ticket_id, number, status, priority, team_id, assignee_id, version, subject, language, set_team)


async def link_customer(conn: Any, ticket_id: uuid.UUID, customer_id: uuid.UUID) -> bool:
    """Link the ticket to its customer; whether that customer is restricted (privacy/), in the
    same round trip."""
    return bool(await conn.fetchval(
        "WITH linked AS (INSERT INTO notification_tickets (ticket_id, customer_id) VALUES ($1, $2) "
        "ON CONFLICT (ticket_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, updated_at = now()) "
        "SELECT EXISTS (SELECT 1 FROM restricted_customers WHERE customer_id = $2)",
        ticket_id, customer_id))


_TICKET = ("ticket_id, number, subject, status, priority, channel, language, requester, customer_id, team_id, "
           "assignee_id, created_by")


async def ticket(conn: Any, ticket_id: uuid.UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_TICKET} FROM notification_tickets WHERE ticket_id = $1", ticket_id)


# ---- the log -----------------------------------------------------------------------------------------

async def log(conn: Any, *, event_id: uuid.UUID, key: str, recipient: str, ticket_id: uuid.UUID | None,
              status: str, reason: str | None, channel: str | None, delivery_id: uuid.UUID | None,
              rule: str | None = None) -> bool:
    """False when this (event, key, recipient) was handled before: nothing more to do."""
    return await conn.fetchval(
        "INSERT INTO notification_log (event_id, key, recipient, ticket_id, status, reason, channel, delivery_id, "
        "rule) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING true",
        event_id, key, recipient, ticket_id, status, reason, channel, delivery_id, rule) is True


async def log_of_ticket(conn: Any, ticket_id: uuid.UUID) -> list[Any]:
    return list(await conn.fetch(
        "SELECT event_id, key, recipient, status, reason, channel, delivery_id, created_at, rule FROM notification_log "
        "WHERE ticket_id = $1 ORDER BY created_at, key, recipient LIMIT 500", ticket_id))

