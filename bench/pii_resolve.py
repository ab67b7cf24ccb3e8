"""customer-svc's CPU per resolved requester (the intake path's customer step), measured in-process.

Runs ``customers.service.resolve_requester`` — what the consumer does for every
``ticket.created`` — on a fresh embedded PostgreSQL, each call in its own transaction, and reports
the process's CPU seconds (user + system of this Python process only: PostgreSQL's work is
another process) per call, for new requesters (create: insert customer + identities + outbox)
and known ones (lookup by identity). With ``--code DIR`` the same run imports customer-svc and
helpdesk_common from another checkout (e.g. the commit before personal data was encrypted,
exported with ``git archive``), so before and after are measured by one script:

    .venv/bin/python bench/pii_resolve.py --n 2000
    git archive 7dfc522 services/customer-svc/src libs/common/src | tar -x -C /tmp/pii_before
    .venv/bin/python bench/pii_resolve.py --n 2000 --code /tmp/pii_before

Prints one JSON line. Not part of ``make bench`` (the lead's); a micro-benchmark of one handler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path


def _requester(i: int) -> dict:
    return {"name": f"张伟 Zhang Wei {i}", "email": f"zhang.wei.{i}@example.com", "phone": f"+86 138 {i:08d}"[:18],
            "wechat_openid": f"oUpF8uMuAJO_{i:012d}"}


async def _measure(url: str, n: int) -> dict:
    from customer_svc.customers import service
    from helpdesk_common.db import create_raw_pool

    try:  # the encrypted version needs its keys; the version before has no such module
        from customer_svc.pii import codec
        from helpdesk_common.pii_crypto import new_settings

        keys = new_settings("CUSTOMER_")
        codec.configure(keys["CUSTOMER_PII_KEYS"], keys["CUSTOMER_PII_INDEX_KEY"])
        encrypted = True
    except ImportError:
        encrypted = False
    pool = await create_raw_pool(url, size=1)
    out = {"encrypted": encrypted, "n": n}
    try:
        async with pool.acquire() as conn:
            for i in range(50):  # warm-up: caches, prepared statements
                async with conn.transaction():
                    await service.resolve_requester(conn, ticket_id=uuid.uuid4(), requester=_requester(10**7 + i))
            for phase, offset in (("create", 0), ("lookup", 0)):
                started_cpu, started_wall = time.process_time(), time.perf_counter()
                for i in range(n):
                    async with conn.transaction():
                        await service.resolve_requester(conn, ticket_id=uuid.uuid4(),
                                                        requester=_requester(offset + i))
                cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
                out[f"{phase}_cpu_us_per_call"] = round(cpu / n * 1e6, 1)
                out[f"{phase}_wall_us_per_call"] = round(wall / n * 1e6, 1)
    finally:
        await pool.close()
    return out


def embedded_run(*, code: Path | None, sources: list[str], package: str, database: str, measure, n: int) -> dict:
    """``measure(url, n)`` on a fresh embedded PostgreSQL migrated for ``package``; with ``code``
    the service and helpdesk_common are imported from that checkout (``sources``: its src dirs).
    Shared with bench/ticket_intake_pii.py (ticket-svc's twin of this script)."""
    if code is not None:
        sys.path[:0] = [str(code / source) for source in sources]
        for name in list(sys.modules):
            if name.startswith((package, "helpdesk_common")):
                del sys.modules[name]
    from helpdesk_common.devstack import EmbeddedPostgres, free_port
    from helpdesk_common.migrate import ensure_database, upgrade

    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), Path(tmp) / "pg.log", ephemeral=True)
        pg.start()
        try:
            url = f"{pg.url}/{database}"
            asyncio.run(ensure_database(url))
            upgrade(package, url)
            result = asyncio.run(measure(url, n))
        finally:
            pg.stop()
    result["code"] = str(code or "working tree")
    result["pid"] = os.getpid()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--code", type=Path, default=None, help="a checkout whose customer-svc and common to import")
    args = parser.parse_args()
    print(json.dumps(embedded_run(code=args.code, sources=["services/customer-svc/src", "libs/common/src"],
                                  package="customer_svc", database="bench_pii", measure=_measure, n=args.n)))


if __name__ == "__main__":
    main()
