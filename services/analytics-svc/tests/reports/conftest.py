"""The reports' test rig: the API with a real (tiny) ticket-svc stand-in on 127.0.0.1 answering who is
in which team, and helpers that write read-model rows straight into the fixed schema (0007)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from helpdesk_common.identity import IDENTITY_HEADER, IdentityVerifier, Principal
from helpdesk_common.testing import TEST_PUBLIC_KEY, identity_headers, running_app, service_env

TEAM_X = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
TEAM_Y = uuid.UUID("00000000-0000-4000-8000-0000000000bb")
TEAM_Z = uuid.UUID("00000000-0000-4000-8000-0000000000cc")

ADMIN = identity_headers(Principal(kind="user", id="admin-1", role="admin"))
SUPERVISOR_X = identity_headers(Principal(kind="user", id="sup-x", role="supervisor"))
SUPERVISOR_XZ = identity_headers(Principal(kind="user", id="sup-xz", role="supervisor"))
AGENT_X1 = identity_headers(Principal(kind="user", id="agent-x1", role="agent"))
AGENT_X2 = identity_headers(Principal(kind="user", id="agent-x2", role="agent"))
AGENT_Y1 = identity_headers(Principal(kind="user", id="agent-y1", role="agent"))
LONER = identity_headers(Principal(kind="user", id="loner", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k", channel="api"))

#: who is in which team, as ticket-svc would answer
MEMBERSHIP: dict[str, list[uuid.UUID]] = {
    "sup-x": [TEAM_X], "sup-xz": [TEAM_X, TEAM_Z], "agent-x1": [TEAM_X], "agent-x2": [TEAM_X],
    "agent-y1": [TEAM_Y], "admin-1": [],
}


@dataclass
class FakeTicketSvc:
    """Answers ``GET /v1/agents/me`` and ``GET /v1/agents`` for the caller its identity token names."""

    url: str = ""
    broken: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
async def ticket_svc():
    verifier = IdentityVerifier(TEST_PUBLIC_KEY, max_lifetime_s=24 * 3600 + 60)
    state = FakeTicketSvc()

    def caller(request: web.Request) -> str:
        return verifier.verify(request.headers[IDENTITY_HEADER]).id

    async def me(request: web.Request) -> web.Response:
        who = caller(request)
        state.calls.append(("me", who))
        if state.broken:
            return web.json_response({"title": "boom"}, status=500)
        if who not in MEMBERSHIP:
            return web.json_response({"title": "Agent not found"}, status=404)
        return web.json_response({"id": who, "team_ids": [str(t) for t in MEMBERSHIP[who]]})

    async def agents(request: web.Request) -> web.Response:
        state.calls.append(("agents", caller(request)))
        if state.broken:
            return web.json_response({"title": "boom"}, status=500)
        return web.json_response([{"id": a, "team_ids": [str(t) for t in teams]} for a, teams in MEMBERSHIP.items()])

    app = web.Application()
    app.router.add_get("/v1/agents/me", me)
    app.router.add_get("/v1/agents", agents)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@pytest.fixture
async def reports_api(infra, analytics_db, monkeypatch, ticket_svc):
    """The API alone (no consumer, no relay) with ticket-svc's team lookups on the stand-in."""
    service_env(monkeypatch, infra, "ANALYTICS_", analytics_db)
    monkeypatch.setenv("ANALYTICS_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("ANALYTICS_RELAY_ENABLED", "false")
    monkeypatch.setenv("ANALYTICS_TICKET_URL", ticket_svc.url)
    monkeypatch.setenv("ANALYTICS_TEAM_CACHE_TTL_S", "0")
    from analytics_svc.config import Settings
    from analytics_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


# --------------------------------------------------------------------------- read-model rows


async def rollup(conn: Any, *, dim: str, bucket: datetime, value: str = "", **sums: Any) -> None:
    """Add ``sums`` to one metric_rollups row and to its UTC day's metric_rollups_daily row (what
    the fold's upserts do)."""
    columns = list(sums)
    placeholders = ", ".join(f"${i + 4}" for i in range(len(columns)))
    day = bucket.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for table, at in (("metric_rollups", bucket), ("metric_rollups_daily", day)):
        sets = ", ".join(
            f"{c} = hist_add({table}.{c}, EXCLUDED.{c})" if c.endswith("_hist") else f"{c} = {table}.{c} + EXCLUDED.{c}"
            for c in columns)
        await conn.execute(
            f"INSERT INTO {table} (dim, bucket, dim_value, {', '.join(columns)}) VALUES ($1, $2, $3, {placeholders}) "
            f"ON CONFLICT (dim, bucket, dim_value) DO UPDATE SET {sets}",
            dim, at, value, *sums.values())


async def ticket_rollups(conn: Any, *, bucket: datetime, team: uuid.UUID | None = None, agent: str | None = None,
                         extra: dict[str, str] | None = None, **sums: Any) -> None:
    """One ticket's sums under ``all`` and each of its dimensions, as the fold writes them."""
    await rollup(conn, dim="all", bucket=bucket, **sums)
    if team is not None:
        await rollup(conn, dim="team", bucket=bucket, value=str(team), **sums)
    if agent is not None:
        await rollup(conn, dim="agent", bucket=bucket, value=agent, **sums)
    for dim, value in (extra or {}).items():
        await rollup(conn, dim=dim, bucket=bucket, value=value, **sums)


async def sla_rollup(conn: Any, *, dim: str, bucket: datetime, value: str = "", policy: str = "", metric: str,
                     achieved: int = 0, breached: int = 0) -> None:
    await conn.execute(
        "INSERT INTO sla_rollups (dim, bucket, dim_value, policy, metric, achieved, breached) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dim, bucket, dim_value, policy, metric) DO UPDATE SET "
        "achieved = sla_rollups.achieved + EXCLUDED.achieved, breached = sla_rollups.breached + EXCLUDED.breached",
        dim, bucket, value, policy, metric, achieved, breached)


_DIMS_OF_OPEN_TICKET = (
    "SELECT d.dim, d.value FROM ticket_metrics m, LATERAL (VALUES ('all', ''), ('team', m.team_id::text), "
    "('agent', m.assignee_id), ('channel', m.channel), ('type', m.ticket_type), ('priority', m.priority), "
    "('tier', m.customer_tier), ('brand', m.brand), ('organization', m.organization_id::text)) AS d(dim, value) "
    "WHERE m.ticket_id = $1 AND m.created_at IS NOT NULL AND NOT m.resolved AND NOT m.merged "
    "AND (d.dim = 'all' OR d.value <> '') "
    "UNION ALL SELECT 'tag', t FROM ticket_metrics m, "
    "LATERAL (SELECT DISTINCT t FROM unnest(m.tags) AS t WHERE t <> '') AS tags(t) "
    "WHERE m.ticket_id = $1 AND m.created_at IS NOT NULL AND NOT m.resolved AND NOT m.merged"
)


async def _add_open(conn: Any, ticket_id: uuid.UUID, at: datetime, **amounts: int) -> None:
    """Add to the open_rollups row of the hour of ``at`` under each dimension of an open ticket."""
    names = list(amounts)
    await conn.execute(
        f"INSERT INTO open_rollups (dim, bucket, dim_value, {', '.join(names)}) "
        f"SELECT d.dim, date_trunc('hour', $2::timestamptz, 'UTC'), d.value, "
        f"{', '.join(f'${i + 3}::int8' for i in range(len(names)))} FROM ({_DIMS_OF_OPEN_TICKET}) AS d "
        "ON CONFLICT (dim, bucket, dim_value) DO UPDATE SET "
        + ", ".join(f"{n} = open_rollups.{n} + EXCLUDED.{n}" for n in names),
        ticket_id, at, *amounts.values())


async def ticket_row(conn: Any, **values: Any) -> uuid.UUID:
    """A ticket_metrics row (only the columns given; the schema's defaults for the rest) and, for
    an open ticket, its open_rollups rows under each of its dimensions (what the fold writes)."""
    values.setdefault("ticket_id", uuid.uuid4())
    columns = list(values)
    await conn.execute(
        f"INSERT INTO ticket_metrics ({', '.join(columns)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})",
        *values.values())
    if values.get("created_at") is not None:
        await _add_open(conn, values["ticket_id"], values["created_at"], open=1,
                        unassigned=int(values.get("assignee_id") is None))
    return values["ticket_id"]


#: an open ticket's overdue / at-risk instants from its sla_targets rows (what the fold derives
#: from the events, readmodel.targets.sla_clock; a warning's time is the row's event_at here)
_CLOCK = (
    "WITH t AS (SELECT CASE WHEN colour = 'breached' THEN least(due_at, event_at) ELSE due_at END AS overdue, "
    "  CASE WHEN colour = 'breached' THEN NULL "
    "       WHEN colour IN ('yellow', 'red') THEN least(due_at - make_interval(secs => coalesce(target_minutes, 0) * 15), "
    "                                             event_at) "
    "       ELSE due_at - make_interval(secs => coalesce(target_minutes, 0) * 15) END AS risk "
    "  FROM sla_targets WHERE ticket_id = $1 AND state = 'running' AND (due_at IS NOT NULL OR colour = 'breached')) "
    "SELECT min(overdue) AS overdue, least(min(overdue), min(risk)) AS risk FROM t"
)


async def sla_target(conn: Any, *, ticket_id: uuid.UUID, metric: str, due_at: datetime | None, state: str = "running",
                     colour: str = "green", target_minutes: int | None = 60, policy: str | None = "gold",
                     event_at: datetime) -> None:
    """An sla_targets row, and the ticket's overdue / at-risk instants moved in ticket_metrics and
    open_rollups as the fold would."""
    before = await conn.fetchrow(_CLOCK, ticket_id)
    await conn.execute(
        "INSERT INTO sla_targets (ticket_id, metric, policy, target_minutes, started_at, due_at, state, colour, event_at) "
        "VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8)",
        ticket_id, metric, policy, target_minutes, due_at, state, colour, event_at)
    after = await conn.fetchrow(_CLOCK, ticket_id)
    if before["overdue"] is not None:
        await _add_open(conn, ticket_id, before["overdue"], overdue_from=-1)
        await _add_open(conn, ticket_id, before["risk"], at_risk_from=-1)
    if after["overdue"] is not None:
        await _add_open(conn, ticket_id, after["overdue"], overdue_from=1)
        await _add_open(conn, ticket_id, after["risk"], at_risk_from=1)
    await conn.execute(
        "UPDATE ticket_metrics SET sla_overdue_at = $2, sla_at_risk_at = $3 WHERE ticket_id = $1 "
        "AND created_at IS NOT NULL AND NOT resolved AND NOT merged", ticket_id, after["overdue"], after["risk"])


