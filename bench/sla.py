"""SLA engine benchmark: breach-detection lag and burst rate with 1,000,000 running timers.

1. Starts a private embedded PostgreSQL + broker and sla-svc (``helpdesk_common.devstack``,
   127.0.0.1 only, free ports, data under .data/bench/, removed at the end).
2. Bulk-inserts ``--timers`` running timers (one SQL ``generate_series``) with warnings at
   50/75/90 % and due times spread over the next seven days, so the scheduler works against
   a full index, as in production.
3. Lag: ``--lag-timers`` timers due one every ``--lag-step-ms`` over the next ~30 s; lag is
   each ``sla.breached`` outbox row's ``created_at`` (``clock_timestamp()`` inside the firing
   transaction) minus its due time. Reports p50 / p99 / p99.9.
4. Burst: 10,000 timers due in the same second; timers/s = 10,000 / (last breach row written
   − due second).
5. sla-svc RSS (psutil) at the end.

Merges ``sla_*`` keys into bench/results/latest.json (keeps the other keys) and prints a table.
Run: ``.venv/bin/python bench/sla.py`` (about 2-3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

import asyncpg  # noqa: E402
import psutil  # noqa: E402

from helpdesk_common.devstack import Stack, StackConfig, free_port  # noqa: E402

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

BULK_SQL = """
INSERT INTO sla_timers (ticket_id, metric, policy, target_minutes, started_at, running_since, due_at,
                        fire_at, fractions, next_fire_at, status)
SELECT gen_random_uuid(), 'resolution', $1, 2880, s, s, d,
       ARRAY[s + (d - s) * 0.5, s + (d - s) * 0.75, s + (d - s) * 0.9, d], ARRAY[0.5, 0.75, 0.9, 1.0]::float8[],
       s + (d - s) * 0.5, 'running'
FROM (SELECT now() AS s, now() + interval '1 day' + random() * interval '6 days' AS d
      FROM generate_series(1, $2)) x
"""

DUE_SQL = """
INSERT INTO sla_timers (ticket_id, metric, policy, target_minutes, started_at, running_since, due_at,
                        fire_at, fractions, next_fire_at, status)
SELECT gen_random_uuid(), 'first_response', $1, 60, d - interval '1 hour', d - interval '1 hour', d,
       ARRAY[d], ARRAY[1.0]::float8[], d, 'running'
FROM (SELECT $2::timestamptz + (g - 1) * $3::interval AS d FROM generate_series(1, $4) g) x
"""

BREACHES_SQL = "SELECT count(*) FROM outbox WHERE event_type = 'sla.breached'"

LAG_SQL = """
SELECT extract(epoch FROM o.created_at - t.due_at) AS lag
FROM sla_timers t JOIN outbox o ON o.key = t.ticket_id::text AND o.event_type = 'sla.breached'
WHERE t.policy = $1
"""


def log(msg: str) -> None:
    print(f"[sla-bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def free_distinct_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def free_service_block() -> int:
    """A base port with base+3 (sla-svc's offset) free and bindable on 127.0.0.1."""
    for _ in range(200):
        base = free_port()
        if base + 5 > 65535:
            continue
        with contextlib.suppress(OSError), socket.socket() as s:
            s.bind(("127.0.0.1", base + 3))
            return base
    raise RuntimeError("no free port block")


async def wait_count(conn: asyncpg.Connection, sql: str, want: int, timeout: float, *args: object) -> int:
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        got = await conn.fetchval(sql, *args)
        if got >= want:
            return got
        await asyncio.sleep(0.2)
    raise TimeoutError(f"only {got} of {want} after {timeout} s")


async def measure(dsn: str, args: argparse.Namespace) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        # -- lag: one timer due every step over the window --------------------------------------
        step = args.lag_step_ms / 1000
        start = await conn.fetchval("SELECT date_trunc('second', now()) + interval '3 seconds'")
        await conn.execute(DUE_SQL, "bench-lag", start, timedelta(milliseconds=args.lag_step_ms), args.lag_timers)
        await conn.execute("SELECT pg_notify('sla_timers', '0')")
        window = args.lag_timers * step
        log(f"lag: {args.lag_timers} timers due every {args.lag_step_ms} ms over {window:.0f} s ...")
        # poll the small outbox, not the million-row timer table: the probe must not load the box
        await wait_count(conn, BREACHES_SQL, args.lag_timers, window + 60)
        lags = [float(r["lag"]) for r in await conn.fetch(LAG_SQL, "bench-lag")]
        assert len(lags) == args.lag_timers, f"{len(lags)} breach rows for {args.lag_timers} timers"

        # -- burst: 10,000 due in the same second ------------------------------------------------
        due = await conn.fetchval("SELECT date_trunc('second', now()) + interval '3 seconds'")
        await conn.execute(DUE_SQL, "bench-burst", due, timedelta(0), args.burst)
        await conn.execute("SELECT pg_notify('sla_timers', '0')")
        log(f"burst: {args.burst} timers due at {due.isoformat()} ...")
        await wait_count(conn, BREACHES_SQL, args.lag_timers + args.burst, 120)
        burst_lags = [float(r["lag"]) for r in await conn.fetch(LAG_SQL, "bench-burst")]
        assert len(burst_lags) == args.burst, f"{len(burst_lags)} breach rows for {args.burst} timers"
        span = max(burst_lags)
        running = await conn.fetchval("SELECT count(*) FROM sla_timers WHERE status = 'running'")
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT key FROM outbox WHERE event_type = 'sla.breached' GROUP BY key "
            "HAVING count(*) > 1) d")
    finally:
        await conn.close()
    return {
        "sla_active_timers": int(running),
        "sla_fire_lag_p50_ms": round(percentile(lags, 0.50) * 1000, 1),
        "sla_fire_lag_p99_ms": round(percentile(lags, 0.99) * 1000, 1),
        "sla_fire_lag_p999_ms": round(percentile(lags, 0.999) * 1000, 1),
        "sla_fire_lag_max_ms": round(max(lags) * 1000, 1),
        "sla_lag_timers": args.lag_timers,
        "sla_burst_timers": args.burst,
        "sla_burst_last_fired_after_s": round(span, 3),
        "sla_burst_timers_per_s": round(args.burst / span) if span > 0 else None,
        "sla_duplicate_breaches": int(duplicates),
    }


def merge_results(values: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "latest.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(values)
    path.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/sla.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=1_000_000, help="running background timers (default 1e6)")
    parser.add_argument("--lag-timers", type=int, default=3000, help="timers for the lag measurement")
    parser.add_argument("--lag-step-ms", type=int, default=10, help="one lag timer due every N ms (default 10)")
    parser.add_argument("--burst", type=int, default=10_000, help="timers due in the same second (default 10,000)")
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args(argv)

    def on_signal(signum, _frame):  # unwind through the finally below
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    run_id = f"sla-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    data_root_existed = (ROOT / ".data").exists()
    data_dir = ROOT / ".data" / "bench" / run_id  # not a 0700 temp dir: PostgreSQL may run as its own user
    data_dir.mkdir(parents=True, mode=0o755)
    os.chmod(data_dir, 0o755)
    base = free_service_block()
    pg_port, kafka_port = [p for p in free_distinct_ports(4) if p not in range(base, base + 5)][:2]
    stack = Stack(StackConfig(data_dir=data_dir, gateway_port=base, service_base_port=base, pg_port=pg_port,
                              kafka_port=kafka_port, extra_env={"LOG_LEVEL": "WARNING"}, ephemeral=True))
    started = time.monotonic()
    results: dict = {}
    try:
        log(f"starting PostgreSQL :{pg_port} and the broker :{kafka_port} (data {data_dir.relative_to(ROOT)}) ...")
        stack.start_infra()
        stack.migrate()
        dsn = stack.database_url("sla-svc").replace("postgresql+asyncpg", "postgresql")

        async def bulk() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                t = time.monotonic()
                await conn.execute(BULK_SQL, "bench-background", args.timers)
                await conn.execute("ANALYZE sla_timers")
                log(f"{args.timers:,} running timers inserted in {time.monotonic() - t:.1f} s")
            finally:
                await conn.close()

        asyncio.run(bulk())
        stack.start_service("sla-svc", {"SLA_CONSUMERS_ENABLED": "false"})
        stack.wait_service("sla-svc", 60)
        proc = psutil.Process(stack.procs["sla-svc"].pid)
        time.sleep(1.0)
        results = asyncio.run(measure(dsn, args))
        results["sla_rss_mb"] = round(proc.memory_info().rss / 2**20, 1)
        results["sla_timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
    finally:
        stack.stop_all()
        if not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                data_dir.parent.rmdir()
            if not data_root_existed:
                with contextlib.suppress(OSError):
                    (ROOT / ".data").rmdir()
    merge_results(results)
    rows = [
        ("active timers", f"{results['sla_active_timers']:,}"),
        ("fire lag p50", f"{results['sla_fire_lag_p50_ms']} ms"),
        ("fire lag p99", f"{results['sla_fire_lag_p99_ms']} ms"),
        ("fire lag p99.9", f"{results['sla_fire_lag_p999_ms']} ms"),
        ("fire lag max", f"{results['sla_fire_lag_max_ms']} ms"),
        (f"burst ({results['sla_burst_timers']:,} due in one second)",
         f"{results['sla_burst_timers_per_s']:,} timers/s (last after {results['sla_burst_last_fired_after_s']} s)"),
        ("duplicate breaches", str(results["sla_duplicate_breaches"])),
        ("sla-svc RSS", f"{results['sla_rss_mb']} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(f"\nmerged into {(RESULTS / 'latest.json').relative_to(ROOT)}  (run took {time.monotonic() - started:.0f} s)")
    ok = results["sla_fire_lag_p99_ms"] <= 1000 and results["sla_duplicate_breaches"] == 0
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
