"""Operate a service's outbox dead letters from the command line.

    python -m helpdesk_common.outbox_admin list   --service ticket-svc
    python -m helpdesk_common.outbox_admin replay --service ticket-svc [--seq 17 --seq 18]
    python -m helpdesk_common.outbox_admin replay --url postgresql+asyncpg://u:p@host/ticket

``--service`` reads the database URL from that service's settings (its environment, as
``helpdesk_common.migrate`` does); ``--url`` names it directly. ``replay`` puts the rows back in
the queue (``failed_at`` cleared, attempts reset); the running relay publishes them on its next
poll. Replaying a row that failed because of its size only helps once the limit that refused it
(``KAFKA_MAX_REQUEST_BYTES``, the broker's ``message.max.bytes``) was raised; otherwise it is
dead-lettered again on the next pass, harmlessly.

A separate module from ``outbox`` so that ``python -m`` does not load that module twice (its
Prometheus metrics would be registered twice).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import create_async_engine

from .db import new_metadata
from .outbox import list_dead, outbox_table, replay_dead


def _database_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url)
    package = str(args.service).replace("-", "_")
    return str(importlib.import_module(f"{package}.config").get_settings().database_url)


async def _run(args: argparse.Namespace) -> int:
    table = outbox_table(new_metadata())
    engine = create_async_engine(_database_url(args))
    try:
        async with engine.begin() as conn:
            if args.command == "list":
                rows = await list_dead(conn, table, limit=args.limit)
                for r in rows:
                    print(f"{r.seq}\t{r.event_type}\t{r.key}\t{r.bytes} bytes\tattempts={r.attempts}\t"
                          f"failed_at={r.failed_at.isoformat()}\t{r.error}")
                print(f"{len(rows)} dead-lettered row(s)" + (" shown" if len(rows) == args.limit else ""))
            else:
                replayed = await replay_dead(conn, table, seqs=args.seq or None)
                print(f"replayed {len(replayed)} row(s): {', '.join(map(str, replayed)) or '-'}")
    finally:
        await engine.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpdesk_common.outbox_admin",
                                     description="List or replay dead-lettered outbox rows of one service.")
    parser.add_argument("command", choices=("list", "replay"))
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--service", help="service name or package, e.g. ticket-svc (URL from its settings)")
    target.add_argument("--url", help="the service's database URL")
    parser.add_argument("--seq", type=int, action="append", help="replay only this row (repeatable)")
    parser.add_argument("--limit", type=int, default=100, help="rows listed at most (list)")
    args = parser.parse_args(argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
