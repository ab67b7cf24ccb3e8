"""`make bench`: intake through the gateway vs straight to ticket-svc vs the baselines, plus
propagation lag (ticket created → counted by analytics), all in one run on one machine.

Writes bench/results/latest.json (flat keys) and a timestamped copy; prints a short table.
Numbers are noisy on shared machines: compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpdesk_common.devstack import Stack, StackConfig, free_port, wait_http_ok  # noqa: E402
from helpdesk_common.identity import IdentitySigner, Principal  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def free_block(size: int = 5) -> int:
    import socket

    for _ in range(100):
        base = free_port()
        try:
            for p in range(base, base + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port block")


def wrk(url: str, *, script: str, duration: int, connections: int, threads: int, env: dict[str, str] | None = None) -> dict:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency", "-s",
           str(ROOT / "bench" / script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | (env or {}), timeout=duration + 60)
    match = re.search(r"WRK_JSON (\{.*\})", out.stdout)
    if not match:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    stats = json.loads(match.group(1))
    seconds = stats["duration_us"] / 1e6
    errors = sum(v for k, v in stats.items() if k.startswith("errors_"))
    return {
        "rps": stats["requests"] / seconds,
        "p50_ms": stats["p50_us"] / 1000,
        "p99_ms": stats["p99_us"] / 1000,
        "requests": stats["requests"],
        "errors": errors,
    }


class CpuMeter:
    """CPU seconds used by a set of processes (and their children) between start and stop."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = []
        for pid in pids:
            try:
                p = psutil.Process(pid)
                self.procs += [p, *p.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass

    def _total(self) -> float:
        total = 0.0
        for p in self.procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def __enter__(self) -> "CpuMeter":
        self.start = self._total()
        return self

    def __exit__(self, *exc) -> None:
        self.used = self._total() - self.start


def start_baseline(factory: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", f"bench.baselines:{factory}", "--host", "127.0.0.1",
         "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def raw_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")


async def scalar(dsn: str, query: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def wait_counted(stack: Stack, since: datetime, until: datetime, timeout: float) -> float:
    """Seconds until analytics has folded every ticket created in [since, until]."""
    tickets_dsn = raw_dsn(stack.database_url("ticket-svc"))
    analytics_dsn = raw_dsn(stack.database_url("analytics-svc"))
    expected = await scalar(tickets_dsn, "SELECT count(*) FROM tickets WHERE created_at BETWEEN $1 AND $2", since, until)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        got = await scalar(analytics_dsn, "SELECT count(*) FROM ticket_facts WHERE created_at BETWEEN $1 AND $2", since, until)
        if got >= expected:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise TimeoutError(f"analytics counted {got} of {expected} tickets within {timeout}s")


async def lag_percentiles(stack: Stack, since: datetime, until: datetime) -> tuple[float, float, int]:
    conn = await asyncpg.connect(raw_dsn(stack.database_url("analytics-svc")))
    try:
        row = await conn.fetchrow(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), count(*) "
            "FROM (SELECT extract(epoch FROM ingested_at - created_at) * 1000 AS lag FROM ticket_facts "
            "WHERE created_at BETWEEN $1 AND $2 AND ingested_at IS NOT NULL) s", since, until)
        return float(row[0] or 0), float(row[1] or 0), int(row[2])
    finally:
        await conn.close()


async def light_load(gateway_url: str, key: str, *, rate: float, seconds: float) -> int:
    """A steady trickle (what a help desk mostly sees): measures lag without queueing."""
    sent = 0
    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            r = await client.post("/v1/tickets", json={"subject": "light load", "requester": {"email": f"light-{sent}@example.com"}})
            r.raise_for_status()
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2

    data_dir = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    base = free_block()
    stack = Stack(StackConfig(
        data_dir=data_dir, gateway_port=base, service_base_port=base, pg_port=free_port(), kafka_port=free_port(),
        extra_env={"GATEWAY_RATE_LIMIT_RPS": "0", "LOG_LEVEL": "WARNING"},
    ))
    baselines: list[subprocess.Popen] = []
    results: dict = {}
    run = dict(duration=args.duration, connections=args.connections, threads=args.threads)
    try:
        print("starting the stack ...", flush=True)
        creds = stack.up()
        gateway = creds["gateway_url"]
        ticket_url = stack.url_of("ticket-svc")

        # -- baselines ----------------------------------------------------------------
        hello_port, insert_port = free_port(), free_port()
        bench_dsn = raw_dsn(stack.database_url("ticket-svc")).rsplit("/", 1)[0] + "/postgres"

        async def prepare_baseline_table():
            conn = await asyncpg.connect(bench_dsn)
            await conn.execute("DROP TABLE IF EXISTS bench_tickets; CREATE TABLE bench_tickets (id uuid PRIMARY KEY, "
                               "subject text NOT NULL, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
            await conn.close()

        asyncio.run(prepare_baseline_table())
        baselines.append(start_baseline("hello_app", hello_port, {}))
        baselines.append(start_baseline("insert_app", insert_port, {"BENCH_DSN": bench_dsn}))
        wait_http_ok(f"http://127.0.0.1:{hello_port}/", 30, baselines[0])
        wait_http_ok(f"http://127.0.0.1:{insert_port}/docs", 30, baselines[1])
        print("baseline: bare uvicorn ...", flush=True)
        with CpuMeter([baselines[0].pid]) as cpu:
            hello = wrk(f"http://127.0.0.1:{hello_port}/", script="get.lua", **run)
        print("baseline: FastAPI + raw asyncpg insert ...", flush=True)
        insert = wrk(f"http://127.0.0.1:{insert_port}/v1/tickets", script="post.lua", **run)
        for p in baselines:
            stop(p)

        # -- intake straight to ticket-svc, then through the gateway -------------------
        token = IdentitySigner(stack.secrets["internal_auth_secret"]).token_for(
            Principal(kind="channel", id=str(uuid.uuid4()), channel="bench"))
        print("intake straight to ticket-svc ...", flush=True)
        with CpuMeter([stack.procs["ticket-svc"].pid]) as direct_cpu:
            direct = wrk(f"{ticket_url}/v1/tickets", script="post.lua",
                         env={"BENCH_AUTH_HEADER": "X-Internal-Identity", "BENCH_AUTH_VALUE": token}, **run)
        # let the outbox and consumers drain the direct phase first, so the next phase measures itself
        asyncio.run(wait_counted(stack, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC), 300))
        print("intake through the gateway ...", flush=True)
        phase_start = datetime.now(UTC)
        with CpuMeter([stack.procs["gateway"].pid]) as gw_cpu, CpuMeter([stack.procs["ticket-svc"].pid]) as tk_cpu:
            intake = wrk(f"{gateway}/v1/tickets", script="post.lua",
                         env={"BENCH_AUTH_HEADER": "Authorization", "BENCH_AUTH_VALUE": f"Bearer {creds['channel_api_key']}"},
                         **run)
        phase_end = datetime.now(UTC)
        catch_up = asyncio.run(wait_counted(stack, phase_start, phase_end, 300))
        p50, p99, counted = asyncio.run(lag_percentiles(stack, phase_start, phase_end))

        print("propagation under light load ...", flush=True)
        light_start = datetime.now(UTC)
        asyncio.run(light_load(gateway, creds["channel_api_key"], rate=50, seconds=5))
        light_end = datetime.now(UTC)
        asyncio.run(wait_counted(stack, light_start, light_end, 60))
        light_p50, light_p99, light_n = asyncio.run(lag_percentiles(stack, light_start, light_end))

        results = {
            "intake_rps": round(intake["rps"], 1),
            "intake_p50_ms": intake["p50_ms"],
            "intake_p99_ms": intake["p99_ms"],
            "intake_errors": intake["errors"],
            "direct_intake_rps": round(direct["rps"], 1),
            "direct_intake_p50_ms": direct["p50_ms"],
            "direct_intake_p99_ms": direct["p99_ms"],
            "direct_intake_errors": direct["errors"],
            "propagation_p50_ms": round(p50, 1),
            "propagation_p99_ms": round(p99, 1),
            "propagation_samples": counted,
            "catch_up_s": round(catch_up, 2),
            "propagation_light_p50_ms": round(light_p50, 1),
            "propagation_light_p99_ms": round(light_p99, 1),
            "propagation_light_samples": light_n,
            "baseline_uvicorn_rps": round(hello["rps"], 1),
            "baseline_uvicorn_p99_ms": hello["p99_ms"],
            "baseline_asyncpg_insert_rps": round(insert["rps"], 1),
            "baseline_asyncpg_insert_p99_ms": insert["p99_ms"],
            "ratio_intake_vs_direct": round(intake["rps"] / direct["rps"], 3),
            "ratio_direct_vs_asyncpg_baseline": round(direct["rps"] / insert["rps"], 3),
            "ratio_intake_vs_asyncpg_baseline": round(intake["rps"] / insert["rps"], 3),
            "ratio_intake_vs_uvicorn": round(intake["rps"] / hello["rps"], 3),
            "gateway_cpu_ms_per_req": round(gw_cpu.used * 1000 / max(1, intake["requests"]), 3),
            "ticket_cpu_ms_per_req": round(tk_cpu.used * 1000 / max(1, intake["requests"]), 3),
            "ticket_cpu_ms_per_req_direct": round(direct_cpu.used * 1000 / max(1, direct["requests"]), 3),
            "uvicorn_cpu_ms_per_req": round(cpu.used * 1000 / max(1, hello["requests"]), 3),
            "machine_cpus": os.cpu_count(),
            "python": platform.python_version(),
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": args.duration,
            "connections": args.connections,
            "threads": args.threads,
        }
    finally:
        for p in baselines:
            stop(p)
        stack.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"bench-{results['timestamp'].replace(':', '')}.json").write_text(text)
    r = results
    rows = [
        ("case", "req/s", "p50 ms", "p99 ms", "ratio"),
        ("bare uvicorn JSON hello", r["baseline_uvicorn_rps"], "", r["baseline_uvicorn_p99_ms"], "H = 1"),
        ("FastAPI + raw asyncpg insert", r["baseline_asyncpg_insert_rps"], "", r["baseline_asyncpg_insert_p99_ms"],
         f"{r['baseline_asyncpg_insert_rps'] / r['baseline_uvicorn_rps']:.3f} H"),
        ("intake straight to ticket-svc", r["direct_intake_rps"], r["direct_intake_p50_ms"], r["direct_intake_p99_ms"],
         f"{r['ratio_direct_vs_asyncpg_baseline']:.2f} x asyncpg"),
        ("intake through the gateway", r["intake_rps"], r["intake_p50_ms"], r["intake_p99_ms"],
         f"{r['ratio_intake_vs_direct']:.2f} x direct"),
    ]
    print()
    for row in rows:
        print(f"{row[0]:<32}{row[1]!s:>10}{row[2]!s:>9}{row[3]!s:>9}   {row[4]}")
    print(f"\nerrors: gateway {r['intake_errors']}, direct {r['direct_intake_errors']}")
    print(f"CPU per request: gateway {r['gateway_cpu_ms_per_req']} ms, ticket-svc {r['ticket_cpu_ms_per_req']} ms "
          f"(direct phase {r['ticket_cpu_ms_per_req_direct']} ms), bare uvicorn {r['uvicorn_cpu_ms_per_req']} ms")
    print(f"propagation (created -> counted by analytics): light load p50 {r['propagation_light_p50_ms']} ms, "
          f"p99 {r['propagation_light_p99_ms']} ms; under saturation p50 {r['propagation_p50_ms']} ms, "
          f"p99 {r['propagation_p99_ms']} ms, catch-up {r['catch_up_s']} s")
    print(f"\nwritten: {RESULTS / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
