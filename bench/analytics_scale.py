"""`make bench`, analytics at scale: do the dashboards stay fast with 10 million tickets?

On a private embedded PostgreSQL with analytics-svc alone (API only: no consumers, no relay, no
broker), it measures p50/p95 of four dashboard requests as an admin — the live board (`kpis`), a
90-day daily trend by team in Asia/Shanghai, a 30-day agent leaderboard and a CSAT breakdown by
channel — first on the EMPTY read model, then after bulk-loading N tickets' read-model rows
(default 10,000,000; ``BENCH_ANALYTICS_TICKETS`` or ``--tickets``).

The load is PostgreSQL's own work, never a Python loop per row: ``ticket_metrics`` from
``generate_series`` with deterministic pseudo-random draws (``hashint4``) over a year (20 teams,
200 agents, 7 channels, types, priorities, tiers, tags in Chinese and English, brands,
organisations, ~2 % open, SLA targets for the open ones), then ``metric_rollups`` and
``sla_rollups`` aggregated from those rows in SQL with the fold's attribution (docs/metrics.md,
"Rollups"): created at created_at, solved and the resolution sums at resolved_at, first reply
at first_reply_at, survey answers at their answer time, SLA outcomes at the cycle's outcome, every
dimension a ticket has, one row per tag, histograms on readmodel.histogram's bin edges. The
tables' secondary indexes are dropped for the load and rebuilt from their own definitions, then
ANALYZE. A consistency check compares the rollups with ticket_metrics on sampled days, so the
requests are measured on data that adds up.

Merges ``analytics_scale_*`` keys into bench/results/latest.json and prints a short table; exit
status 3 when a loaded p95 exceeds the goal (100 ms), a request failed or the check did not add up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, time as dtime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from analytics_svc.readmodel.histogram import HIST_EDGES_MINUTES  # noqa: E402
from bench.run import RESULTS, free_block, free_port_outside, log, raw_dsn, remove_data_dir  # noqa: E402
from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig  # noqa: E402
from helpdesk_common.identity import IdentitySigner, Principal  # noqa: E402
from helpdesk_common.migrate import ensure_database, upgrade  # noqa: E402

GOAL_P95_MS = 100.0
DEFAULT_TICKETS = 10_000_000
SPAN_DAYS = 365
TEAMS, AGENTS, ORGANIZATIONS, CUSTOMERS = 20, 200, 1000, 2_000_000
BATCH = 1_000_000
#: the read model's tables the load fills
TABLES = ("ticket_metrics", "metric_rollups", "metric_rollups_daily", "sla_rollups", "sla_targets")

# ---- the synthetic tickets ------------------------------------------------------------------

#: helpers for the load, dropped at the end: deterministic uniforms in [0, 1) per ticket number and
#: draw, normal draws, and a duration's bin on HIST_EDGES_MINUTES (as readmodel.histogram.hist_bin)
HELPERS = f"""
CREATE OR REPLACE FUNCTION bench_u(g bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (hashint8(g * 64 + k) & 2147483647)::float8 / 2147483648.0 $$;
CREATE OR REPLACE FUNCTION bench_z(g bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT sqrt(-2 * ln(bench_u(g, k) + 1e-12)) * cos(2 * pi() * bench_u(g, k + 1)) $$;
CREATE OR REPLACE FUNCTION bench_bin(minutes float8) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN minutes <= 0 THEN 0
   ELSE width_bucket(minutes, ARRAY[{', '.join(str(float(e)) for e in HIST_EDGES_MINUTES)}]::float8[]) - 1 END $$;
"""
DROP_HELPERS = "DROP FUNCTION IF EXISTS bench_bin(float8), bench_z(bigint, int), bench_u(bigint, int)"

#: 7 channels with a help desk's mix, 5 types, 4 priorities, tiers, brands, 30 tags (10 per slot)
CHANNELS = ["email"] * 4 + ["web"] * 3 + ["chat"] * 3 + ["api"] + ["wechat"] * 2 + ["dingtalk", "phone"]
TYPES = ["question"] * 4 + ["incident"] * 3 + ["problem"] * 1 + ["task"] * 1 + ["complaint"] * 1
PRIORITIES = ["low"] * 4 + ["normal"] * 11 + ["high"] * 4 + ["urgent"]
TIERS = ["standard"] * 12 + ["silver"] * 4 + ["gold"] * 2 + ["vip", None]
BRANDS = ["Acme"] * 5 + ["Acme Pro"] * 2 + ["环球 Globex"] * 2 + [None]
TAGS = ["退款", "refund", "物流", "shipping", "发票", "invoice", "登录", "login", "保修", "warranty",
        "billing", "账户", "bug", "功能建议", "feature-request", "vip-care", "投诉", "complaint", "安装", "install",
        "urgent-care", "回访", "follow-up", "migration", "api", "mobile", "微信", "email-bounce", "促销", "promo"]


def sql_array(values: list[str | None]) -> str:
    items = ", ".join("NULL" if v is None else "'" + v.replace("'", "''") + "'" for v in values)
    return f"ARRAY[{items}]::text[]"


def pick(values: list[str | None], draw: str) -> str:
    return f"({sql_array(values)})[1 + floor({draw} * {len(values)})::int]"


#: one batch of ticket_metrics rows, $1..$2 ticket numbers of $3, the year ending at $4 (now).
#: Computed in stages (subqueries kept apart by OFFSET 0, which PostgreSQL does not flatten) so a
#: draw used by many columns is computed once per row, not once per use
LOAD_TICKETS = f"""
INSERT INTO ticket_metrics (ticket_id, number, created_at, status, first_reply_at, resolved_at, team_id,
  assignee_id, channel, ticket_type, priority, customer_id, customer_tier, organization_id, brand, tags,
  first_reply_minutes, first_reply_business_minutes, full_resolution_minutes, full_resolution_business_minutes,
  requester_wait_minutes, requester_wait_business_minutes, agent_wait_minutes, agent_wait_business_minutes,
  on_hold_minutes, on_hold_business_minutes, next_replies_total_minutes, next_replies_total_business_minutes,
  next_replies, reopens, replies, assignee_hops, team_hops, resolved, one_touch, first_contact, merged, csat, nps,
  sla_achieved, sla_breached, event_at)
SELECT gen_random_uuid(), g, created_at,
  CASE WHEN resolved THEN (CASE WHEN resolved_at < $4 - interval '4 days' THEN 'closed' ELSE 'solved' END)
       WHEN merged THEN 'closed' WHEN first_reply_at IS NULL THEN 'new'
       WHEN bench_u(g, 40) < 0.3 THEN 'pending' ELSE 'open' END,
  first_reply_at, resolved_at,
  CASE WHEN assigned THEN md5('bench-team-' || (agent % {TEAMS}))::uuid
       ELSE md5('bench-team-' || floor(bench_u(g, 41) * {TEAMS})::int)::uuid END,
  CASE WHEN assigned THEN md5('bench-agent-' || agent)::uuid::text END,
  {pick(CHANNELS, 'bench_u(g, 3)')}, {pick(TYPES, 'bench_u(g, 4)')}, priority,
  md5('bench-customer-' || floor(bench_u(g, 5) * {CUSTOMERS})::int)::uuid,
  {pick(TIERS, 'bench_u(g, 6)')},
  CASE WHEN bench_u(g, 7) < 0.3 THEN md5('bench-org-' || floor(bench_u(g, 8) * {ORGANIZATIONS})::int)::uuid END,
  {pick(BRANDS, 'bench_u(g, 9)')},
  array_remove(ARRAY[CASE WHEN bench_u(g, 10) < 0.6 THEN ({sql_array(TAGS[:10])})[1 + floor(bench_u(g, 11) * 10)::int] END,
                     CASE WHEN bench_u(g, 12) < 0.35 THEN ({sql_array(TAGS[10:20])})[1 + floor(bench_u(g, 13) * 10)::int] END,
                     CASE WHEN bench_u(g, 14) < 0.15 THEN ({sql_array(TAGS[20:])})[1 + floor(bench_u(g, 15) * 10)::int] END],
               NULL),
  CASE WHEN first_reply_at IS NOT NULL THEN first_reply END,
  CASE WHEN first_reply_at IS NOT NULL THEN first_reply * business END,
  CASE WHEN resolved THEN resolution END, CASE WHEN resolved THEN resolution * business END,
  CASE WHEN resolved THEN resolution * 0.6 END, CASE WHEN resolved THEN resolution * 0.6 * business END,
  CASE WHEN resolved THEN agent_wait END, CASE WHEN resolved THEN agent_wait * business END,
  CASE WHEN resolved THEN on_hold END, CASE WHEN resolved THEN on_hold * business END,
  CASE WHEN resolved AND next_replies > 0 THEN next_total END,
  CASE WHEN resolved AND next_replies > 0 THEN next_total * business END,
  CASE WHEN resolved THEN next_replies ELSE 0 END,
  reopens,
  (first_reply_at IS NOT NULL)::int + CASE WHEN resolved THEN next_replies ELSE 0 END,
  assignee_hops, team_hops, resolved,
  resolved AND first_reply_at IS NOT NULL AND next_replies = 0,
  resolved AND reopens = 0 AND (next_replies = 0 OR bench_u(g, 42) < 0.2),
  merged, csat, nps,
  (first_reply_at IS NOT NULL AND first_reply * business <= fr_target)::int
    + (resolved AND resolution * business <= res_target)::int,
  (first_reply_at IS NOT NULL AND first_reply * business > fr_target)::int
    + (resolved AND resolution * business > res_target)::int,
  greatest(created_at, first_reply_at, resolved_at,
           CASE WHEN csat IS NOT NULL THEN resolved_at + csat_after END,
           CASE WHEN nps IS NOT NULL THEN resolved_at + nps_after END)
FROM (
  SELECT c.*,
    CASE WHEN replies_at_all AND fr_at <= $4 THEN fr_at END AS first_reply_at,
    resolved_draw_merged AS merged,
    CASE WHEN resolved THEN res_at END AS resolved_at,
    resolved OR resolved_draw_merged OR bench_u(g, 36) >= 0.25 AS assigned,
    CASE WHEN resolved AND bench_u(g, 37) < 0.3 AND res_at + csat_after <= $4
         THEN (ARRAY[5,5,5,5,5,4,4,4,3,2,1,1])[1 + floor(bench_u(g, 38) * 12)::int] END::smallint AS csat,
    CASE WHEN resolved AND bench_u(g, 39) < 0.08 AND res_at + nps_after <= $4
         THEN (ARRAY[10,10,10,9,9,9,8,8,7,7,6,5,3,0])[1 + floor(bench_u(g, 43) * 14)::int] END::smallint AS nps
  FROM (
    SELECT b.*,
      created_at + make_interval(secs => first_reply * 60) AS fr_at,
      created_at + make_interval(secs => resolution * 60) AS res_at,
      -- a few tickets never replied to; "stuck" ones (recent, ~12 %) stay open whatever their draws say
      NOT stuck AND NOT merged_draw AND replies_at_all
        AND created_at + make_interval(secs => resolution * 60) <= $4 AS resolved,
      merged_draw AND NOT stuck AS resolved_draw_merged
    FROM (
      SELECT a.*,
        speed * fr_base AS first_reply,
        speed * (fr_base + res_extra) AS resolution,
        0.28 + 0.15 * bench_u(g, 25) AS business,
        CASE WHEN bench_u(g, 26) < 0.3 THEN 0.15 * bench_u(g, 27) ELSE 0 END * speed * (fr_base + res_extra) AS agent_wait,
        CASE WHEN bench_u(g, 28) < 0.08 THEN 0.1 ELSE 0 END * speed * (fr_base + res_extra) AS on_hold,
        next_replies * exp(ln(90) + 0.9 * bench_z(g, 29)) AS next_total,
        make_interval(secs => 1800 + bench_u(g, 31) * 86400) AS csat_after,
        make_interval(secs => 3600 + bench_u(g, 32) * 172800) AS nps_after,
        bench_u(g, 33) < 0.97 AS replies_at_all,
        created_at > $4 - interval '60 days' AND bench_u(g, 34) < 0.12 AS stuck,
        bench_u(g, 35) < 0.005 AS merged_draw
      FROM (
        SELECT r.*,
          CASE priority WHEN 'urgent' THEN 30 WHEN 'high' THEN 120 WHEN 'normal' THEN 480 ELSE 1440 END AS fr_target,
          CASE priority WHEN 'urgent' THEN 480 WHEN 'high' THEN 1440 WHEN 'normal' THEN 2880 ELSE 5760 END AS res_target,
          CASE priority WHEN 'urgent' THEN 0.3 WHEN 'high' THEN 0.6 WHEN 'normal' THEN 1.0 ELSE 1.6 END AS speed
        FROM (
          SELECT g,
            floor(power(bench_u(g, 1), 1.4) * {AGENTS})::int AS agent,
            {pick(PRIORITIES, 'bench_u(g, 2)')} AS priority,
            least(8, floor(-ln(bench_u(g, 16) + 1e-12) * 1.2))::int AS next_replies,
            CASE WHEN bench_u(g, 17) < 0.01 THEN 2 WHEN bench_u(g, 17) < 0.05 THEN 1 ELSE 0 END AS reopens,
            CASE WHEN bench_u(g, 18) < 0.03 THEN 2 WHEN bench_u(g, 18) < 0.12 THEN 1 ELSE 0 END AS assignee_hops,
            CASE WHEN bench_u(g, 19) < 0.05 THEN 1 ELSE 0 END AS team_hops,
            $4::timestamptz - make_interval(secs => {SPAN_DAYS} * 86400.0 * (1 - (g - bench_u(g, 20)) / $3::float8))
              AS created_at,
            exp(ln(40) + 1.1 * bench_z(g, 21)) AS fr_base,
            exp(ln(420) + 1.3 * bench_z(g, 23)) AS res_extra
          FROM generate_series($1::bigint, $2::bigint) AS g OFFSET 0
        ) AS r OFFSET 0
      ) AS a OFFSET 0
    ) AS b OFFSET 0
  ) AS c OFFSET 0
) AS t
"""

#: SLA targets of the open tickets (the rows at-risk and overdue read): first response while
#: unanswered, resolution always; due in calendar time ~ 3x the business target
LOAD_TARGETS = """
INSERT INTO sla_targets (ticket_id, metric, policy, target_minutes, started_at, due_at, state, colour, event_at)
SELECT t.ticket_id, m.metric, m.policy, m.target, t.created_at, m.due,
  CASE WHEN t.status = 'pending' THEN 'paused' ELSE 'running' END,
  CASE WHEN m.due <= $1 THEN 'breached' WHEN m.due - $1 <= make_interval(mins => m.target * 3) * 0.1 THEN 'red'
       WHEN m.due - $1 <= make_interval(mins => m.target * 3) * 0.25 THEN 'yellow' ELSE 'green' END,
  t.event_at
FROM ticket_metrics t
CROSS JOIN LATERAL (SELECT CASE WHEN t.customer_tier IN ('gold', 'vip') THEN 'Premium' ELSE 'Standard' END AS policy,
  CASE t.priority WHEN 'urgent' THEN 30 WHEN 'high' THEN 120 WHEN 'normal' THEN 480 ELSE 1440 END AS fr,
  CASE t.priority WHEN 'urgent' THEN 480 WHEN 'high' THEN 1440 WHEN 'normal' THEN 2880 ELSE 5760 END AS res) AS p
CROSS JOIN LATERAL (VALUES
  ('first_response', p.policy, p.fr, t.created_at + make_interval(mins => p.fr * 3), t.first_reply_at IS NULL),
  ('resolution', p.policy, p.res, t.created_at + make_interval(mins => p.res * 3), true)
) AS m(metric, policy, target, due, wanted)
WHERE t.created_at IS NOT NULL AND NOT t.resolved AND NOT t.merged AND m.wanted
"""

#: each open ticket's overdue / at-risk instants from its running targets, as the fold derives them
#: (readmodel.targets.sla_clock; a warned target's warning time is taken as the ticket's newest event)
LOAD_CLOCK = """
UPDATE ticket_metrics t SET sla_overdue_at = c.overdue, sla_at_risk_at = least(c.overdue, c.risk)
FROM (SELECT ticket_id,
        min(CASE WHEN colour = 'breached' THEN least(due_at, event_at) ELSE due_at END) AS overdue,
        min(CASE WHEN colour = 'breached' THEN NULL
                 WHEN colour IN ('yellow', 'red')
                 THEN least(due_at - make_interval(secs => coalesce(target_minutes, 0) * 15), event_at)
                 ELSE due_at - make_interval(secs => coalesce(target_minutes, 0) * 15) END) AS risk
      FROM sla_targets WHERE state = 'running' AND due_at IS NOT NULL GROUP BY ticket_id) AS c
WHERE t.ticket_id = c.ticket_id AND t.created_at IS NOT NULL AND NOT t.resolved AND NOT t.merged
"""

#: the dimensions the fold writes, as expressions over a ticket_metrics row ``t`` (tags separately)
DIMENSIONS = {
    "all": "''",
    "team": "t.team_id::text",
    "agent": "t.assignee_id",
    "channel": "t.channel",
    "type": "t.ticket_type",
    "priority": "t.priority",
    "tier": "t.customer_tier",
    "brand": "t.brand",
    "organization": "t.organization_id::text",
    "tag": "tg.tag",
}
#: the open backlog per dimension value and UTC hour, as the fold keeps it: an open ticket adds
#: open = 1, and unassigned = 1 without an assignee, at its creation hour, overdue_from = 1 at the
#: hour it becomes overdue and at_risk_from = 1 at the hour it becomes at risk, under each of its
#: dimension values
LOAD_OPEN = (
    "INSERT INTO open_rollups (dim, bucket, dim_value, open, unassigned, overdue_from, at_risk_from) "
    "SELECT d.dim, date_trunc('hour', k.at, 'UTC'), d.value, sum(k.open), sum(k.unassigned), sum(k.overdue), "
    "sum(k.at_risk) "
    "FROM ticket_metrics t CROSS JOIN LATERAL (VALUES "
    + ", ".join(f"('{dim}', {expr})" for dim, expr in DIMENSIONS.items() if dim != "tag")
    + " UNION SELECT 'tag', tg FROM unnest(t.tags) AS tg WHERE tg <> '') AS d(dim, value) "
    "CROSS JOIN LATERAL (VALUES (t.created_at, 1, (t.assignee_id IS NULL)::int, 0, 0), "
    "(t.sla_overdue_at, 0, 0, 1, 0), (t.sla_at_risk_at, 0, 0, 0, 1)) AS k(at, open, unassigned, overdue, at_risk) "
    "WHERE t.created_at IS NOT NULL AND NOT t.resolved AND NOT t.merged AND d.value IS NOT NULL "
    "AND (d.dim = 'all' OR d.value <> '') AND k.at IS NOT NULL GROUP BY 1, 2, 3"
)
#: the synthetic SLA: policy by tier, targets in business minutes by priority; each ticket has a
#: first-response cycle (outcome at its first reply) and a resolution cycle (outcome at resolution)
POLICY = "CASE WHEN t.customer_tier IN ('gold', 'vip') THEN 'Premium' ELSE 'Standard' END"
FR_MET = ("(t.first_reply_business_minutes <= CASE t.priority WHEN 'urgent' THEN 30 WHEN 'high' THEN 120 "
          "WHEN 'normal' THEN 480 ELSE 1440 END)")
RES_MET = ("(t.full_resolution_business_minutes <= CASE t.priority WHEN 'urgent' THEN 480 WHEN 'high' THEN 1440 "
           "WHEN 'normal' THEN 2880 ELSE 5760 END)")
#: survey answers' instants (not a ticket_metrics column: re-derived from the ticket's number
#: with the draws the load used)
CSAT_AT = "t.resolved_at + make_interval(secs => 1800 + bench_u(t.number, 31) * 86400)"
NPS_AT = "t.resolved_at + make_interval(secs => 3600 + bench_u(t.number, 32) * 172800)"

#: the columns of the per-dimension partial sums, in order, with the value a branch leaves them at
#: (NULL, which costs a bit in the row and nothing in sum())
PART_COLUMNS = {
    "policy": "NULL::text",
    "created": "NULL::bigint", "solved": "NULL::bigint",
    "resolution_sum": "NULL::float8", "resolution_bsum": "NULL::float8",
    "requester_wait_sum": "NULL::float8", "requester_wait_bsum": "NULL::float8",
    "agent_wait_sum": "NULL::float8", "agent_wait_bsum": "NULL::float8",
    "on_hold_sum": "NULL::float8", "on_hold_bsum": "NULL::float8",
    "next_reply_n": "NULL::bigint", "next_reply_sum": "NULL::float8", "next_reply_bsum": "NULL::float8",
    "reopens": "NULL::bigint", "replies": "NULL::bigint", "assignee_hops": "NULL::bigint", "team_hops": "NULL::bigint",
    "one_touch": "NULL::bigint", "first_contact": "NULL::bigint",
    "first_reply_n": "NULL::bigint", "first_reply_sum": "NULL::float8", "first_reply_bsum": "NULL::float8",
    "csat_n": "NULL::bigint", "csat_satisfied": "NULL::bigint", "csat_rating_sum": "NULL::bigint",
    "nps_n": "NULL::bigint", "nps_promoters": "NULL::bigint", "nps_detractors": "NULL::bigint",
    "fr_met": "NULL::bigint", "fr_missed": "NULL::bigint", "res_met": "NULL::bigint", "res_missed": "NULL::bigint",
    "linked": "NULL::bigint", "with_sla": "NULL::bigint",
    "first_reply_hist": "NULL::int[]", "resolution_hist": "NULL::int[]",
}
#: one branch per kind of event a ticket row stands for: its instant, its filter, whether it is
#: split by SLA policy, and the partial sums it fills (docs/metrics.md "Rollups": created at
#: created_at; solved and the resolution figures at resolved_at; the first reply at first_reply_at;
#: survey answers at their answer time; SLA outcomes at the cycle's outcome)
BRANCHES = [
    # linked / with_sla at created_at (the board's all-time counters): a customer on the row; an SLA
    # target, which the load gives the open tickets (LOAD_TARGETS)
    ("t.created_at", "true", False, {"created": "count(*)",
                                     "linked": "count(*) FILTER (WHERE t.customer_id IS NOT NULL)",
                                     "with_sla": "count(*) FILTER (WHERE NOT t.resolved AND NOT t.merged)"}),
    ("t.resolved_at", "t.resolved", True, {
        "solved": "count(*)",
        "resolution_sum": "sum(t.full_resolution_minutes)", "resolution_bsum": "sum(t.full_resolution_business_minutes)",
        "requester_wait_sum": "sum(coalesce(t.requester_wait_minutes, 0))",
        "requester_wait_bsum": "sum(coalesce(t.requester_wait_business_minutes, 0))",
        "agent_wait_sum": "sum(coalesce(t.agent_wait_minutes, 0))",
        "agent_wait_bsum": "sum(coalesce(t.agent_wait_business_minutes, 0))",
        "on_hold_sum": "sum(coalesce(t.on_hold_minutes, 0))", "on_hold_bsum": "sum(coalesce(t.on_hold_business_minutes, 0))",
        "next_reply_n": "sum(t.next_replies)", "next_reply_sum": "sum(coalesce(t.next_replies_total_minutes, 0))",
        "next_reply_bsum": "sum(coalesce(t.next_replies_total_business_minutes, 0))",
        "reopens": "sum(t.reopens)", "replies": "sum(t.replies)", "assignee_hops": "sum(t.assignee_hops)",
        "team_hops": "sum(t.team_hops)", "one_touch": "count(*) FILTER (WHERE t.one_touch)",
        "first_contact": "count(*) FILTER (WHERE t.first_contact)",
        "res_met": f"count(*) FILTER (WHERE {RES_MET})", "res_missed": f"count(*) FILTER (WHERE NOT {RES_MET})",
    }),
    ("t.first_reply_at", "t.first_reply_at IS NOT NULL", True, {
        "first_reply_n": "count(*)", "first_reply_sum": "sum(t.first_reply_minutes)",
        "first_reply_bsum": "sum(t.first_reply_business_minutes)",
        "fr_met": f"count(*) FILTER (WHERE {FR_MET})", "fr_missed": f"count(*) FILTER (WHERE NOT {FR_MET})",
    }),
    (CSAT_AT, "t.csat IS NOT NULL", False, {
        "csat_n": "count(*)", "csat_satisfied": "count(*) FILTER (WHERE t.csat >= 4)",
        "csat_rating_sum": "sum(t.csat)"}),
    (NPS_AT, "t.nps IS NOT NULL", False, {
        "nps_n": "count(*)", "nps_promoters": "count(*) FILTER (WHERE t.nps >= 9)",
        "nps_detractors": "count(*) FILTER (WHERE t.nps <= 6)"}),
]
#: histograms: counts per (hour, value, bin) first, then one dense array per (hour, value)
HIST_BRANCHES = [("first_reply_hist", "t.first_reply_at", "t.first_reply_at IS NOT NULL", "t.first_reply_minutes"),
                 ("resolution_hist", "t.resolved_at", "t.resolved", "t.full_resolution_minutes")]
ROLLUP_SUMS = [c for c in PART_COLUMNS if c not in ("policy", "fr_met", "fr_missed", "res_met", "res_missed",
                                                    "first_reply_hist", "resolution_hist")]


#: the dimensions but tags as columns of a ticket row (tags multiply rows: their own pass)
PLAIN_DIMS = [d for d in DIMENSIONS if d not in ("all", "tag")]
PART_SUMS = [c for c in PART_COLUMNS if c not in ("policy", "first_reply_hist", "resolution_hist")]


def staging_sql() -> str:
    """Partial sums and histogram counts, partitioned by dimension so each dimension's final
    statement reads only its own rows (unlogged: scratch space of the load)."""
    # counts as int: sum(int) accumulates in a bigint, sum(bigint) in numeric (several times slower)
    cols = ", ".join(f"{c} {'float8' if 'sum' in c and c != 'csat_rating_sum' else 'int'}" for c in PART_SUMS)
    out = ["DROP TABLE IF EXISTS bench_part, bench_hist",
           f"CREATE TABLE bench_part (dim text, hour timestamptz, value text, policy text, {cols}) PARTITION BY LIST (dim)",
           "CREATE TABLE bench_hist (dim text, which text, grain text, hour timestamptz, value text, hist int[]) "
           "PARTITION BY LIST (dim)"]
    for dim in DIMENSIONS:
        out.append(f"CREATE UNLOGGED TABLE bench_part_{dim} PARTITION OF bench_part FOR VALUES IN ('{dim}')")
        out.append(f"CREATE UNLOGGED TABLE bench_hist_{dim} PARTITION OF bench_hist FOR VALUES IN ('{dim}')")
    return "; ".join(out)


def _sets(extra: list[str], *, tag: bool) -> tuple[str, str, str]:
    """(GROUP BY clause, dim label, value) for one pass: every plain dimension in one scan with
    GROUPING SETS (plus 'all'), or the tag dimension from the unnested tags."""
    if tag:
        return "GROUP BY " + ", ".join(["hour", "tag", *extra]), "'tag'", "tag"
    base = ", ".join(["hour", *extra])
    sets = [f"({base})"] + [f"({base}, {d})" for d in PLAIN_DIMS]
    label = "CASE " + " ".join(f"WHEN GROUPING({d}) = 0 THEN '{d}'" for d in PLAIN_DIMS) + " ELSE 'all' END"
    value = "CASE " + " ".join(f"WHEN GROUPING({d}) = 0 THEN {d}" for d in PLAIN_DIMS) + " ELSE '' END"
    return f"GROUP BY GROUPING SETS ({', '.join(sets)})", label, value


def _source(instant: str, where: str, measures: str, *, tag: bool, grain: str = "hour") -> str:
    """One row per ticket (per tag) with its event's hour (or UTC day), its policy, its dimension values."""
    dims = ", ".join(f"{DIMENSIONS[d]} AS {d}" for d in PLAIN_DIMS)
    unnest = " CROSS JOIN LATERAL unnest(t.tags) AS tg(tag)" if tag else ""
    tag_col = ", tg.tag AS tag" if tag else ""
    return (f"(SELECT date_trunc('{grain}', {instant}, 'UTC') AS hour, {POLICY} AS policy, {dims}{tag_col}, {measures} "
            f"FROM ticket_metrics t{unnest} WHERE t.created_at IS NOT NULL AND {where} OFFSET 0) AS e")


def pass_sql(branch: int, *, tag: bool) -> str:
    """One scan of ticket_metrics for one kind of event: its partial sums for every dimension
    (GROUPING SETS) or for tags; a null dimension value writes no row, as in the fold."""
    instant, where, by_policy, sums = BRANCHES[branch]
    group, label, value = _sets(["policy"] if by_policy else [], tag=tag)
    # the branch's aggregates read the ticket row's columns through the source's "m_*" columns
    inputs = sorted({col for expr in sums.values() for col in _columns(expr)})
    measures = ", ".join(f"t.{c} AS m_{c}" for c in inputs) or "1 AS m_none"
    aggs = ", ".join(_rename(expr) for expr in sums.values())
    cols = ", ".join(sums)
    policy = "policy" if by_policy else "NULL::text"
    return (f"INSERT INTO bench_part (dim, hour, value, policy, {cols}) SELECT dim, hour, value, policy, {cols} FROM "
            f"(SELECT {label} AS dim, hour, {value} AS value, {policy} AS policy, {aggs} "
            f"FROM {_source(instant, where, measures, tag=tag)} {group}) AS g({_out_names(sums)}) "
            f"WHERE value IS NOT NULL")


def _out_names(sums: dict[str, str]) -> str:
    return ", ".join(["dim", "hour", "value", "policy", *sums])


_COLUMN_NAMES = ("first_reply_business_minutes", "first_reply_minutes", "full_resolution_business_minutes",
                 "full_resolution_minutes", "requester_wait_business_minutes", "requester_wait_minutes",
                 "agent_wait_business_minutes", "agent_wait_minutes", "on_hold_business_minutes", "on_hold_minutes",
                 "next_replies_total_business_minutes", "next_replies_total_minutes", "next_replies", "reopens",
                 "replies", "assignee_hops", "team_hops", "one_touch", "first_contact", "csat", "nps", "priority",
                 "customer_id", "resolved", "merged")


def _columns(expr: str) -> list[str]:
    found, rest = [], expr
    for name in _COLUMN_NAMES:  # longest names first within each family, so prefixes do not match twice
        if f"t.{name}" in rest:
            found.append(name)
            rest = rest.replace(f"t.{name}", "")
    return found


def _rename(expr: str) -> str:
    for name in _COLUMN_NAMES:
        expr = expr.replace(f"t.{name}", f"m_{name}")
    return expr


def hist_pass_sql(which: int, *, tag: bool, grain: str = "hour") -> str:
    """One histogram's dense array per (dimension, hour or UTC day, value), every dimension in one
    scan: a count per bin, each a FILTER on the row's precomputed bin (PostgreSQL has no
    element-wise array sum, so the daily arrays are counted from the rows too, not from the hours)."""
    column, instant, where, minutes = HIST_BRANCHES[which]
    group, label, value = _sets([], tag=tag)
    dense = "ARRAY[" + ", ".join(f"count(*) FILTER (WHERE bin = {i})" for i in range(len(HIST_EDGES_MINUTES))) + "]::int[]"
    source = _source(instant, where, f"bench_bin({minutes}) AS bin", tag=tag, grain=grain)
    return (f"INSERT INTO bench_hist (dim, which, grain, hour, value, hist) "
            f"SELECT dim, '{column}', '{grain}', hour, value, hist FROM "
            f"(SELECT {label} AS dim, hour, {value} AS value, {dense} AS hist "
            f"FROM {source} {group}) AS g "
            f"WHERE value IS NOT NULL")


def final_sql(dim: str, *, daily: bool = False) -> str:
    """One dimension's metric_rollups and sla_rollups rows (``daily``: its metric_rollups_daily
    rows, the same sums per UTC day) from its staged partial sums and histogram counts (dense
    arrays of counts per bin)."""
    sums = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in ROLLUP_SUMS)
    table, grain = ("metric_rollups_daily", "day") if daily else ("metric_rollups", "hour")
    bucket = "date_trunc('day', hour, 'UTC')" if daily else "hour"
    rollups = f"""
INSERT INTO {table} (dim, bucket, dim_value, {', '.join(ROLLUP_SUMS)}, sla_n, sla_achieved,
  first_reply_hist, resolution_hist)
SELECT '{dim}', p.hour, p.value, {', '.join(f'p.{c}' for c in ROLLUP_SUMS)}, p.sla_n, p.sla_achieved, f.hist, r.hist
FROM (SELECT {bucket} AS hour, value, {sums},
        coalesce(sum(fr_met), 0) + coalesce(sum(fr_missed), 0) + coalesce(sum(res_met), 0)
          + coalesce(sum(res_missed), 0) AS sla_n,
        coalesce(sum(fr_met), 0) + coalesce(sum(res_met), 0) AS sla_achieved
      FROM bench_part_{dim} GROUP BY 1, 2) AS p
LEFT JOIN bench_hist_{dim} AS f ON f.which = 'first_reply_hist' AND f.grain = '{grain}' AND f.hour = p.hour
  AND f.value = p.value
LEFT JOIN bench_hist_{dim} AS r ON r.which = 'resolution_hist' AND r.grain = '{grain}' AND r.hour = p.hour
  AND r.value = p.value;
"""
    # hash joins whatever the estimates (a nested loop over hours x values is quadratic)
    rollups = f"SET enable_nestloop = off;{rollups}"
    if daily:
        return rollups + "RESET enable_nestloop;"
    return rollups + f"""
INSERT INTO sla_rollups (dim, bucket, dim_value, policy, metric, achieved, breached)
SELECT '{dim}', hour, value, policy, 'first_response', sum(fr_met), sum(fr_missed) FROM bench_part_{dim}
WHERE fr_met IS NOT NULL GROUP BY hour, value, policy
UNION ALL
SELECT '{dim}', hour, value, policy, 'resolution', sum(res_met), sum(res_missed) FROM bench_part_{dim}
WHERE res_met IS NOT NULL GROUP BY hour, value, policy;
"""


# ---- loading ----------------------------------------------------------------------------------

async def index_definitions(conn: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX ...) of a table's secondary indexes (not the primary key)."""
    rows = await conn.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "WHERE i.tablename = $1 AND i.indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype = 'p')",
        table)
    return [(r["indexname"], r["indexdef"]) for r in rows]


async def timed(conn: asyncpg.Connection, sql: str, *args, label: str, steps: dict[str, float]) -> None:
    t0 = time.monotonic()
    await conn.execute(sql, *args)
    steps[label] = round(steps.get(label, 0.0) + time.monotonic() - t0, 1)


async def bulk_load(dsn: str, total: int, *, now: datetime, jobs: int = 2) -> tuple[float, dict[str, float]]:
    """Load ``total`` tickets and their rollups; returns (seconds, seconds per step)."""
    steps: dict[str, float] = {}
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    session = ("SET work_mem = '1GB'; SET maintenance_work_mem = '1GB'; SET max_parallel_workers_per_gather = 0; "
               "SET max_parallel_maintenance_workers = 2; SET synchronous_commit = off; SET jit = off")
    try:
        await conn.execute(session)
        await conn.execute(HELPERS)
        dropped: list[tuple[str, str]] = []  # (table, CREATE INDEX ...)
        for table in TABLES:
            for name, definition in await index_definitions(conn, table):
                await conn.execute(f'DROP INDEX "{name}"')
                dropped.append((table, definition))
        # the primary keys as well (rebuilt at the end): a random-uuid key costs a random btree
        # insert per row otherwise
        pkeys = await conn.fetch(
            "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
            "WHERE contype = 'p' AND conrelid::regclass::text = ANY($1::text[])",
            list(TABLES))
        for pk in pkeys:
            await conn.execute(f'ALTER TABLE {pk["tbl"]} DROP CONSTRAINT "{pk["conname"]}"')
        # ``jobs`` statements at a time, each on its own connection: the ticket batches, then the
        # rollups (one script per dimension)
        queue: asyncio.Queue = asyncio.Queue()
        for first in range(1, total + 1, BATCH):
            queue.put_nowait(("ticket_metrics", f"{min(first + BATCH - 1, total):,}",
                              (LOAD_TICKETS, first, min(first + BATCH - 1, total), total, now)))
        async def worker() -> None:
            c = await asyncpg.connect(dsn)
            try:
                await c.execute(session)
                while not queue.empty():
                    table, what, statement = queue.get_nowait()
                    t0 = time.monotonic()
                    if isinstance(statement, tuple):  # with arguments
                        await c.execute(*statement)
                    elif isinstance(statement, list):  # one by one (VACUUM is no part of a script)
                        for one in statement:
                            await c.execute(one)
                    else:
                        await c.execute(statement)
                    if table == "final":
                        steps[f"final:{what}"] = round(time.monotonic() - t0, 1)
                    log(f"  {table} {what}: {time.monotonic() - t0:.0f} s ({time.monotonic() - started:.0f} s)")
            finally:
                await c.close()

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(max(1, jobs))))
        # hint bits and the visibility map set once, before the scans read the table again and again
        await conn.execute("VACUUM ANALYZE ticket_metrics")
        steps["ticket_metrics"] = round(time.monotonic() - t0, 1)
        await timed(conn, LOAD_TARGETS, now, label="sla_targets", steps=steps)
        await timed(conn, LOAD_CLOCK, label="sla clocks", steps=steps)
        await conn.execute("VACUUM ANALYZE ticket_metrics")  # the open rows just updated
        await timed(conn, LOAD_OPEN, label="open_rollups", steps=steps)
        await conn.execute("VACUUM ANALYZE open_rollups")

        # the rollups: one scan per kind of event for all plain dimensions at once (and one for
        # tags), then one final statement per dimension from its staged rows
        await conn.execute(staging_sql())
        for tag in (False, True):
            for i in range(len(BRANCHES)):
                queue.put_nowait(("scan", f"{'tag ' if tag else ''}{BRANCHES[i][0]}", pass_sql(i, tag=tag)))
            for i in range(len(HIST_BRANCHES)):
                for grain in ("hour", "day"):
                    queue.put_nowait(("scan", f"{'tag ' if tag else ''}{HIST_BRANCHES[i][0]} by {grain}",
                                      hist_pass_sql(i, tag=tag, grain=grain)))
        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(max(1, jobs))))
        steps["rollup_scans"] = round(time.monotonic() - t0, 1)
        # statistics of the staged rows before the finals join them: without them the planner once
        # took a nested loop for an agent's hour x value join (over 25 minutes instead of ~70 s)
        await timed(conn, "ANALYZE bench_part, bench_hist", label="staging statistics", steps=steps)
        for dim in sorted(DIMENSIONS, key=lambda d: d not in ("tag", "agent", "organization")):  # biggest first
            queue.put_nowait(("final", dim, final_sql(dim)))
        for dim in DIMENSIONS:
            queue.put_nowait(("final", f"{dim} daily", final_sql(dim, daily=True)))
        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(max(1, jobs))))
        steps["rollup_finals"] = round(time.monotonic() - t0, 1)
        await conn.execute("DROP TABLE bench_part, bench_hist")
        # keys and indexes from their own definitions, one script per table, ``jobs`` tables at a time
        t0 = time.monotonic()
        for table in TABLES:
            script = [f'ALTER TABLE {pk["tbl"]} ADD CONSTRAINT "{pk["conname"]}" {pk["def"]}'
                      for pk in pkeys if pk["tbl"] == table]
            script += [definition for owner, definition in dropped if owner == table]
            script.append(f"ANALYZE {table}" if table == "ticket_metrics" else f"VACUUM ANALYZE {table}")
            queue.put_nowait(("indexes", table, script))
        await asyncio.gather(*(worker() for _ in range(max(1, jobs))))
        steps["indexes"] = round(time.monotonic() - t0, 1)
        for table in TABLES:
            now_defined = {d for _n, d in await index_definitions(conn, table)}
            missing = {d for owner, d in dropped if owner == table} - now_defined
            if missing or not await conn.fetchval(
                    "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = $1::regclass", table):
                raise RuntimeError(f"{table}: indexes not rebuilt: {sorted(missing)} (or no primary key)")
        await conn.execute(DROP_HELPERS)
    finally:
        await conn.close()
    return time.monotonic() - started, steps


async def table_sizes(dsn: str) -> dict[str, dict[str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for table in TABLES:
            rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
            size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
            out[table] = {"rows": int(rows), "mb": round(size / 2**20)}
        return out
    finally:
        await conn.close()


#: one UTC day of a dimension ($1, $2 its midnight, $3 the next): the hourly rows summed (histograms
#: element-wise) against the daily rows, as comparable text
DAY_VS_HOURS = """
WITH hours AS (SELECT dim_value, sum(created) AS created, sum(solved) AS solved, sum(linked) AS linked,
    sum(with_sla) AS with_sla, sum(csat_n) AS csat_n FROM metric_rollups
    WHERE dim = $1 AND bucket >= $2 AND bucket < $3 GROUP BY 1),
  bins AS (SELECT dim_value, u.i, sum(u.x) AS x FROM metric_rollups
    CROSS JOIN LATERAL unnest(first_reply_hist) WITH ORDINALITY AS u(x, i)
    WHERE dim = $1 AND bucket >= $2 AND bucket < $3 GROUP BY 1, 2),
  hist AS (SELECT dim_value, array_agg(x::int ORDER BY i) AS h FROM bins GROUP BY 1)
SELECT (SELECT string_agg(concat_ws(' ', h.dim_value, h.created, h.solved, h.linked, h.with_sla, h.csat_n, hi.h),
          '; ' ORDER BY h.dim_value)
        FROM hours h LEFT JOIN hist hi USING (dim_value)) AS hours,
  (SELECT string_agg(concat_ws(' ', dim_value, created, solved, linked, with_sla, csat_n, first_reply_hist),
          '; ' ORDER BY dim_value)
        FROM metric_rollups_daily WHERE dim = $1 AND bucket = $2) AS daily
"""


async def consistency(dsn: str, *, now: datetime, days: int = 5) -> list[str]:
    """Problems found when the rollups are set against ticket_metrics: created and solved per
    UTC day on ``days`` sampled days, each dimension's total against 'all' (tags aside), the
    histograms' counts against their n, SLA cycles in both tables. Empty: it adds up."""
    conn = await asyncpg.connect(dsn)
    problems: list[str] = []
    try:
        for i in range(days):
            day = (now - timedelta(days=1 + i * SPAN_DAYS // days)).replace(hour=0, minute=0, second=0, microsecond=0)
            end = day + timedelta(days=1)
            facts = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE created_at >= $1 AND created_at < $2) AS created, "
                "count(*) FILTER (WHERE resolved AND resolved_at >= $1 AND resolved_at < $2) AS solved "
                "FROM ticket_metrics WHERE (created_at >= $1 AND created_at < $2) OR (resolved_at >= $1 AND resolved_at < $2)",
                day, end)
            rolled = await conn.fetchrow(
                "SELECT coalesce(sum(created), 0) AS created, coalesce(sum(solved), 0) AS solved FROM metric_rollups "
                "WHERE dim = 'all' AND bucket >= $1 AND bucket < $2", day, end)
            if (facts["created"], facts["solved"]) != (rolled["created"], rolled["solved"]):
                problems.append(f"{day:%Y-%m-%d}: ticket_metrics created/solved {facts['created']}/{facts['solved']}, "
                                f"rollups {rolled['created']}/{rolled['solved']}")
            if not facts["created"]:
                problems.append(f"{day:%Y-%m-%d}: no ticket created (the sample day is empty)")
            # the daily table holds that UTC day's hours summed, histograms bin by bin
            for dim in ("all", "team"):
                pair = await conn.fetchrow(DAY_VS_HOURS, dim, day, end)
                if pair["hours"] != pair["daily"]:
                    problems.append(f"{day:%Y-%m-%d} {dim}: daily rollup {pair['daily']} vs its hours {pair['hours']}")
        per_dim = await conn.fetch(
            "SELECT dim, sum(created) AS created, sum(solved) AS solved, sum(first_reply_n) AS fr FROM metric_rollups "
            "GROUP BY dim")
        per_dim_daily = await conn.fetch(
            "SELECT dim, sum(created) AS created, sum(solved) AS solved, sum(first_reply_n) AS fr "
            "FROM metric_rollups_daily GROUP BY dim")
        if sorted(map(tuple, per_dim)) != sorted(map(tuple, per_dim_daily)):
            problems.append("daily: per-dimension totals differ from the hourly rollups'")
        counters = await conn.fetchrow(
            "SELECT (SELECT sum(linked) FROM metric_rollups WHERE dim = 'all') AS linked, "
            "(SELECT sum(with_sla) FROM metric_rollups WHERE dim = 'all') AS with_sla, "
            "(SELECT sum(linked) FROM metric_rollups_daily WHERE dim = 'all') AS linked_daily, "
            "(SELECT sum(with_sla) FROM metric_rollups_daily WHERE dim = 'all') AS with_sla_daily, "
            "(SELECT count(customer_id) FROM ticket_metrics WHERE created_at IS NOT NULL) AS linked_facts, "
            "(SELECT count(DISTINCT ticket_id) FROM sla_targets) AS with_sla_facts")
        if not counters["linked"] == counters["linked_daily"] == counters["linked_facts"]:
            problems.append(f"linked: hourly {counters['linked']}, daily {counters['linked_daily']}, "
                            f"ticket_metrics {counters['linked_facts']}")
        if not counters["with_sla"] == counters["with_sla_daily"] == counters["with_sla_facts"]:
            problems.append(f"with_sla: hourly {counters['with_sla']}, daily {counters['with_sla_daily']}, "
                            f"sla_targets {counters['with_sla_facts']}")
        # the open backlog: open_rollups' 'all' rows are the open tickets per creation hour, every
        # other dimension (tags aside) adds up to the same totals
        wrong_hours = await conn.fetchval(
            "WITH f AS (SELECT date_trunc('hour', created_at, 'UTC') AS bucket, count(*) AS open, "
            "count(*) FILTER (WHERE assignee_id IS NULL) AS unassigned FROM ticket_metrics "
            "WHERE created_at IS NOT NULL AND NOT resolved AND NOT merged GROUP BY 1), "
            "r AS (SELECT bucket, open, unassigned FROM open_rollups WHERE dim = 'all' AND open <> 0) "
            "SELECT count(*) FROM ((SELECT * FROM f EXCEPT ALL SELECT * FROM r) UNION ALL "
            "(SELECT * FROM r EXCEPT ALL SELECT * FROM f)) AS d")
        if wrong_hours:
            problems.append(f"open_rollups: {wrong_hours} 'all' hours differ from ticket_metrics' open tickets")
        # overdue / at risk: open_rollups' 'all' clocks are the open tickets per hour of their instants
        for column, at in (("overdue_from", "sla_overdue_at"), ("at_risk_from", "sla_at_risk_at")):
            wrong_clock = await conn.fetchval(
                f"WITH f AS (SELECT date_trunc('hour', {at}, 'UTC') AS bucket, count(*) AS n FROM ticket_metrics "
                f"WHERE created_at IS NOT NULL AND NOT resolved AND NOT merged AND {at} IS NOT NULL GROUP BY 1), "
                f"r AS (SELECT bucket, {column} AS n FROM open_rollups WHERE dim = 'all' AND {column} <> 0) "
                "SELECT count(*) FROM ((SELECT * FROM f EXCEPT ALL SELECT * FROM r) UNION ALL "
                "(SELECT * FROM r EXCEPT ALL SELECT * FROM f)) AS d")
            if wrong_clock:
                problems.append(f"open_rollups: {wrong_clock} 'all' hours of {column} differ from ticket_metrics' {at}")
        open_dims = {r["dim"]: (r["open"], r["unassigned"]) for r in await conn.fetch(
            "SELECT dim, sum(open) AS open, sum(unassigned) AS unassigned FROM open_rollups GROUP BY dim")}
        if not open_dims.get("all") or not open_dims["all"][0]:
            problems.append("open_rollups: no open ticket (the bench's backlog is empty)")
        for dim in ("team", "channel", "type", "priority"):
            if open_dims.get(dim) != open_dims.get("all"):
                problems.append(f"open_rollups {dim}: totals {open_dims.get(dim)} differ from all {open_dims.get('all')}")
        totals = {r["dim"]: (r["created"], r["solved"], r["fr"]) for r in per_dim}
        facts = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE created_at IS NOT NULL) AS created, count(*) FILTER (WHERE resolved) AS solved, "
            "count(first_reply_at) AS fr FROM ticket_metrics")
        if totals.get("all") != (facts["created"], facts["solved"], facts["fr"]):
            problems.append(f"all: rollups {totals.get('all')} vs ticket_metrics "
                            f"{(facts['created'], facts['solved'], facts['fr'])}")
        for dim in ("team", "channel", "type", "priority"):
            if totals.get(dim) != totals.get("all"):
                problems.append(f"{dim}: totals {totals.get(dim)} differ from all {totals.get('all')}")
        hist = await conn.fetchrow(
            "SELECT sum(first_reply_n) AS n, sum((SELECT sum(x) FROM unnest(first_reply_hist) x)) AS h, "
            "sum(solved) AS s, sum((SELECT sum(x) FROM unnest(resolution_hist) x)) AS rh "
            "FROM metric_rollups WHERE dim = 'all'")
        if (hist["n"], hist["s"]) != (hist["h"], hist["rh"]):
            problems.append(f"histograms: first reply n {hist['n']} vs hist {hist['h']}, "
                            f"solved {hist['s']} vs hist {hist['rh']}")
        sla = await conn.fetchrow(
            "SELECT (SELECT sum(sla_n) FROM metric_rollups WHERE dim = 'all') AS n, "
            "(SELECT sum(achieved + breached) FROM sla_rollups WHERE dim = 'all') AS cycles, "
            "(SELECT sum(sla_achieved + sla_breached) FROM ticket_metrics) AS facts")
        if not sla["n"] == sla["cycles"] == sla["facts"]:
            problems.append(f"SLA cycles: metric_rollups {sla['n']}, sla_rollups {sla['cycles']}, "
                            f"ticket_metrics {sla['facts']}")
    finally:
        await conn.close()
    return problems


# ---- the requests -----------------------------------------------------------------------------

def requests_for(now: datetime) -> dict[str, str]:
    """The four dashboard requests of issue 13's "Scale" point, as analytics-svc takes them
    (ranges are RFC 3339 instants: local midnights in the caller's zone)."""
    tz = "Asia/Shanghai"
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()

    def midnight(day) -> str:
        return datetime.combine(day, dtime(0), tzinfo=zone).isoformat()

    tomorrow = today + timedelta(days=1)
    return {
        "kpis": "/v1/analytics/kpis?" + urlencode({"tz": tz}),
        "trend_90d_by_team": "/v1/analytics/trends?" + urlencode({
            "metric": "first_reply_minutes", "interval": "day", "tz": tz, "from": midnight(today - timedelta(days=89)),
            "to": midnight(tomorrow), "by": "team"}),
        "leaderboard_30d_agents": "/v1/analytics/leaderboard?" + urlencode({
            "metric": "resolution_minutes", "period": "30d", "entity": "agent", "tz": tz}),
        "breakdown_csat_by_channel": "/v1/analytics/breakdown?" + urlencode({
            "metric": "csat_percent", "by": "channel", "tz": tz, "from": midnight(today - timedelta(days=29)),
            "to": midnight(tomorrow)}),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(base_url: str, headers: dict[str, str], paths: dict[str, str], *, requests: int,
            warmup: int) -> dict[str, dict]:
    """Sequential requests from one client (a dashboard's), interleaved round-robin across the
    four so a burst of other people's load on the shared machine hits them alike."""
    out: dict[str, dict] = {name: {"ms": [], "statuses": {}} for name in paths}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for round_no in range(warmup + requests):
            for name, path in paths.items():
                t0 = time.perf_counter()
                r = client.get(path)
                ms = (time.perf_counter() - t0) * 1000
                if round_no < warmup:
                    if round_no == 0 and r.status_code != 200:
                        out[name]["first_error"] = f"{r.status_code} {r.text[:300]}"
                    continue
                out[name]["ms"].append(ms)
                code = str(r.status_code)
                out[name]["statuses"][code] = out[name]["statuses"].get(code, 0) + 1
    for name, m in out.items():
        m["p50_ms"] = round(statistics.median(m["ms"]), 2)
        m["p95_ms"] = round(percentile(m["ms"], 95), 2)
        m["errors"] = sum(n for code, n in m["statuses"].items() if code != "200")
    return out


# ---- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/analytics_scale.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int,
                        default=int(os.environ.get("BENCH_ANALYTICS_TICKETS", DEFAULT_TICKETS)),
                        help="tickets to bulk-load (default BENCH_ANALYTICS_TICKETS or 10,000,000; 0 skips)")
    parser.add_argument("--requests", type=int, default=60, help="measured requests per endpoint (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests per endpoint first (default 5)")
    parser.add_argument("--jobs", type=int, default=2, help="rollup statements run at once (default 2)")
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--hold-s", type=float, default=0.0,
                        help="keep PostgreSQL and analytics-svc running this long after the measurements, "
                             "their addresses logged (to EXPLAIN on a loaded store)")
    args = parser.parse_args(argv)
    if args.tickets <= 0:
        log("analytics scale: skipped (0 tickets)")
        return 0

    def on_signal(signum, _frame):  # unwind through the finally below
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    data_dir = ROOT / ".data" / "bench" / f"analytics-{run_id}"
    data_dir.mkdir(parents=True, mode=0o755)
    os.chmod(data_dir, 0o755)
    base = free_block(PORT_BLOCK)
    pg_port = free_port_outside(range(base, base + PORT_BLOCK))
    # the broker's port is only named (relay and consumers are off, nothing connects to it)
    kafka_port = free_port_outside(range(base, base + PORT_BLOCK), {pg_port})
    stack = Stack(StackConfig(data_dir=data_dir, gateway_port=base, service_base_port=base, pg_port=pg_port,
                              kafka_port=kafka_port, extra_env={"LOG_LEVEL": "WARNING"}))
    failed = False
    results: dict = {}
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        log(f"starting PostgreSQL and analytics-svc alone (data {data_dir.relative_to(ROOT)}) ...")
        assert stack.pg is not None
        stack.pg.start()
        url = stack.database_url("analytics-svc")
        asyncio.run(ensure_database(url))
        upgrade("analytics_svc", url)
        stack.start_service("analytics-svc", {"ANALYTICS_CONSUMERS_ENABLED": "false",
                                              "ANALYTICS_RELAY_ENABLED": "false"})
        stack.wait_service("analytics-svc")
        service_url = stack.url_of("analytics-svc")
        signer = IdentitySigner(stack.secrets["internal_auth_private_key"])
        # tokens live minutes: mint one per measuring phase
        def headers() -> dict[str, str]:
            return {"X-Internal-Identity": signer.token_for(
                Principal(kind="user", id=str(uuid.uuid4()), role="admin", name="bench admin"))}

        now = datetime.now(UTC)
        paths = requests_for(now)
        log(f"empty store: {args.requests} requests per endpoint ...")
        empty = measure(service_url, headers(), paths, requests=args.requests, warmup=args.warmup)
        dsn = raw_dsn(url)
        log(f"bulk-loading {args.tickets:,} tickets' read-model rows ...")
        load_s, steps = asyncio.run(bulk_load(dsn, args.tickets, now=now, jobs=args.jobs))
        log(f"loaded in {load_s:.0f} s; checking the rollups against ticket_metrics ...")
        problems = asyncio.run(consistency(dsn, now=now))
        sizes = asyncio.run(table_sizes(dsn))
        log(f"loaded store: {args.requests} requests per endpoint ...")
        loaded = measure(service_url, headers(), paths, requests=args.requests, warmup=args.warmup)
        if args.hold_s > 0:
            log(f"holding {args.hold_s:.0f} s: database {dsn}, analytics-svc {service_url}")
            time.sleep(args.hold_s)
        results = {
            "analytics_scale_tickets": args.tickets,
            "analytics_scale_load_s": round(load_s, 1),
            "analytics_scale_load_steps": ", ".join(f"{k}={v}" for k, v in steps.items()),
            "analytics_scale_requests": args.requests,
            "analytics_scale_consistency": "; ".join(problems) or "ok",
            "analytics_scale_goal_p95_ms": GOAL_P95_MS,
            # the machine's 1-minute load average before the run and after the load: on a shared
            # machine, how crowded it was (2 cores: above 2 the run waited for CPU)
            "analytics_scale_loadavg": f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}",
        }
        for table, s in sizes.items():
            results[f"analytics_scale_{table}_rows"] = s["rows"]
            results[f"analytics_scale_{table}_mb"] = s["mb"]
        over = []
        for name in paths:
            e, lo = empty[name], loaded[name]
            results[f"analytics_scale_{name}_p50_ms_empty"] = e["p50_ms"]
            results[f"analytics_scale_{name}_p95_ms_empty"] = e["p95_ms"]
            results[f"analytics_scale_{name}_p50_ms_loaded"] = lo["p50_ms"]
            results[f"analytics_scale_{name}_p95_ms_loaded"] = lo["p95_ms"]
            results[f"analytics_scale_{name}_p95_ratio"] = round(lo["p95_ms"] / e["p95_ms"], 2) if e["p95_ms"] else None
            results[f"analytics_scale_{name}_errors"] = e["errors"] + lo["errors"]
            results[f"analytics_scale_{name}_statuses"] = " ".join(
                f"{label}:{code}={n}" for label, m in (("empty", e), ("loaded", lo))
                for code, n in sorted(m["statuses"].items()))
            if lo.get("first_error") or e.get("first_error"):
                results[f"analytics_scale_{name}_first_error"] = lo.get("first_error") or e.get("first_error")
            if lo["p95_ms"] > GOAL_P95_MS:
                over.append(name)
        results["analytics_scale_over_goal"] = ", ".join(over)
        results["analytics_scale_errors"] = sum(results[f"analytics_scale_{n}_errors"] for n in paths)
    except BaseException as exc:  # noqa: BLE001 - report, clean up, exit non-zero
        failed = True
        print(f"analytics scale bench failed: {exc!r}", file=sys.stderr)
    finally:
        stack.stop_all()
        if failed:
            remove_data_dir(data_dir, keep_logs=True)
        elif not args.keep_data:
            remove_data_dir(data_dir)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if failed:
        return 1
    results["analytics_scale_run_s"] = round(time.monotonic() - started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest = RESULTS / "latest.json"
    merged = json.loads(latest.read_text()) if latest.exists() else {}
    merged.update(results)
    latest.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    print_table(results, paths)
    clean = not results["analytics_scale_errors"] and not over and results["analytics_scale_consistency"] == "ok"
    return 0 if clean else 3


def print_table(r: dict, paths: dict[str, str]) -> None:
    n = r["analytics_scale_tickets"]
    label = f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n:,}"
    print(f"\nanalytics at scale ({label} tickets' read model vs empty; {r['analytics_scale_requests']} sequential "
          f"requests each, admin; bulk load {r['analytics_scale_load_s']:.0f} s)")
    print(f"{'request':<28}{'p50 empty':>10}{'p95 empty':>10}{'p50 loaded':>11}{'p95 loaded':>11}{'ratio':>7}")
    for name in paths:
        k = f"analytics_scale_{name}"
        flag = ""
        if r[f"{k}_errors"]:
            flag = f"  !! {r[f'{k}_statuses']}"
        elif r[f"{k}_p95_ms_loaded"] > GOAL_P95_MS:
            flag = f"  !! over {GOAL_P95_MS:.0f} ms"
        ratio = r[f"{k}_p95_ratio"]
        print(f"{name:<28}{r[f'{k}_p50_ms_empty']:>10.1f}{r[f'{k}_p95_ms_empty']:>10.1f}"
              f"{r[f'{k}_p50_ms_loaded']:>11.1f}{r[f'{k}_p95_ms_loaded']:>11.1f}{ratio or 0:>7.2f}{flag}")
    print("tables: " + ", ".join(f"{t} {r[f'analytics_scale_{t}_rows']:,} rows / {r[f'analytics_scale_{t}_mb']:,} MB"
                                 for t in TABLES))
    print(f"load steps (s): {r['analytics_scale_load_steps']}")
    print(f"machine load average (before -> after the load): {r['analytics_scale_loadavg']}")
    print(f"rollups vs ticket_metrics: {r['analytics_scale_consistency']}"
          + ("" if r["analytics_scale_consistency"] == "ok" else "  !!"))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
