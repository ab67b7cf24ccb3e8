"""What the tickets table's triggers cost PostgreSQL per statement, measured inside the server.

    .venv/bin/python bench/ticket_triggers.py             # 3,000 statements per measurement, 3 rounds

A private PostgreSQL (127.0.0.1) gets ticket-svc's schema (its migrations to head). One PL/pgSQL
loop runs ``--statements`` one-row INSERTs into ``tickets`` (a subject, a description and a
search vector of the size intake writes), another as many customer-link UPDATEs (``customer_id``,
``updated_at``, ``version``: what the link from customer-svc writes). Each runs with every trigger and with
one trigger disabled: the statement trigger that keeps the search postings on insert
(``tickets_search_postings_added``, which captures the inserted rows in a transition table even
when no key is searched) and the ``BEFORE UPDATE`` trigger that stamps ``change_xid``. The loop
has no client round trip, so the difference is the trigger's own server time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

import asyncpg

from helpdesk_common.devstack import EmbeddedPostgres, free_port
from helpdesk_common.migrate import ensure_database, upgrade

ROOT = Path(__file__).resolve().parents[1]

INSERTS = """
DO $$ DECLARE i int; BEGIN FOR i IN 1..{n} LOOP
INSERT INTO tickets (id, subject, description, status, priority, requester, created_by, created_at, updated_at,
                     search, tags)
VALUES (gen_random_uuid(), 'Order arrived damaged ' || i,
        'The parcel arrived with a broken corner and the item inside is scratched. 包裹一角破损',
        'new', 'normal', '{{"name": "Bench User"}}', 'bench', now(), now(),
        to_tsvector('simple', 'order arrived damaged parcel broken corner item inside scratched replacement '
                              'refund stock photos attached page 包裹 一角 破损 商品 划痕 ' || i),
        '{{bench,damaged}}');
END LOOP; END $$"""

UPDATES = """
DO $$ DECLARE r record; BEGIN FOR r IN SELECT id FROM tickets WHERE customer_id IS NULL LIMIT {n} LOOP
UPDATE tickets SET customer_id = gen_random_uuid(), updated_at = clock_timestamp(), version = version + 1
WHERE id = r.id;
END LOOP; END $$"""

#: (statement, trigger disabled for the second measurement)
CASES = (("insert", INSERTS, "tickets_search_postings_added"), ("update", UPDATES, "tickets_change_xid"))


async def measure(port: int, statements: int, rounds: int) -> list[str]:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/ticket"
    await ensure_database(url)
    await asyncio.to_thread(upgrade, "ticket_svc", url)
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="ticket")
    try:
        for _, sql, _ in CASES:  # warm: plans, caches, the table's first pages
            await conn.execute(sql.format(n=statements))
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(rounds):
            for name, sql, trigger in CASES:
                for label, disabled in (("every trigger", None), (f"without {trigger}", trigger)):
                    # every measurement writes fresh rows: the updates need rows without a customer
                    if name == "update":
                        await conn.execute(INSERTS.format(n=statements))
                    if disabled:
                        await conn.execute(f"ALTER TABLE tickets DISABLE TRIGGER {disabled}")
                    started = time.perf_counter()
                    await conn.execute(sql.format(n=statements))
                    elapsed = time.perf_counter() - started
                    if disabled:
                        await conn.execute(f"ALTER TABLE tickets ENABLE TRIGGER {disabled}")
                    results.setdefault((name, label), []).append(elapsed / statements * 1e6)
    finally:
        await conn.close()
    return [f"{name:<7} {label:<45} " + "  ".join(f"{v:6.1f}" for v in values) + "  µs per statement"
            for (name, label), values in results.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=3000, help="statements per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = ROOT / ".data" / "ticket-triggers" / str(os.getpid())  # PostgreSQL's user must reach it
    data.mkdir(parents=True)
    os.chmod(data, 0o755)
    port = free_port()
    pg = EmbeddedPostgres(data / "pg", port, data / "pg.log", ephemeral=True)
    try:
        pg.start()
        lines = asyncio.run(measure(port, args.statements, args.rounds))
    finally:
        pg.stop()
        shutil.rmtree(data, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
