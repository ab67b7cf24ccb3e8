"""ticket-svc's CPU per created ticket and per ticket read, measured in-process (the requester at rest).

Runs ``tickets.service.create_ticket`` — what ``POST /v1/tickets`` does below HTTP: routing, the
insert with the projection lookups, the opening message, the audit row, the outbox events — on a
fresh embedded PostgreSQL, each call in its own transaction, then reads each ticket back as an
admin (``get_visible`` + ``to_read``: the decryption and the masking decision), and reports this
Python process's CPU (user + system; PostgreSQL's work is another process) and wall time per
call. With ``--code DIR`` the same run imports ticket-svc and helpdesk_common from another
checkout (the commit before the requester was encrypted, exported with ``git archive``), so
before and after are measured by one script (bench/pii_resolve.py is customer-svc's twin):

    .venv/bin/python bench/ticket_intake_pii.py --n 2000
    mkdir -p /tmp/ticket_pii_before && git archive 32e90bc services/ticket-svc/src libs/common/src \\
        | tar -x -C /tmp/ticket_pii_before
    .venv/bin/python bench/ticket_intake_pii.py --n 2000 --code /tmp/ticket_pii_before
    .venv/bin/python bench/ticket_intake_pii.py --micro --n 20000   # the codec alone, no database

Prints one JSON line. Not part of ``make bench`` (the lead's); a micro-benchmark of one path.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def _requester(i: int) -> dict:
    return {"name": f"张伟 Zhang Wei {i}", "email": f"zhang.wei.{i}@example.com", "phone": f"+86138{i:08d}",
            "wechat_openid": f"oUpF8uMuAJO_{i:012d}"}


async def _measure(url: str, n: int) -> dict:
    from helpdesk_common.db import create_raw_pool
    from helpdesk_common.identity import Principal
    from ticket_svc.tickets import service
    from ticket_svc.tickets.schemas import TicketCreate

    try:  # the encrypted version needs its keys; the version before has no such module
        from helpdesk_common.pii_crypto import new_settings
        from ticket_svc.pii import codec

        keys = new_settings("TICKET_")
        codec.configure(keys["TICKET_PII_KEYS"], keys["TICKET_PII_INDEX_KEY"])
        encrypted = True
    except ImportError:
        encrypted = False
    channel = Principal(kind="channel", id="bench-key", channel="web")
    admin = Principal(kind="user", id="bench-admin", role="admin")

    def payload(i: int) -> TicketCreate:
        return TicketCreate.model_validate({"subject": f"打印机无法连接 printer offline {i}",
                                            "description": "Since this morning.", "requester": _requester(i)})

    def read(row) -> dict:
        try:
            return service.to_read(row, viewer=admin)
        except TypeError:  # the version before: no viewer
            return service.to_read(row)

    pool = await create_raw_pool(url, size=1)
    out = {"encrypted": encrypted, "n": n}
    try:
        async with pool.acquire() as conn:
            for i in range(50):  # warm-up: caches, prepared statements
                async with conn.transaction():
                    await service.create_ticket(conn, principal=channel, payload=payload(10**7 + i), idempotency_key=None)
            payloads = [payload(i) for i in range(n)]  # validation is the same before and after: not measured
            ids = []
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            for body in payloads:
                async with conn.transaction():
                    result = await service.create_ticket(conn, principal=channel, payload=body, idempotency_key=None)
                ids.append(result.ticket["id"])
            cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
            out["create_cpu_us_per_call"] = round(cpu / n * 1e6, 1)
            out["create_wall_us_per_call"] = round(wall / n * 1e6, 1)
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            for ticket_id in ids:
                read(await service.get_visible(conn, principal=admin, ticket_id=ticket_id))
            cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
            out["read_cpu_us_per_call"] = round(cpu / n * 1e6, 1)
            out["read_wall_us_per_call"] = round(wall / n * 1e6, 1)
    finally:
        await pool.close()
    return out


def _micro(n: int) -> dict:
    """The encryption's own share, without the database: CPU per call of what a create adds
    (``requester_columns``: one AES-GCM, the HMACs) and what a read adds (decryption, and the
    masking decision shown unmasked to an admin or masked to an agent)."""
    from helpdesk_common.identity import Principal
    from helpdesk_common.pii_crypto import new_settings
    from ticket_svc.pii import access, codec

    keys = new_settings("TICKET_")
    box = codec.configure(keys["TICKET_PII_KEYS"], keys["TICKET_PII_INDEX_KEY"])
    access.configure(unmasked_roles=("admin", "supervisor"), assignee_sees=True)
    requester = _requester(1)
    row = {"requester": box.requester_columns(requester)["requester"], "assignee_id": None, "status": "new"}
    admin, agent = Principal(kind="user", id="a", role="admin"), Principal(kind="user", id="b", role="agent")
    out: dict = {"micro": True, "n": n}
    for name, call in (("seal_us", lambda: box.requester_columns(requester)),
                       ("open_us", lambda: codec.requester_of(row)),
                       ("open_unmasked_us", lambda: access.shown(admin, row, codec.requester_of(row))),
                       ("open_masked_us", lambda: access.shown(agent, row, codec.requester_of(row)))):
        started = time.process_time()
        for _ in range(n):
            call()
        out[name] = round((time.process_time() - started) / n * 1e6, 1)
    return out


def main() -> None:
    from pii_resolve import embedded_run  # bench/ is the script's directory

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--code", type=Path, default=None, help="a checkout whose ticket-svc and common to import")
    parser.add_argument("--micro", action="store_true", help="the codec's CPU per call alone, no database")
    args = parser.parse_args()
    if args.micro:
        print(json.dumps({**_micro(args.n), "load_average_1m": round(os.getloadavg()[0], 1)}))
        return
    result = embedded_run(code=args.code, sources=["services/ticket-svc/src", "libs/common/src"], package="ticket_svc",
                          database="bench_ticket_pii", measure=_measure, n=args.n)
    result["load_average_1m"] = round(os.getloadavg()[0], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
