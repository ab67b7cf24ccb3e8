"""How each bench search term is planned and what it costs PostgreSQL and the caller, on one
connection, at a given number of stored tickets.

    .venv/bin/python bench/search_plans.py                      # 1,000,000 tickets
    .venv/bin/python bench/search_plans.py --tickets 100000 --reps 30

A private ticket-svc stack (``helpdesk_common.devstack``, every server on 127.0.0.1, consumers
off, pg_stat_statements with its planning columns) gets the bench's search keys, ``--tickets``
bulk tickets as ``bench/scale.py`` loads them, and a settled search index. Then each term of
``bench/search.lua`` runs ``--reps`` times through ``service.list_visible`` as an agent (after
eight unmeasured calls), once with PostgreSQL's plan cache as configured and once with
``plan_cache_mode = force_generic_plan``: the median per term, and per search statement its
calls, plans, execution and planning time. A statement whose plans equal its calls is planned
at every execution; where the forced generic plan is as fast, keeping it is free (round 23 of
docs/performance.md: the walk over postings and the rare search's GIN plan).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bench import scale  # noqa: E402
from bench.profile import STATEMENTS_PG_SETTINGS  # noqa: E402
from bench.run import free_block, free_port_outside, raw_dsn, remove_data_dir  # noqa: E402
from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig  # noqa: E402
from helpdesk_common.identity import IdentitySigner, Principal  # noqa: E402
from ticket_svc.pii import codec as pii_codec  # noqa: E402
from ticket_svc.tickets import service  # noqa: E402

AGENT = Principal(kind="user", id="bench-agent", role="agent", name="bench")
#: what the list endpoint's filter dependency passes when no filter is given
NO_FILTERS = {name: None for name in (
    "statuses", "priority", "customer_id", "assignee_id", "team_id", "tags", "channel", "type", "created_after",
    "created_before", "updated_after", "updated_before", "sla_state", "customer_tier", "requester_bidx", "numbers")}
MODES = (("as configured", {}), ("force_generic_plan", {"plan_cache_mode": "force_generic_plan"}))


async def measure(dsn: str, label: str, settings: dict[str, str], reps: int) -> str:
    conn = await asyncpg.connect(dsn, server_settings={"timezone": "UTC", **settings})
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
        lines = [f"{label}:"]
        total = 0.0
        for term in scale.search_terms():
            for _ in range(8):
                await service.list_visible(conn, principal=AGENT, limit=25, cursor=None, filters=dict(NO_FILTERS), q=term)
            times = []
            for _ in range(reps):
                started = time.perf_counter()
                rows, _cursor = await service.list_visible(conn, principal=AGENT, limit=25, cursor=None,
                                                           filters=dict(NO_FILTERS), q=term)
                times.append((time.perf_counter() - started) * 1000)
            median = statistics.median(times)
            total += median
            lines.append(f"  {term:<18}{len(rows):>4} rows  {median:7.3f} ms")
        lines.append(f"  sum of the medians {total:.3f} ms")
        for r in await conn.fetch(
                "SELECT calls, plans, total_exec_time / calls AS exec_ms, total_plan_time / greatest(plans, 1) AS plan_ms, "
                "left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS query FROM pg_stat_statements "
                "WHERE query LIKE '%search @@%' AND calls > 0 ORDER BY calls DESC"):
            lines.append(f"  {r['calls']:>6} calls {r['plans']:>6} plans  exec {r['exec_ms']:.3f} ms  "
                         f"plan {r['plan_ms']:.3f} ms  {r['query']}")
        return "\n".join(lines)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=60, help="measured calls per term and mode")
    args = parser.parse_args()
    data_dir = ROOT / ".data" / "bench" / f"search-plans-{os.getpid()}"
    data_dir.mkdir(parents=True, mode=0o755)
    base = free_block(PORT_BLOCK)
    pg_port = free_port_outside(range(base, base + PORT_BLOCK))
    kafka_port = free_port_outside(range(base, base + PORT_BLOCK), {pg_port})
    stack = Stack(StackConfig(data_dir=data_dir, gateway_port=base, service_base_port=base, pg_port=pg_port,
                              kafka_port=kafka_port, pg_settings=STATEMENTS_PG_SETTINGS,
                              extra_env={"LOG_LEVEL": "WARNING"}))
    try:
        stack.start_infra()
        stack.migrate()
        stack.start_service("ticket-svc", {"TICKET_CONSUMERS_ENABLED": "false"})
        stack.wait_service("ticket-svc")
        dsn = raw_dsn(stack.database_url("ticket-svc"))
        codec = pii_codec.configure(stack.secrets["ticket_pii_keys"], stack.secrets["ticket_pii_index_key"])
        tokens = scale.Tokens(IdentitySigner(stack.secrets["internal_auth_private_key"]), {"agent": AGENT})
        asyncio.run(scale.prime_search_keys(dsn))
        asyncio.run(scale.bulk_load(dsn, args.tickets, codec=codec))
        asyncio.run(scale.settle_search(dsn, stack.url_of("ticket-svc"), tokens["agent"]))
        print(f"{args.tickets:,} tickets; each term {args.reps} times on one connection, as an agent")
        for label, settings in MODES:
            print(asyncio.run(measure(dsn, label, settings, args.reps)))
    finally:
        stack.stop_all()
        remove_data_dir(data_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
