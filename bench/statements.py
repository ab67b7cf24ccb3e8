"""Exact SQL statements per ticket, per database: every statement the stack runs for a known number
of tickets, counted after every consumer has finished them.

    .venv/bin/python bench/statements.py                 # 300 tickets, 4 at a time
    .venv/bin/python bench/statements.py --tickets 1000 --top 12

``bench/profile.py --statements`` counts the statements of a window under load, and a consumer's
statements for tickets of the warm-up, or for tickets it had not reached when the window closed,
blur its figures. Here a private stack (``helpdesk_common.devstack``, every server on 127.0.0.1)
is left to settle and finishes ``--warmup`` tickets (each pool connection's type introspection and
first plans are start-up, not a ticket's cost: 1.4 ms of planning per ticket counted from a cold
stack, 0.1 after a warm-up), pg_stat_statements is reset, ``--tickets`` tickets with new requesters
are posted through the gateway, and the statements are read once every consumer has taken in each
ticket (its inbox's ``ticket.created`` rows), every outbox is published and every
acknowledgement sent (to the bench's SMTP sink on 127.0.0.1, ``bench/outbound.py``), and a few
seconds more for the events that follow (the customer link's echo, the SLA colour). The background loops'
statements (gauges, pruning, the scheduler's polls) count too; a larger ``--tickets`` makes
their share smaller.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from helpdesk_common.devstack import Stack, free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.outbound import OutboundSinks  # noqa: E402
from bench.profile import (  # noqa: E402
    _STATEMENTS_SQL, _UNCOUNTED, STATEMENTS_PG_SETTINGS, private_stack, statements_table)

#: how long after the last consumer took in the last ticket the counting goes on
TRAILING_S = 5.0


def ticket_body(tag: str, i: int) -> dict[str, Any]:
    """A ticket like bench/post.lua's: one distinct requester (e-mail and phone) per ticket."""
    return {"subject": f"Order {tag}-{i} arrived damaged",
            "description": "The parcel arrived with a broken corner and the item inside is scratched. "
                           "包裹一角破损，商品有划痕，请协助换货或退款。",
            "requester": {"name": f"Bench User {i}", "email": f"requester-{tag}-{i}@example.com",
                          "phone": f"+86 139 {i // 10000 % 10000:04d} {i % 10000:04d}"},
            "priority": "normal", "type": "complaint", "tags": ["bench", "damaged"]}


#: databases whose inbox takes in no ``ticket.created``: the service that writes them
WRITERS = frozenset({"ticket"})


async def count(stack: Stack, creds: dict[str, str], tickets: int, concurrency: int, top: int,
                warmup: int) -> str:
    port = stack.config.pg_port

    async def connect(database: str) -> Any:
        return await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database=database)

    admin = await connect("postgres")
    opened: dict[str, Any] = {}
    try:
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for name in [r["datname"] for r in await admin.fetch(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'")]:
            opened[name] = await connect(name)
        consumers = {name: conn for name, conn in opened.items() if name not in WRITERS
                     and await conn.fetchval("SELECT to_regclass('inbox') IS NOT NULL" + _UNCOUNTED)}
        outboxes = {name: conn for name, conn in opened.items()
                    if await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL" + _UNCOUNTED)}

        async def taken_in() -> dict[str, int]:
            return {name: await conn.fetchval("SELECT count(*) FROM inbox WHERE event_type = 'ticket.created'"
                                              + _UNCOUNTED) for name, conn in consumers.items()}

        async def unsent() -> int:
            """Outbox rows not yet published, and notify-svc's deliveries due or in flight."""
            total = 0
            for name, conn in outboxes.items():
                total += await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"
                                             + _UNCOUNTED)
            if "notify" in opened:
                total += await opened["notify"].fetchval(
                    "SELECT count(*) FROM deliveries WHERE status IN ('queued', 'sending') AND next_attempt_at <= now()"
                    + _UNCOUNTED)
            return total

        async def round_of(posted: int, first: int) -> None:
            """Post ``posted`` tickets numbered from ``first`` (each a new requester: the phone number
            comes from the number alone), ``concurrency`` at a time, and wait until every consumer
            took each in, every outbox is published and every acknowledgement sent."""
            before = await taken_in()
            tag = uuid.uuid4().hex[:6]
            async with httpx.AsyncClient(base_url=creds["gateway_url"], timeout=30,
                                         headers={"Authorization": f"Bearer {creds['channel_api_key']}"}) as client:
                async def post(i: int) -> None:
                    answer = await client.post("/v1/tickets", json=ticket_body(tag, i))
                    if answer.status_code != 201:
                        raise RuntimeError(f"ticket {i}: {answer.status_code} {answer.text[:200]}")

                for start in range(first, first + posted, concurrency):
                    await asyncio.gather(*(post(i) for i in range(start, min(first + posted, start + concurrency))))
            deadline = time.monotonic() + 120
            while True:
                now = await taken_in()
                behind = {n: posted - (now[n] - before.get(n, 0)) for n in now if now[n] - before.get(n, 0) < posted}
                left = await unsent()
                if not behind and not left:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not done within 120 s: tickets not taken in {behind}, unsent {left}")
                await asyncio.sleep(0.5)
            await asyncio.sleep(TRAILING_S)  # the events after the last one (a link's echo, a colour)

        await asyncio.sleep(TRAILING_S)  # the start-up's own work done
        if warmup:
            await round_of(warmup, 0)
        await admin.execute("SELECT pg_stat_statements_reset()")
        await round_of(tickets, warmup)
        rows = [dict(r) for r in await admin.fetch(_STATEMENTS_SQL)]
    finally:
        for conn in opened.values():
            await conn.close()
        await admin.close()
    return statements_table(rows, tickets, top=top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4, help="tickets posted at once")
    parser.add_argument("--top", type=int, default=10, help="statements listed per database")
    parser.add_argument("--warmup", type=int, default=300,
                        help="tickets posted and finished before the count (0: none). Each new pool connection "
                             "first introspects the types its statements use (asyncpg's typeinfo query, 3-12 ms "
                             "of planning) and plans each statement for its first executions (PostgreSQL keeps "
                             "a generic plan after five, when it costs no more): a count from a fresh stack "
                             "charges the tickets with that start-up")
    args = parser.parse_args()
    smtp_port, http_port = free_port(), free_port()
    while http_port == smtp_port:
        http_port = free_port()
    sinks = OutboundSinks(smtp_port=smtp_port, http_port=http_port, cwd=ROOT,
                          log_path=ROOT / ".data" / "statements" / f"{os.getpid()}-sinks.log")
    # the acknowledgements go to the bench's SMTP sink on 127.0.0.1, as in bench/run.py, at a
    # destination rate that does not hold them back
    stack, data = private_stack("statements", pg_settings=STATEMENTS_PG_SETTINGS, extra_env={
        "SMTP_URL": sinks.smtp_url, "NOTIFY_DESTINATION_RATE_PER_S": "1000", "NOTIFY_DESTINATION_BURST": "1000"})
    try:
        sinks.start()  # before the stack: notify-svc reads the SMTP address when it starts
        creds = stack.up()
        print(asyncio.run(count(stack, creds, args.tickets, args.concurrency, args.top, args.warmup)))
    finally:
        stack.stop_all()
        sinks.stop()
        shutil.rmtree(data, ignore_errors=True)
        sinks.log_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
