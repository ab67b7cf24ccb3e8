"""Exact SQL statements per ticket, per database: every statement the stack runs for a known number
of tickets, counted after every consumer has finished them.

    .venv/bin/python bench/statements.py                 # 300 tickets, 4 at a time
    .venv/bin/python bench/statements.py --tickets 1000 --top 12

``bench/profile.py --statements`` counts the statements of a window under load, and a consumer's
statements for tickets of the warm-up, or for tickets it had not reached when the window closed,
blur its figures. Here a private stack (``helpdesk_common.devstack``, every server on 127.0.0.1)
is left to settle, pg_stat_statements is reset, ``--tickets`` tickets with distinct requesters
are posted through the gateway, and the statements are read once every consumer has taken in each
ticket (its inbox's ``ticket.created`` rows) and a few seconds more for the events that follow
(the customer link, the SLA colour, the acknowledgement's delivery). The background loops'
statements (gauges, pruning, the scheduler's polls) count too; a larger ``--tickets`` makes
their share smaller.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from helpdesk_common.devstack import Stack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.profile import _STATEMENTS_SQL, STATEMENTS_PG_SETTINGS, private_stack, statements_table  # noqa: E402

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


async def count(stack: Stack, creds: dict[str, str], tickets: int, concurrency: int, top: int) -> str:
    port = stack.config.pg_port

    async def connect(database: str) -> Any:
        return await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database=database)

    admin = await connect("postgres")
    try:
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        names = [r["datname"] for r in await admin.fetch(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'")]
        consumers = {}
        for name in names:
            conn = await connect(name)
            if await conn.fetchval("SELECT to_regclass('inbox') IS NOT NULL"):
                consumers[name] = conn
            else:
                await conn.close()

        async def taken_in() -> dict[str, int]:
            # the comment names the extension, so _STATEMENTS_SQL leaves this poll out of the counts
            return {name: await conn.fetchval("SELECT count(*) FROM inbox WHERE event_type = 'ticket.created' "
                                              "/* the bench's poll, not pg_stat_statements' subject */")
                    for name, conn in consumers.items()}

        await asyncio.sleep(TRAILING_S)  # the start-up's own work done
        before = await taken_in()
        await admin.execute("SELECT pg_stat_statements_reset()")
        tag = uuid.uuid4().hex[:6]
        async with httpx.AsyncClient(base_url=creds["gateway_url"], timeout=30,
                                     headers={"Authorization": f"Bearer {creds['channel_api_key']}"}) as client:
            async def post(i: int) -> None:
                answer = await client.post("/v1/tickets", json=ticket_body(tag, i))
                if answer.status_code != 201:
                    raise RuntimeError(f"ticket {i}: {answer.status_code} {answer.text[:200]}")

            for start in range(0, tickets, concurrency):
                await asyncio.gather(*(post(i) for i in range(start, min(tickets, start + concurrency))))
        posted = time.monotonic()
        deadline = posted + 120
        while True:
            # a database whose inbox takes in no ticket.created (ticket-svc's: it writes them) is
            # not waited for; every other one's consumer has moved within the first seconds
            now = await taken_in()
            behind = {n: tickets - (now[n] - before.get(n, 0)) for n in now}
            if time.monotonic() - posted > TRAILING_S and not any(0 < v < tickets for v in behind.values()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumers did not take in every ticket within 120 s: {behind}")
            await asyncio.sleep(0.5)
        await asyncio.sleep(TRAILING_S)
        rows = [dict(r) for r in await admin.fetch(_STATEMENTS_SQL)]
        for conn in consumers.values():
            await conn.close()
    finally:
        await admin.close()
    return statements_table(rows, tickets, top=top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4, help="tickets posted at once")
    parser.add_argument("--top", type=int, default=10, help="statements listed per database")
    args = parser.parse_args()
    stack, data = private_stack("statements", pg_settings=STATEMENTS_PG_SETTINGS)
    try:
        creds = stack.up()
        print(asyncio.run(count(stack, creds, args.tickets, args.concurrency, args.top)))
    finally:
        stack.stop_all()
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
