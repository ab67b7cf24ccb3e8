"""Ticket timers benchmark: fire lag of 100,000 scheduled automation timers (issue 12).

1. Starts a private embedded PostgreSQL (127.0.0.1, free port, data under .data/bench/, removed
   at the end) and migrates ticket-svc's database only.
2. Inserts ``--tickets`` tickets and ``--timers`` timers of kind ``automation`` (a few per
   ticket, as automations are), due one after another over ``--window`` seconds starting
   ``--lead`` seconds from now, in one ``generate_series`` statement each; plus ``--burst``
   timers due in the same instant after the window, for the rate the loop sustains when it is
   behind.
3. Runs ticket-svc's scheduler (``ticket_svc.timers.scheduler.TimerScheduler``, the code the
   service runs, with its pool and LISTEN connection) in this process, with the ``automation``
   kind's handler replaced by one that does a real small write: one ``ticket_audit`` row through
   ``tickets.repository.insert_audit``, in the firing transaction. (The real automation handler's
   extra cost is the rules' own: conditions and actions, measured by the trigger benchmarks.)
4. Lag = commit time of the firing transaction - due time, per timer (the scheduler's
   ``on_fired``, the same numbers as ``ticket_timer_fire_lag_seconds``): p50 / p99 / max; fires
   per second over the window and in the burst; and the check that every timer fired once
   (one audit row each).

Merges ``automation_timers_*`` keys into bench/results/latest.json and prints a table, including
the line "automation timers: 100,000 scheduled, p99 lag X ms".
Run: ``.venv/bin/python bench/automation_timers.py`` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

from helpdesk_common.db import create_raw_pool  # noqa: E402
from helpdesk_common.devstack import EmbeddedPostgres, free_port  # noqa: E402
from helpdesk_common.migrate import ensure_database, upgrade  # noqa: E402

sys.path.insert(0, str(ROOT))
from bench.sla import merge_results, percentile  # noqa: E402  (the same merge and percentile as the SLA bench)

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

TICKETS_SQL = """
INSERT INTO tickets (id, subject, status, priority, requester, created_by, created_at, updated_at)
SELECT gen_random_uuid(), 'bench ' || g, 'pending', 'normal', '{}'::jsonb, 'bench', now(), now()
FROM generate_series(1, $1) g
"""
#: timer g of n: ticket g % tickets, automation ref g / tickets, due start + g * step
TIMERS_SQL = """
WITH t AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM tickets),
     n AS (SELECT count(*) AS c FROM tickets)
INSERT INTO ticket_timers (kind, ticket_id, ref, episode, due_at)
SELECT 'automation', t.id, $4 || ((g / n.c)::text), 'status_changed=bench', $1::timestamptz + g * $2::interval
FROM generate_series(0, $3 - 1) g CROSS JOIN n JOIN t ON t.i = g % n.c
"""
AUDITS_SQL = "SELECT count(*) FROM ticket_audit WHERE action = 'bench_automation'"
DUPLICATES_SQL = """
SELECT count(*) FROM (SELECT changes->>'timer' FROM ticket_audit WHERE action = 'bench_automation'
                      GROUP BY 1 HAVING count(*) > 1) d
"""


def log(msg: str) -> None:
    print(f"[timers-bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def measure(url: str, args: argparse.Namespace) -> dict:
    from ticket_svc.tickets import repository as tickets_repository
    from ticket_svc.timers import scheduler, service

    async def small_write(conn, timer) -> None:  # type: ignore[no-untyped-def]
        await tickets_repository.insert_audit(conn, ticket_id=timer.ticket_id, actor=f"automation:{timer.ref}",
                                              action="bench_automation", changes={"timer": timer.id})

    service.register("automation", small_write)
    pool = await create_raw_pool(url, size=4)
    lags: dict[str, list[float]] = {"window": [], "burst": []}
    commits: dict[str, list[float]] = {"window": [], "burst": []}

    def on_fired(timers, committed: float) -> None:  # type: ignore[no-untyped-def]
        for timer in timers:
            phase = "burst" if timer.ref.startswith("burst") else "window"
            lags[phase].append(committed - timer.due_at.timestamp())
            commits[phase].append(committed)

    try:
        async with pool.acquire() as conn:
            t = time.monotonic()
            await conn.execute(TICKETS_SQL, args.tickets)
            start = await conn.fetchval("SELECT now() + make_interval(secs => $1)", args.lead)
            step = args.window / args.timers
            await conn.execute(TIMERS_SQL, start, timedelta(seconds=step), args.timers, "a")
            burst_at = start + timedelta(seconds=args.window + 5)
            await conn.execute(TIMERS_SQL, burst_at, timedelta(0), args.burst, "burst")
            await conn.execute("ANALYZE tickets; ANALYZE ticket_timers")
            log(f"{args.tickets:,} tickets, {args.timers:,} timers due over {args.window:.0f} s from "
                f"{start:%H:%M:%S} and {args.burst:,} due at {burst_at:%H:%M:%S} inserted in {time.monotonic() - t:.1f} s")
        overran = max(0.0, time.time() - start.timestamp())
        if overran:  # the first timers were overdue before the scheduler ran: their lag says so
            log(f"!! setting up took {overran:.1f} s longer than --lead; raise --lead on a loaded machine")
        sched = scheduler.TimerScheduler(pool, scheduler.asyncpg_dsn(url), on_fired=on_fired)
        cpu0 = time.process_time()
        async with scheduler.running(sched):
            deadline = time.monotonic() + args.lead + args.window + 5 + 120
            total = args.timers + args.burst
            while sched.fired_total < total and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
        cpu = time.process_time() - cpu0
        async with pool.acquire() as conn:
            audits = await conn.fetchval(AUDITS_SQL)
            duplicates = await conn.fetchval(DUPLICATES_SQL)
            pending = await conn.fetchval("SELECT count(*) FROM ticket_timers WHERE fired_at IS NULL")
    finally:
        await pool.close()
    window, burst = lags["window"], lags["burst"]
    assert len(window) == args.timers and len(burst) == args.burst, (len(window), len(burst), pending)
    window_span = max(commits["window"]) - start.timestamp()
    burst_span = max(commits["burst"]) - burst_at.timestamp()
    return {
        "automation_timers_scheduled": args.timers,
        "automation_timers_window_s": args.window,
        "automation_timers_fire_lag_p50_ms": round(percentile(window, 0.50) * 1000, 1),
        "automation_timers_fire_lag_p99_ms": round(percentile(window, 0.99) * 1000, 1),
        "automation_timers_fire_lag_max_ms": round(max(window) * 1000, 1),
        "automation_timers_fires_per_s": round(args.timers / window_span),
        "automation_timers_burst": args.burst,
        "automation_timers_burst_per_s": round(args.burst / burst_span) if burst_span > 0 else None,
        "automation_timers_burst_last_after_s": round(burst_span, 3),
        "automation_timers_scheduler_cpu_ms_per_1000": round(cpu * 1000 / (total / 1000), 1),
        "automation_timers_setup_overran_s": round(overran, 3),
        "automation_timers_fired_once": int(audits) == total and int(duplicates) == 0 and int(pending) == 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/automation_timers.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=100_000, help="automation timers scheduled (default 1e5)")
    parser.add_argument("--tickets", type=int, default=25_000, help="tickets they belong to (default 25,000)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds their due times spread over")
    parser.add_argument("--lead", type=float, default=20.0, help="seconds from insertion to the first due time")
    parser.add_argument("--burst", type=int, default=10_000, help="timers due in the same instant after the window")
    args = parser.parse_args(argv)

    def on_signal(signum, _frame):  # unwind through the finally below
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    run_id = f"timers-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    data_root_existed = (ROOT / ".data").exists()
    data_dir = ROOT / ".data" / "bench" / run_id
    data_dir.mkdir(parents=True, mode=0o755)
    os.chmod(data_dir, 0o755)
    pg = EmbeddedPostgres(data_dir / "pg", free_port(), data_dir / "pg.log", ephemeral=True)
    started = time.monotonic()
    try:
        log(f"starting PostgreSQL :{pg.port} (data {data_dir.relative_to(ROOT)}) ...")
        pg.start()
        url = f"{pg.url}/ticket"
        asyncio.run(ensure_database(url))
        upgrade("ticket_svc", url)
        results = asyncio.run(measure(url, args))
        results["automation_timers_timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
    finally:
        pg.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            data_dir.parent.rmdir()
        if not data_root_existed:
            with contextlib.suppress(OSError):
                (ROOT / ".data").rmdir()
    merge_results(results)
    rows = [
        ("automation timers", f"{results['automation_timers_scheduled']:,} scheduled, "
                              f"p99 lag {results['automation_timers_fire_lag_p99_ms']} ms"),
        ("fire lag p50 / p99 / max", f"{results['automation_timers_fire_lag_p50_ms']} / "
                                     f"{results['automation_timers_fire_lag_p99_ms']} / "
                                     f"{results['automation_timers_fire_lag_max_ms']} ms"),
        (f"fires per second (due over {results['automation_timers_window_s']:.0f} s)",
         f"{results['automation_timers_fires_per_s']:,}"),
        (f"burst ({results['automation_timers_burst']:,} due at once)",
         f"{results['automation_timers_burst_per_s']:,} /s (last after {results['automation_timers_burst_last_after_s']} s)"),
        ("scheduler CPU per 1000 fires", f"{results['automation_timers_scheduler_cpu_ms_per_1000']} ms"),
        ("each fired exactly once", str(results["automation_timers_fired_once"])),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(f"\nmerged into {(RESULTS / 'latest.json').relative_to(ROOT)}  (run took {time.monotonic() - started:.0f} s)")
    ok = (results["automation_timers_fire_lag_p99_ms"] <= 1000 and results["automation_timers_fired_once"]
          and not results["automation_timers_setup_overran_s"])
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
